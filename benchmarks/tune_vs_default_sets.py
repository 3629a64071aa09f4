"""Tuned vs default SA-GPR vs SOAP + KRR vs the NN on data sets psilearn was never tuned on.

Sets (read from ../shared/data beside the checkout):
  si            29Si NMR shielding tensors (matten_tensors/si_nmr_tensors.extxyz), per atom, general
                rank 2 (`ij`: 0e + 1e + 2e), labels on Si only (`has_tensor` mask). The split of
                docs/tuning.md and benchmarks/si_nmr_nn.py: train on frames 0-119, test on frames
                120-199 restricted to the training elements. ppm.
  liquid-mu     liquid-water dipole (deepmd_sets/water_tensor/dipole, one vector per 192-atom box),
  liquid-alpha  and polarizability (.../polar, symmetric rank 2), read as periodic as in
                benchmarks/nn_vs_mace.py (the `nopbc` marker is wrong for these bulk boxes): train on
                the first --n-train (default 60) of training boxes 0-59, test on the held-out boxes
                60-79 of the same run (the validation_data_reformat boxes are a shifted distribution,
                see nn_vs_mace.py). Labels projected onto the declared symmetry, in the set's own (unstated) units.
  qm9           QM9 per-atom Mulliken charges (qm9_dipoles_charges, `initial_charges`, e): the split of
                benchmarks/per_element_qm9.py: train QMtrainRandom.xyz@:385, test TestQM9.xyz@:1000
                (molecules with elements unseen in training dropped).
Rows:
  default       psilearn SA-GPR with no options (data-scaled defaults)
  tuned         psilearn fit --tune SECONDS (Optuna TPE, k-fold CV on the training set); the time is
                the whole study
  SOAP+KRR (0e) invariant SOAP power spectrum (featomic) + scikit-learn KernelRidge (RBF, alpha and
                gamma by 5-fold CV) on the invariant part only; per structure: water_tensors.py's
                krr_baseline (features summed over atoms; no CV column); per atom: one KRR per element
                of the labelled atoms, folds by structure
  NN            psilearn --model nn, default network, nn_train: {max_seconds: --nn-seconds, threads: 1}
Columns: test RMSE as % of the test spread (Cartesian and per irreducible channel), absolute Cartesian
test RMSE in the label's units, the model's own estimate (SA-GPR: k-fold CV RMSE; NN: RMSE on its 10 %
validation split; KRR: CV RMSE of the 0e part), wall time of the fit.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tune_vs_default_sets.py --set si --tune 300 --nn-seconds 300

Writes benchmarks/results/tune_vs_default_{set}.md and .json (``--out DIR`` to put them elsewhere).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = (HERE / ".." / ".." / "shared" / "data").resolve()
SETS = ("si", "liquid-mu", "liquid-alpha", "qm9")


def _bench_module(name: str):
    """Another benchmark script of this folder, imported by path (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_set(name: str, n_train: int | None):
    """(target, train, test, description) of one set."""
    import ase.io

    from psilearn import Target, load_dataset

    if name == "si":
        target = Target("nmr_tensor", per="atom", tensor="ij", units="ppm")
        frames = ase.io.read(DATA / "matten_tensors" / "si_nmr_tensors.extxyz", ":200")
        train = load_dataset(frames[:120], target, label_mask="has_tensor")
        test = load_dataset([a for a in frames[120:] if set(a.numbers) <= set(train.species)], target, label_mask="has_tensor")
        return target, train, test, (f"29Si NMR shielding tensors: train frames 0-119 ({len(train.values)} Si tensors), "
                                     f"test frames 120-199 with training elements only ({len(test)} cells, {len(test.values)} Si tensors)")
    if name.startswith("liquid"):
        sub, key, tensor = ("dipole", "dipole", "i") if name == "liquid-mu" else ("polar", "polarizability", "ij=ji")
        target = Target(key, tensor=tensor, units="as stored")  # the DeePMD example does not state its units
        system = DATA / "deepmd_sets" / "water_tensor" / sub / "training_data_reformat" / "global_system"
        n = 60 if n_train is None else min(n_train, 60)
        train = load_dataset(f"{system}@:{n}", target, symmetrize=True)
        test = load_dataset(f"{system}@60:", target, symmetrize=True)
        make_periodic = _bench_module("nn_vs_mace").make_periodic
        make_periodic(train)
        make_periodic(test)
        return target, train, test, (f"liquid water {key} (64 H2O per periodic box): train boxes 0-{n - 1}"
                                     f"{' (subsampled from 60)' if n < 60 else ''}, test boxes 60-79 of the same run")
    if name == "qm9":
        qm9 = DATA / "qm9_dipoles_charges"
        target = Target("initial_charges", per="atom", units="e")
        n = 385 if n_train is None else n_train
        train = load_dataset(f"{qm9}/QMtrainRandom.xyz@:{n}", target)
        frames = [a for a in ase.io.read(qm9 / "TestQM9.xyz", ":1000") if set(a.numbers) <= set(train.species)]
        test = load_dataset(frames, target)
        return target, train, test, (f"QM9 per-atom Mulliken charges: train QMtrainRandom.xyz 0-{n - 1} ({len(train.values)} atoms), "
                                     f"test TestQM9.xyz 0-999 with training elements ({len(test)} molecules, {len(test.values)} atoms)")
    raise ValueError(name)


def score(target, test, pred_irreps: np.ndarray) -> dict:
    """Test metrics of a psilearn model's predicted irreps (labelled atoms only for masked sets)."""
    from psilearn.metrics.regression import regression_metrics

    if getattr(test, "labelled", None) is not None:
        pred_irreps = pred_irreps[test.labelled]
    return regression_metrics(target, target.to_irreps(test.values), pred_irreps)


def _krr_features(frames, centers: list[int], species: list[int]):
    """Invariant SOAP power spectrum of every atom of the ``centers`` elements, neighbour channels of the
    ``species`` elements: {Z: (rows, (structure, atom) pairs)}; the hypers of water_tensors.py's krr_baseline."""
    import featomic
    import metatensor

    from psilearn.features.lsoap import _featomic_ready

    calc = featomic.SoapPowerSpectrum(
        cutoff={"radius": 5.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        density={"type": "Gaussian", "width": 0.3},
        basis={"type": "TensorProduct", "max_angular": 4, "radial": {"type": "Gto", "max_radial": 5}},
    )
    pairs = [[a, b] for i, a in enumerate(species) for b in species[i:]]
    t = calc.compute([_featomic_ready(a, i) for i, a in enumerate(frames)],
                     selected_keys=metatensor.Labels(["center_type"], np.array([[z] for z in centers])))
    # the same property columns for every element (pairs absent around one element filled with zeros)
    t = t.keys_to_properties(metatensor.Labels(["neighbor_1_type", "neighbor_2_type"], np.array(pairs)))
    out = {}
    for key, block in t.items():
        out[int(key["center_type"])] = (np.asarray(block.values), np.asarray(block.samples.values)[:, :2])
    return out


def krr_per_atom(train, test, target) -> dict:
    """SOAP + KernelRidge on the 0e part of a per-atom target, one model per element of the labelled atoms
    (alpha and gamma by 5-fold CV grouped by structure). Returns test RMSE, % of the test spread, CV RMSE."""
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import GridSearchCV, GroupKFold

    b0 = next(b for b in target.blocks if b.l == 0 and b.p == 1)

    def labelled_rows(ds):  # (structure, atom, Z, 0e label) of every labelled atom, in the Dataset's order
        idx = [(s, i, int(z)) for s, a in enumerate(ds.frames) for i, z in enumerate(a.numbers)]
        if ds.labelled is not None:
            idx = [r for r, keep in zip(idx, ds.labelled) if keep]
        return idx, target.to_irreps(ds.values)[:, b0.start]

    (itr, ytr), (ite, yte) = labelled_rows(train), labelled_rows(test)
    centers = sorted({z for _, _, z in itr})
    species = sorted({int(z) for a in train.frames for z in a.numbers})
    ftr, fte = _krr_features(train.frames, centers, species), _krr_features(test.frames, centers, species)
    pred, cv_sq = np.full(len(yte), np.nan), 0.0
    for z in centers:
        rows = {(int(s), int(i)): k for k, (s, i) in enumerate(ftr[z][1])}
        sel = [k for k, (_, _, zz) in enumerate(itr) if zz == z]
        x = ftr[z][0][[rows[itr[k][:2]] for k in sel]]
        y, groups = ytr[sel], np.array([itr[k][0] for k in sel])
        mu, sd = x.mean(0), x.std(0) + 1e-12
        x = (x - mu) / sd
        d2 = np.maximum(np.sum(x**2, 1)[:, None] + np.sum(x**2, 1)[None, :] - 2 * x @ x.T, 0.0)
        scale, ym, best = np.median(d2[d2 > 0]), y.mean(), None
        for c in (0.03, 0.1, 0.3, 1.0, 3.0):  # gamma in units of 1 / median squared distance
            search = GridSearchCV(KernelRidge(kernel="precomputed"), {"alpha": [1e-8, 1e-6, 1e-4, 1e-2, 1.0]},
                                  cv=GroupKFold(5), scoring="neg_root_mean_squared_error")
            search.fit(np.exp(-c / scale * d2), y - ym, groups=groups)
            if best is None or search.best_score_ > best[0]:
                best = (search.best_score_, c / scale, search.best_estimator_)
        cv_sq += len(sel) * best[0] ** 2
        tsel = [k for k, (_, _, zz) in enumerate(ite) if zz == z]
        trows = {(int(s), int(i)): k for k, (s, i) in enumerate(fte[z][1])}
        xt = (fte[z][0][[trows[ite[k][:2]] for k in tsel]] - mu) / sd
        d2t = np.maximum(np.sum(xt**2, 1)[:, None] + np.sum(x**2, 1)[None, :] - 2 * xt @ x.T, 0.0)
        pred[tsel] = best[2].predict(np.exp(-best[1] * d2t)) + ym
    rmse = float(np.sqrt(np.mean((pred - yte) ** 2)))
    return {"rmse": rmse, "pct_rmse": 100 * rmse / float(yte.std()), "cv_rmse": float(np.sqrt(cv_sq / len(ytr)))}


def krr_row(train, test, target) -> dict | None:
    """The SOAP + KRR (0e) row, None for targets without an invariant part (or fewer than 5 training structures)."""
    b0 = [b for b in target.blocks if b.l == 0 and b.p == 1]
    if not b0 or len(train) < 5:  # no invariant part, or too few structures for 5-fold CV
        return None
    if target.per == "atom":
        return krr_per_atom(train, test, target)
    pct = float(_bench_module("tune_vs_default")._krr_baseline()(train, test, target))  # water_tensors.py:krr_baseline
    spread = float(target.to_irreps(test.values)[:, b0[0].start].std())
    return {"rmse": pct * spread / 100, "pct_rmse": pct, "cv_rmse": None}


def _row(label: str, metrics: dict, names: list[str], estimate, seconds: float, **extra) -> dict:
    pct = {"Cartesian": metrics["cartesian"]["pct_rmse"], **{n: metrics["channels"][n]["pct_rmse"] for n in names[1:]}}
    return {"model": label, "pct_rmse": pct, "rmse": metrics["cartesian"]["rmse"], "estimate": estimate, "seconds": seconds, **extra}


ORDER = ("default", "tuned", "krr", "nn")  # row order in the table; the runs go default, krr, nn, tuned (longest last)


def run(args, save) -> None:
    """Fit and score every row of one set; ``save(rows, about, names, units)`` after each row."""
    from psilearn.errors import ConfigError
    from psilearn.metrics.regression import block_names
    from psilearn.models.factory import fit_model
    from psilearn.tune import describe_trial, tune_model

    target, train, test, about = load_set(args.set, args.n_train)
    names, rows = ["Cartesian", *block_names(target)], []
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    log(about)

    def add(kind, row):
        rows.append({"kind": kind, **row})
        rows.sort(key=lambda r: ORDER.index(r["kind"]))
        save(rows, about, names, target.units)
        log(f"{row['model']}: {row['pct_rmse'].get('0e' if kind == 'krr' else 'Cartesian', float('nan')):.2f} % in {row['seconds']:.0f} s")

    def psilearn_row(kind, label, model, seconds, **extra):
        held = model.metadata["heldout_metrics"]
        estimate = held["cartesian"]["rmse"] if "cartesian" in held else None  # None: a streamed fit reports none
        add(kind, _row(label, score(target, test, model.predict(test.frames, return_std=False).irreps), names, estimate, seconds, **extra))

    if "default" in args.models:
        t0 = time.perf_counter()
        psilearn_row("default", "SA-GPR, defaults", fit_model("sagpr", target, train, {}, seed=args.seed), time.perf_counter() - t0)
    if "krr" in args.models:
        t0 = time.perf_counter()
        krr = krr_row(train, test, target)
        if krr is not None:
            pct = {n: None for n in names}
            pct["0e"] = krr["pct_rmse"]
            if names == ["Cartesian", "0e"]:  # a scalar: the Cartesian value is the 0e part
                pct["Cartesian"] = krr["pct_rmse"]
            add("krr", {"model": "SOAP+KRR, 0e only", "pct_rmse": pct, "rmse": krr["rmse"], "rmse_of": "0e" if len(names) > 2 else None,
                        "estimate": krr["cv_rmse"], "seconds": time.perf_counter() - t0})
    if "nn" in args.models:
        t0 = time.perf_counter()
        model = fit_model("nn", target, train, {"nn_train": {"max_seconds": args.nn_seconds, "threads": 1}}, seed=args.seed, progress=False)
        member = model.metadata["members"][0]
        psilearn_row("nn", f"NN, {args.nn_seconds:g} s budget ({member['epochs']} epochs)", model, time.perf_counter() - t0)
    if "tuned" in args.models:
        t0 = time.perf_counter()
        try:
            model = tune_model("sagpr", target, train, seconds=args.tune, seed=args.seed, progress=lambda r: log(describe_trial(r)))
        except ConfigError as exc:  # no trial succeeded within the budget: a row that says so
            add("tuned", {"model": f"SA-GPR, --tune {args.tune:g}: {exc}", "pct_rmse": {}, "rmse": None, "estimate": None,
                          "seconds": time.perf_counter() - t0, "failed": str(exc)})
        else:
            rec = model.metadata["tuning"]
            done = sum(r["state"] == "complete" for r in rec["history"])
            psilearn_row("tuned", f"SA-GPR, --tune {args.tune:g} ({done}/{len(rec['history'])} trials)", model, time.perf_counter() - t0,
                         best_params=rec["best_params"], history=rec["history"])


def table(rows: list[dict], about: str, names: list[str], units: str, args) -> str:
    """The markdown table of one set."""
    fmt = lambda v, f: "" if v is None else format(v, f)  # noqa: E731
    out = [f"**{args.set}** -- {about}. Test RMSE as % of the test spread; seed {args.seed}; one thread "
           "(2 shared cores, timings under load).", "",
           "| model | " + " | ".join(f"{n} %" for n in names) + f" | RMSE [{units}] | own estimate [{units}] | fit time [s] |",
           "|---" * (len(names) + 4) + "|"]
    for r in rows:
        pct = " | ".join(fmt(r["pct_rmse"].get(n), ".2f") for n in names)
        rmse = fmt(r["rmse"], ".4g") + (" (0e)" if r.get("rmse_of") else "")
        est = fmt(r["estimate"], ".4g") if r["estimate"] is not None else "n/a"
        out.append(f"| {r['model']} | {pct} | {rmse} | {est} | {r['seconds']:.0f} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=SETS, required=True)
    ap.add_argument("--tune", type=float, default=300.0, metavar="SECONDS", help="tuning budget (default 300)")
    ap.add_argument("--nn-seconds", type=float, default=300.0, metavar="SECONDS", help="NN training budget (default 300)")
    ap.add_argument("--n-train", type=int, default=None, help="training structures (liquid: at most 60, default 60; qm9: default 385)")
    ap.add_argument("--models", default="default,tuned,krr,nn", help="comma list of rows to run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results"), help="folder for tune_vs_default_{set}.md/.json")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"SKIP: {DATA} not found (benchmarks read ../shared/data beside the checkout)")
        return 0
    t0 = time.perf_counter()
    cmd = "OMP_NUM_THREADS=1 python benchmarks/tune_vs_default_sets.py " + " ".join(sys.argv[1:])
    Path(args.out).mkdir(parents=True, exist_ok=True)
    state = {}

    def save(rows, about, names, units):  # after every row: an interrupted run keeps what it finished
        state["text"] = table(rows, about, names, units, args)
        Path(args.out, f"tune_vs_default_{args.set}.md").write_text(f"`{cmd}`\n\n{state['text']}\n")
        Path(args.out, f"tune_vs_default_{args.set}.json").write_text(json.dumps(
            {"set": args.set, "about": about, "units": units, "channels": names, "command": cmd, "rows": rows,
             "total_seconds": time.perf_counter() - t0}, indent=1, default=float))

    run(args, save)
    print("\n" + state.get("text", "no rows"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
