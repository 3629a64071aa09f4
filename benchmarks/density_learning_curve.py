"""Density-model learning curve against the SCF density on a grid, dipoles from the predicted density,
cost, and the SCF starting guess from predicted densities (issue 12's benchmarks).

    python benchmarks/density_learning_curve.py /work/bench/water_density.xyz --train 50,100,200,400,800 --test 200 \
        --scf-guess 50 --cache /work/bench/cache
    python benchmarks/density_learning_curve.py /work/bench/methanol_density.xyz --train 50,100,200 --test 100 \
        --scf-guess 20 --cache /work/bench/cache

DATA is a density-labelled file (``psilearn label --observables density,dipole``). The first ``--test``
frames are the test set; the training sets are the following frames, nested (the first n after the
test set). Per training size the ``density`` model (default options, or ``--config``) is fitted and
predicts the test set, with (``constrained``) and without (``free``) the exact electron count.

Per test structure, on the SCF's own integration grid (PySCF, level ``--grid-level``, the labeler's
grid): rho_SCF from the density matrix of the labeler's SCF rerun once (method from the file's
``method`` label, same conv_tol / grid; cached in ``--cache``), rho_fit from the reference
coefficients, rho_pred from the predicted ones.
L2 = sqrt(sum_s int (rho_model - rho)^2 / sum_s int rho^2) and L1 = sum_s int |rho_model - rho| / sum_s N_el
(both pooled over the test set, in %), against rho_SCF and against rho_fit. SALTED's % RMSE = the
error in the fit metric (Coulomb: (P|Q)) relative to that of the per-element mean model, as in
``benchmarks/density_model.py``. Dipole MAE (Debye) = mean over the test set of |mu(nuclei + rho_pred) - mu_SCF|
(the Euclidean norm of the vector error; mu_SCF = the ``dipole_moment`` label, centre of mass), from
``psilearn.observe.density.dipole`` (exact integrals); the same for the reference fits is the floor.
dN = mean |N_pred - N|. Cost: fit seconds, prediction ms per structure (constrained prediction of the
test set / n_test), peak RSS of the process so far (it also holds the data and the cached SCF labels).
``--solver direct|cg|auto`` sets ``density.solver`` (issue 12's memory comparison: run one process per
solver and size so that each peak RSS is that fit's).

Rotated copies of one geometry in the test set (water_monomer's first 91 frames are one geometry) are
reported twice: pooled over all test frames (the issue's protocol) and over the distinct geometries only.

``--scf-guess K``: for the first K distinct test geometries, SCF cycles (PySCF callback calls) and wall seconds
from PySCF's default guess (minao), from the guess of the predicted density of the largest training
size (``psilearn.observe.density.scf_guess``, its Fock build included), and from the reference fitted
density's guess; the same SCF method, grid level and ``--conv-tol``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from psilearn.config import load_config  # noqa: E402
from psilearn.data import load_density_dataset  # noqa: E402
from psilearn.models.density.constraint import structure_metric  # noqa: E402
from psilearn.models.factory import fit_model  # noqa: E402
from psilearn.observe.density import DEBYE_PER_AU, DensityWarning, dipole, fitted_density  # noqa: E402

warnings.simplefilter("ignore", DensityWarning)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def labeler(method: str, aux_basis: str, metric: str, grid_level: int):
    from psilearn.label.registry import make_labeler

    return make_labeler(method, "density", density_aux_basis=aux_basis, density_metric=metric, grid_level=grid_level)


def scf_cache(frames, lab, cache_dir: Path, tag: str) -> list[dict]:
    """The SCF density matrix (and energy) of every frame, from ``cache_dir`` or by rerunning the labeler's SCF."""
    out = []
    cache_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    new = 0
    for i, a in enumerate(frames):
        key = hashlib.sha1(np.round(a.positions, 8).tobytes() + a.numbers.tobytes() + tag.encode()).hexdigest()[:16]
        path = cache_dir / f"scf_{key}.npz"
        if path.exists():
            z = np.load(path)
            out.append({"dm": z["dm"], "energy": float(z["energy"])})
            continue
        mol = lab.build_mol(a)
        mf, _ = lab.run_scf(mol)
        dm = np.asarray(mf.make_rdm1())
        np.savez(path, dm=dm, energy=mf.e_tot)
        out.append({"dm": dm, "energy": float(mf.e_tot)})
        new += 1
        if new % 20 == 0:
            print(f"  SCF {i + 1}/{len(frames)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    print(f"SCF densities: {new} computed, {len(frames) - new} from the cache ({time.perf_counter() - t0:.0f} s)", flush=True)
    return out


def grid_sums(frames, lab, scf, coefficient_sets, aux_basis) -> dict:
    """Per structure (rows) and coefficient set (columns): int d^2 and int |d| with d = rho_set - rho_SCF
    (``sq_scf``, ``ab_scf``) and d = rho_set - rho_fit (the first set: ``sq_fit``, ``ab_fit``); and
    int rho_SCF^2, int rho_fit^2 and N_el per structure."""
    from pyscf.dft import numint

    from psilearn.label.density import density_auxmol, total_dm

    n, m = len(frames), len(coefficient_sets)
    out = {k: np.zeros((n, m)) for k in ("sq_scf", "ab_scf", "sq_fit", "ab_fit")}
    out.update({k: np.zeros(n) for k in ("ref_scf", "ref_fit", "n_el")})
    for s, a in enumerate(frames):
        mol = lab.build_mol(a)
        grids = lab.grids(mol, lab.make_scf(mol))
        auxmol = density_auxmol(mol, aux_basis)
        c = np.stack([cs[s] for cs in coefficient_sets], axis=1)
        dm = total_dm(scf[s]["dm"])
        for p0 in range(0, len(grids.weights), 8000):
            pts, w = grids.coords[p0 : p0 + 8000], grids.weights[p0 : p0 + 8000]
            rho = numint.eval_rho(mol, numint.eval_ao(mol, pts), dm)
            rhos = numint.eval_ao(auxmol, pts) @ c
            d_scf = rhos - rho[:, None]
            d_fit = rhos - rhos[:, :1]
            out["sq_scf"][s] += w @ d_scf**2
            out["ab_scf"][s] += w @ np.abs(d_scf)
            out["sq_fit"][s] += w @ d_fit**2
            out["ab_fit"][s] += w @ np.abs(d_fit)
            out["ref_scf"][s] += w @ rho**2
            out["ref_fit"][s] += w @ rhos[:, 0] ** 2
        out["n_el"][s] = mol.nelectron
    return out


def pooled(g: dict, mask) -> tuple[np.ndarray, ...]:
    """(L2 vs SCF, L1 vs SCF, L2 vs fit, L1 vs fit) in %, pooled over the structures in ``mask``, per set."""
    n_el = g["n_el"][mask].sum()
    return (100 * np.sqrt(g["sq_scf"][mask].sum(0) / g["ref_scf"][mask].sum()), 100 * g["ab_scf"][mask].sum(0) / n_el,
            100 * np.sqrt(g["sq_fit"][mask].sum(0) / g["ref_fit"][mask].sum()), 100 * g["ab_fit"][mask].sum(0) / n_el)


def metric_sums(target, frames, coefficient_sets, reference) -> tuple[np.ndarray, np.ndarray]:
    """Per structure: d^T S d for each set (rows x sets) and c_ref^T S c_ref (S the labels' metric)."""
    err = np.zeros((len(frames), len(coefficient_sets)))
    ref = np.zeros(len(frames))
    for s, a in enumerate(frames):
        m, _ = structure_metric(target, a)
        for k, cs in enumerate(coefficient_sets):
            d = cs[s] - reference[s]
            err[s, k] = d @ m @ d
        ref[s] = reference[s] @ m @ reference[s]
    return err, ref


def dipole_errors(frames, coefficient_sets, aux_basis) -> np.ndarray:
    """|mu(nuclei + rho_set) - mu_SCF| in Debye, structures x sets."""
    out = np.zeros((len(frames), len(coefficient_sets)))
    for s, a in enumerate(frames):
        mu_scf = np.asarray(a.info["dipole_moment"], dtype=float)
        for k, cs in enumerate(coefficient_sets):
            out[s, k] = np.linalg.norm(dipole(a, cs[s], aux_basis) - mu_scf)
    return DEBYE_PER_AU * out


def distinct_mask(frames) -> np.ndarray:
    """True for the first frame of each distinct geometry (sorted interatomic distances to 1e-3 Å): rotated
    copies of one geometry count once."""
    seen, mask = set(), []
    for a in frames:
        key = tuple(np.round(np.sort(a.get_all_distances()[np.triu_indices(len(a), 1)]), 3)) + tuple(a.numbers)
        mask.append(key not in seen)
        seen.add(key)
    return np.array(mask)


def scf_guess_part(frames, predicted, reference, method, aux_basis, conv_tol, grid_level, n_train) -> list[str]:
    from psilearn.observe.density.scf_guess import _labeler, _run, guess_density_matrix

    lab = _labeler(method, conv_tol, grid_level, 100)
    rows = [f"\nSCF guess: the first {len(frames)} distinct test geometries, {lab.name}, conv_tol {conv_tol:g}, grid level {grid_level}; "
            f"guess from the model fitted on {n_train} structures (electron count constrained)\n",
            "| guess | total cycles | mean cycles | min–max | saved vs default | converged | wall s (guess build incl.) | max \\|ΔE\\| vs default (Ha) |",
            "|---|---|---|---|---|---|---|---|"]
    res = {"default": [], "predicted": [], "fitted (reference)": []}
    for s, a in enumerate(frames):
        mol = lab.build_mol(a)
        n, e, ok, t = _run(lab.make_scf(mol), None)
        res["default"].append((n, e, ok, t))
        for name, c in (("predicted", predicted[s]), ("fitted (reference)", reference[s])):
            mf = lab.make_scf(mol)
            t0 = time.perf_counter()
            dm0 = guess_density_matrix(mf, fitted_density(a, c, aux_basis), lab.xc)
            build = time.perf_counter() - t0
            n, e, ok, t = _run(mf, dm0)
            res[name].append((n, e, ok, t + build))
    base = np.array([r[0] for r in res["default"]])
    e_base = np.array([r[1] for r in res["default"]])
    for name, r in res.items():
        cyc = np.array([x[0] for x in r])
        saved = 100 * (base.sum() - cyc.sum()) / base.sum()
        de = np.max(np.abs(np.array([x[1] for x in r]) - e_base))
        rows.append(f"| {name} | {cyc.sum()} | {cyc.mean():.2f} | {cyc.min()}–{cyc.max()} | {saved:.1f} % | "
                    f"{sum(x[2] for x in r)}/{len(r)} | {sum(x[3] for x in r):.1f} | {de:.1e} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--train", default="50,100,200,400,800", help="comma-separated training sizes (nested)")
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--config", default=None, help="options file (soap:, density: sections)")
    ap.add_argument("--cache", default="density_bench_cache", help="directory of the cached SCF density matrices")
    ap.add_argument("--method", default=None, help="SCF method (default: the file's 'method' label)")
    ap.add_argument("--grid-level", type=int, default=3)
    ap.add_argument("--scf-guess", type=int, default=0, help="SCF-guess comparison on this many test structures")
    ap.add_argument("--conv-tol", type=float, default=1e-9, help="SCF conv_tol of the guess comparison")
    ap.add_argument("--solver", choices=["auto", "direct", "cg"], default=None,
                    help="density.solver for every fit (default: the config's, else auto)")
    ap.add_argument("-o", "--output", default=None, help="also write the tables (markdown) here")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    lines: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)
        if args.output:
            Path(args.output).write_text("\n".join(lines) + "\n")

    t_start = time.perf_counter()
    data = load_density_dataset(args.data)
    target = data.target
    sizes = [int(x) for x in args.train.split(",")]
    if args.test + max(sizes) > len(data):
        raise SystemExit(f"--test {args.test} + --train {max(sizes)} > {len(data)} frames")
    test = data.subset(range(args.test))
    frames = test.frames
    ref = [test.coefficients(i) for i in range(len(test))]
    first = frames[0].info
    aux_basis, metric = first["density_aux_basis"], first["density_metric"]
    method = args.method or str(first.get("method", "pbe/def2-svp"))
    n_el = np.array([a.numbers.sum() - a.info.get("charge", 0) for a in frames], dtype=float)
    emit(f"# Density learning curve: {Path(args.data).name}\n")
    emit("Command: `python benchmarks/" + Path(sys.argv[0]).name + " " + " ".join(sys.argv[1:]) + "`  ")
    emit(f"{args.data}: {len(data)} frames; {target.describe()}; labels {method}, aux basis {aux_basis}, {metric} metric.  ")
    emit(f"Test = frames 0–{args.test - 1}; training = the next n frames (nested). Grid: PySCF level {args.grid_level} "
         f"(the SCF's own grid). OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, shared 2-core machine.  ")
    emit(f"Options: {'--config ' + args.config if args.config else 'defaults (λ-SOAP cutoff 5 Å, n_max 6, l_max 4, n_sparse auto, ζ 2, hold-out λ)'}.")

    distinct = distinct_mask(frames)
    emit(f"Test set: {len(frames)} frames, {distinct.sum()} distinct geometries (rotated copies of one geometry count once; "
         "the second table pools over those only).")
    lab = labeler(method, aux_basis, metric, args.grid_level)
    scf = scf_cache(frames, lab, Path(args.cache), f"{method}|{args.grid_level}|{lab.conv_tol}")
    e_label = np.array([a.info.get("total_energy", np.nan) for a in frames])
    de = np.nanmax(np.abs(np.array([x["energy"] for x in scf]) - e_label))
    g_fit = grid_sums(frames, lab, scf, [ref], aux_basis)
    dip_fit = dipole_errors(frames, [ref], aux_basis)[:, 0]
    dn_fit = np.abs([target_electrons(target, a, c) for a, c in zip(frames, ref)] - n_el)
    label_l2 = 100 * np.mean([a.info["density_fit_l2"] for a in frames])
    label_dip = DEBYE_PER_AU * np.mean([a.info["density_fit_dipole_error"] for a in frames])
    l2_fit, l1_fit, _, _ = pooled(g_fit, slice(None))
    emit(f"\nSCF rerun check: max |E_rerun - E_label| = {de:.1e} Ha. Fit floor on the test set (reference fitted densities vs "
         f"SCF, pooled): L2 {l2_fit[0]:.3f} %, L1 {l1_fit[0]:.3f} % (mean of the labels' per-structure L2: {label_l2:.3f} %); "
         f"fit dipole MAE {dip_fit.mean():.4f} D (labels: {label_dip:.4f} D).  ")
    emit(f"Peak RSS after loading data and SCF densities: {peak_rss_mb():.0f} MB.\n")
    header = ("| n_train | N constraint | L2 % vs SCF | L1 % vs SCF | L2 % vs fit | L1 % vs fit | SALTED % RMSE | "
              "metric err % | dipole MAE (D) | mean \\|dN\\| (e) | weights | λ | fit s | predict ms/structure | peak RSS MB |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    tables = {"all": [], "distinct": []}
    for name, mask in (("all", np.ones(len(frames), bool)), ("distinct", distinct)):
        a2, a1, _, _ = pooled(g_fit, mask)
        tables[name].append(f"| reference fit (floor) | – | {a2[0]:.3f} | {a1[0]:.3f} | 0 | 0 | – | 0 | {dip_fit[mask].mean():.4f} | "
                            f"{dn_fit[mask].mean():.1e} | – | – | – | – | – |")
    emit(header)
    emit(tables["all"][0])
    model = None
    for n in sizes:
        train = data.subset(range(args.test, args.test + n))
        t0 = time.perf_counter()
        options = load_config(args.config)
        if args.solver:
            options["density"] = {**(options.get("density") or {}), "solver": args.solver}
        model = fit_model("density", target, train, options)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = model.predict(frames)
        t_pred = time.perf_counter() - t0
        t0 = time.perf_counter()
        free = model.predict(frames, conserve=False)
        t_free = time.perf_counter() - t0
        rss = peak_rss_mb()
        mean = [target.from_irreps(a, model.baseline_vector(a)) for a in frames]
        sets = [ref, list(pred.coefficients), list(free.coefficients)]
        g = grid_sums(frames, lab, scf, sets, aux_basis)
        merr, mref = metric_sums(target, frames, [sets[1], sets[2], mean], ref)
        dips = dipole_errors(frames, sets[1:], aux_basis)
        dns = np.abs(np.stack([np.asarray(p.electrons) for p in (pred, free)], axis=1) - n_el[:, None])
        lam, nw = model.metadata["regularization"], model.metadata["n_weights"]
        emit(f"n_train {n}: {model.metadata.get('solver', 'direct')} solve, {model.metadata['solve_seconds']} s solving"
             + "".join(f"; CG lambda {h['lambda']:.0e}: {h['iterations']} iterations, residual {h['relative_residual']:.1e}, {h['seconds']} s"
                       for h in model.metadata.get("cg", {}).get("solves", [])) + "  ")
        for tname, mask in (("all", np.ones(len(frames), bool)), ("distinct", distinct)):
            l2s, l1s, l2f, l1f = pooled(g, mask)
            me = 100 * np.sqrt(merr[mask].sum(0) / mref[mask].sum())
            for k, (cname, tp) in enumerate((("yes", t_pred), ("no", t_free))):
                row = (f"| {n} | {cname} | {l2s[k + 1]:.3f} | {l1s[k + 1]:.3f} | {l2f[k + 1]:.3g} | {l1f[k + 1]:.3g} | "
                       f"{100 * me[k] / me[2]:.3f} | {me[k]:.3g} | {dips[mask, k].mean():.4f} | {dns[mask, k].mean():.1e} | {nw} | "
                       f"{lam:.0e} | {t_fit:.1f} | {1000 * tp / len(frames):.1f} | {rss:.0f} |")
                tables[tname].append(row)
                if tname == "all":
                    emit(row)
        if tname == "distinct":
            mean_err = me[2]
    emit(f"\nMean model (per-element mean l = 0 coefficients) metric error, last size: {mean_err:.4f} % on the distinct geometries "
         "(SALTED % RMSE = metric err / mean-model err × 100).")
    emit(f"\nThe same, pooled over the {distinct.sum()} distinct test geometries only (timings and memory as above):\n")
    emit(header)
    for row in tables["distinct"]:
        emit(row)
    if args.scf_guess and model is not None:
        idx = np.flatnonzero(distinct)[: args.scf_guess]
        sub = [frames[i] for i in idx]
        pred = model.predict(sub)
        for row in scf_guess_part(sub, list(pred.coefficients), [ref[i] for i in idx], method, aux_basis, args.conv_tol,
                                  args.grid_level, sizes[-1]):
            emit(row)
    emit(f"\nTotal wall time {time.perf_counter() - t_start:.0f} s.")


def target_electrons(target, atoms, c) -> float:
    from psilearn.label.density import aux_moments, structure_auxmol

    return float(aux_moments(structure_auxmol(atoms, target.aux_basis))[0] @ c)


if __name__ == "__main__":
    main()
