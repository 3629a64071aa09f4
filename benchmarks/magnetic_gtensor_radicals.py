"""g-tensors and spin populations of small organic radicals (issue 16 benchmark; docs/magnetic.md).

Data: doublet radicals CH3, CH2OH, vinyl (C2H3) and H2NO from RDKit (``psilearn sample --smiles``,
multiplicity 2 from the SMILES radical), sampled by GFN2-xTB Langevin MD at 500 K (tblite run with
multiplicity 2: ``psilearn sample --mode md``, every 20th step of 0.5 fs; 100, 120, 120, 100 frames, of
which 100, 120, 80 and 60 evenly spaced ones are labelled), labelled with
``psilearn label --method pbe0/def2-svp --observables gtensor,spin`` (UKS; g-tensor by
pyscf-properties, Hirshfeld and Mulliken spin populations). ``--prepare`` runs these commands; by
default the script reads an existing labelled extxyz.

Split: a fixed test set of ``--test-fraction`` of the structures of every radical (drawn with the
seed, by structure); training sets are the first n of one random order of the rest (nested).

Models (default options, nothing tuned on the test set):
* SA-GPR of the g-shift Δg = (g - g_e 1)·10^6 ppm (info ``delta_g``, 9 numbers row-major) as a general
  rank-2 tensor (``--tensor ij``: 0e + 1e + 2e; g is not symmetric), intensive (mean pooling).
  Errors: g_iso (= Δg_iso) in ppm from the predicted trace, RMSE over the 9 Cartesian components
  of Δg, and RMSE of the principal values (Δg_k = (sqrt(eig(g g^T))_k - g_e)·10^6, sorted).
* Baseline on g_iso alone: invariant SOAP power spectrum (featomic; per centre element, averaged
  over the atoms of a structure) + scikit-learn KernelRidge (RBF), alpha and gamma by 5-fold CV on
  the training set. Reference rows: the training mean, and the training mean per radical (knows
  which radical a test structure is).
* SA-GPR of the per-atom Hirshfeld spin populations (scalar per atom, e); their sum per structure
  should be 1 (2S). psilearn has no total constraint for a per-atom scalar except QEq (charges), so
  the raw sum error is reported, and beside it the errors after shifting every atom of a structure
  by (1 - sum)/N_atoms (a projection done here, not a psilearn option).
* ``--nn SECONDS``: the equivariant network (``--model nn``) on both targets at the largest size,
  with that wall-time budget per model.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/magnetic_gtensor_radicals.py --data labelled.xyz
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/magnetic_gtensor_radicals.py --prepare DIR   # sample + label first
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

# name: (SMILES, MD frames, frames kept evenly spaced along the trajectory for labelling)
RADICALS = {"ch3": ("[CH3]", 100, 100), "ch2oh": ("[CH2]O", 120, 120), "vinyl": ("C=[CH]", 120, 80), "h2no": ("N[O]", 100, 60)}
G_E = 2.00231930436  # free-electron g (CODATA 2018; the labeler uses PySCF's nist.G_ELECTRON)


def cli(*args: str) -> None:
    """Run ``psilearn ARGS`` with this interpreter (the benchmark's own checkout on PYTHONPATH)."""
    cmd = [sys.executable, "-c", "from psilearn.cli.main import main; main()", *args]
    print("$ psilearn " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def prepare(workdir: str, method: str) -> str:
    """Sample MD structures of every radical and label them; returns the labelled extxyz path."""
    import ase.io

    os.makedirs(workdir, exist_ok=True)
    kept = {}
    for name, (smiles, n, keep) in RADICALS.items():
        start, md = os.path.join(workdir, f"{name}_start.xyz"), os.path.join(workdir, f"{name}_md.xyz")
        cli("sample", "--smiles", smiles, "--conformers", "1", "-o", start, "-q")
        cli("sample", start, "--mode", "md", "--temperature", "500", "--steps", str(20 * n), "--stride", "20",
            "--timestep", "0.5", "--seed", "1", "-o", md, "-q")
        traj = ase.io.read(md, ":")
        kept[name] = [traj[i] for i in np.linspace(0, n - 1, keep).round().astype(int)]
        for atoms in kept[name]:
            atoms.info["radical"] = name
    # labelling order of the benchmark run: CH3, CH2OH, then vinyl and H2NO alternating (so that a
    # campaign stopped early stays balanced); the split depends on this order
    frames = kept["ch3"] + kept["ch2oh"]
    for i, vinyl in enumerate(kept["vinyl"]):
        frames += [vinyl] + kept["h2no"][i : i + 1]
    structures, labelled = os.path.join(workdir, "structures.xyz"), os.path.join(workdir, "labelled.xyz")
    ase.io.write(structures, frames)
    cli("label", structures, "--method", method, "--observables", "gtensor,spin", "--workers", "1", "--threads-per-worker", "1",
        "-o", labelled, "--db", os.path.join(workdir, "labels.db"), "--no-progress")
    return labelled


def split(frames: list, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Test indices (``fraction`` of every radical) and a random order of the remaining ones."""
    rng = np.random.default_rng(seed)
    names = np.array([a.info.get("radical", a.info.get("smiles", "?")) for a in frames])
    test = []
    for name in sorted(set(names)):
        idx = np.flatnonzero(names == name)
        test.extend(rng.choice(idx, int(round(fraction * len(idx))), replace=False))
    test = np.sort(np.array(test))
    pool = np.setdiff1d(np.arange(len(frames)), test)
    return test, rng.permutation(pool)


def principal_shifts(dg: np.ndarray) -> np.ndarray:
    """(n, 9) Δg in ppm -> (n, 3) principal g-shifts in ppm, ascending: sqrt of the eigenvalues of
    g g^T with g = g_e 1 + Δg·1e-6 (the usual definition for a non-symmetric g)."""
    g = G_E * np.eye(3) + dg.reshape(-1, 3, 3) * 1e-6
    ev = np.linalg.eigvalsh(np.einsum("nij,nkj->nik", g, g))
    return (np.sqrt(ev) - G_E) * 1e6


def gtensor_errors(pred: np.ndarray, ref: np.ndarray) -> dict:
    """Errors (ppm) of predicted (n, 9) Δg against the reference."""
    e_iso = np.trace(pred.reshape(-1, 3, 3), axis1=1, axis2=2) / 3 - np.trace(ref.reshape(-1, 3, 3), axis1=1, axis2=2) / 3
    e_pv = principal_shifts(pred) - principal_shifts(ref)
    return {"iso_mae": np.mean(np.abs(e_iso)), "iso_rmse": np.sqrt(np.mean(e_iso**2)),
            "comp_rmse": np.sqrt(np.mean((pred - ref) ** 2)), "pv_rmse": np.sqrt(np.mean(e_pv**2)), "iso_err": e_iso}


def soap_features(frames: list, species: list[int]) -> np.ndarray:
    """Invariant SOAP power spectrum, centre element kept as a property, averaged over atoms:
    (n_structures, n_features)."""
    import featomic
    import metatensor
    from metatensor import Labels

    from psilearn.features.lsoap import _featomic_ready

    calc = featomic.SoapPowerSpectrum(
        cutoff={"radius": 5.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        density={"type": "Gaussian", "width": 0.3},
        basis={"type": "TensorProduct", "max_angular": 4, "radial": {"type": "Gto", "max_radial": 6}},
    )
    t = calc.compute([_featomic_ready(a, i) for i, a in enumerate(frames)])
    pairs = [[a, b] for a in species for b in species if a <= b]
    t = t.keys_to_properties(Labels(["neighbor_1_type", "neighbor_2_type"], np.array(pairs, dtype=np.int32)))
    t = t.keys_to_properties(Labels(["center_type"], np.array([[z] for z in species], dtype=np.int32)))
    t = metatensor.mean_over_samples(t, ["atom"])
    return np.asarray(t.block().values)


def krr_giso(train_frames, y_train, test_frames, species, seed: int) -> np.ndarray:
    """SOAP + KernelRidge (RBF; alpha, gamma by 5-fold CV on the training set) of Δg_iso; returns
    the test predictions (ppm)."""
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import GridSearchCV, KFold

    xtr, xte = soap_features(train_frames, species), soap_features(test_frames, species)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-12
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    ym = y_train.mean()
    grid = {"alpha": [1e-8, 1e-6, 1e-4, 1e-2, 1e0], "gamma": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]}
    cv = KFold(5, shuffle=True, random_state=seed)
    krr = GridSearchCV(KernelRidge(kernel="rbf"), grid, cv=cv, scoring="neg_mean_squared_error").fit(xtr, y_train - ym)
    return krr.predict(xte) + ym


def fit_predict(kind: str, target, train, test_frames, nn_seconds: float, seed: int):
    """Fit ``kind`` ('sagpr' defaults, or 'nn' with a wall-time budget) and predict the test
    structures; returns (Prediction values, fit seconds)."""
    from psilearn.models import SAGPR, SAGPRConfig

    t0 = time.perf_counter()
    if kind == "sagpr":
        model = SAGPR(target, config=SAGPRConfig(seed=seed)).fit(train)
    else:
        from psilearn.models.nn import NetworkConfig, NNModel, TrainConfig

        net = NetworkConfig(cutoff=5.0, channels=32, layers=2, lmax=2, correlation=2)
        run = TrainConfig(epochs=2000, batch_size=8, threads=1, max_seconds=nn_seconds, patience=60, uncertainty="none")
        model = NNModel(target, net, run, seed=seed).fit(train)
    fit_s = time.perf_counter() - t0
    return model.predict(test_frames, return_std=False).values, fit_s


def spin_errors(pred: np.ndarray, ref: np.ndarray, frames: list) -> dict:
    """Per-atom errors (e) and the sum rule: raw, and after the uniform shift that makes each
    structure's predicted spins sum to 1."""
    counts = np.array([len(a) for a in frames])
    owner = np.repeat(np.arange(len(frames)), counts)
    sums = np.bincount(owner, pred)
    shifted = pred + ((1.0 - sums) / counts)[owner]
    err, err_s = pred - ref, shifted - ref
    return {"mae": np.mean(np.abs(err)), "rmse": np.sqrt(np.mean(err**2)), "sum_mae": np.mean(np.abs(sums - 1)),
            "sum_max": np.max(np.abs(sums - 1)), "proj_mae": np.mean(np.abs(err_s)), "proj_rmse": np.sqrt(np.mean(err_s**2))}


def gtensor_curve(frames, test, order, sizes, args) -> None:
    """Learning curve of Δg (SA-GPR) and of Δg_iso (SOAP+KRR), with reference rows."""
    from psilearn import Target, load_dataset

    target = Target("delta_g", tensor="ij", pool="mean", units="ppm")
    data = load_dataset(frames, target)
    te = data.subset(test)
    ref = te.values.reshape(len(test), 9)
    iso = np.trace(data.values.reshape(-1, 3, 3), axis1=1, axis2=2) / 3
    radical = np.array([a.info["radical"] for a in frames])
    print(f"\n## g-tensor: SA-GPR of delta_g (ppm, general rank 2, mean pooling), test {len(test)} structures")
    print(f"test delta_g_iso: mean {iso[test].mean():.0f} ppm, std {iso[test].std():.0f} ppm; "
          f"delta_g components std {ref.std():.0f} ppm; principal values std {principal_shifts(ref).std():.0f} ppm\n")
    print("| n_train | g_iso MAE | g_iso RMSE | Δg 9-comp RMSE | principal RMSE | KRR g_iso MAE | KRR g_iso RMSE | mean/radical MAE | fit s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        idx = np.sort(order[:n])
        pred, fit_s = fit_predict("sagpr", target, data.subset(idx), te.frames, 0, args.seed)
        m = gtensor_errors(pred.reshape(len(test), 9), ref)
        krr = krr_giso([frames[i] for i in idx], iso[idx], te.frames, data.species, args.seed) - iso[test]
        per_rad = np.array([iso[idx][radical[idx] == r].mean() if np.any(radical[idx] == r) else iso[idx].mean() for r in radical[test]])
        print(f"| {n} | {m['iso_mae']:.1f} | {m['iso_rmse']:.1f} | {m['comp_rmse']:.1f} | {m['pv_rmse']:.1f} | "
              f"{np.mean(np.abs(krr)):.1f} | {np.sqrt(np.mean(krr**2)):.1f} | {np.mean(np.abs(per_rad - iso[test])):.1f} | {fit_s:.1f} |", flush=True)
    print(f"\ntraining-pool mean of delta_g_iso as the prediction: MAE {np.mean(np.abs(iso[order].mean() - iso[test])):.1f} ppm")
    print("\nper radical at n =", sizes[-1], "(SA-GPR g_iso MAE / KRR g_iso MAE / test std of delta_g_iso, ppm):")
    for r in sorted(set(radical)):
        sel = radical[test] == r
        print(f"  {r:<6} {np.mean(np.abs(m['iso_err'][sel])):8.1f} {np.mean(np.abs(krr[sel])):8.1f} {iso[test][sel].std():8.1f}  ({sel.sum()} test)")
    if args.nn:
        pred, fit_s = fit_predict("nn", target, data.subset(np.sort(order[: sizes[-1]])), te.frames, args.nn, args.seed)
        m = gtensor_errors(pred.reshape(len(test), 9), ref)
        print(f"\nnn (n = {sizes[-1]}, budget {args.nn:.0f} s): g_iso MAE {m['iso_mae']:.1f}, RMSE {m['iso_rmse']:.1f}, "
              f"9-comp RMSE {m['comp_rmse']:.1f}, principal RMSE {m['pv_rmse']:.1f} ppm; fit {fit_s:.0f} s")


def spin_curve(frames, test, order, sizes, args) -> None:
    """Learning curve of per-atom spin populations with the sum rule."""
    from psilearn import Target, load_dataset

    target = Target(args.spin_key, per="atom", units="e")
    data = load_dataset(frames, target)
    te = data.subset(test)
    ref = te.values.ravel()
    print(f"\n## spin populations: SA-GPR of per-atom {args.spin_key} (e), test {len(test)} structures ({len(ref)} atoms)")
    print(f"test per-atom std {ref.std():.3f} e; reference sums: max |sum - 1| {max(abs(a.arrays[args.spin_key].sum() - 1) for a in te.frames):.1e}\n")
    print("| n_train | MAE (e) | RMSE (e) | sum MAE | sum max | MAE after shift | RMSE after shift | fit s |")
    print("|---|---|---|---|---|---|---|---|")
    for n in sizes:
        pred, fit_s = fit_predict("sagpr", target, data.subset(np.sort(order[:n])), te.frames, 0, args.seed)
        m = spin_errors(pred.ravel(), ref, te.frames)
        cells = [m[k] for k in ("mae", "rmse", "sum_mae", "sum_max", "proj_mae", "proj_rmse")]
        print(f"| {n} | " + " | ".join(f"{c:.4f}" for c in cells) + f" | {fit_s:.1f} |", flush=True)
    if args.nn:
        pred, fit_s = fit_predict("nn", target, data.subset(np.sort(order[: sizes[-1]])), te.frames, args.nn, args.seed)
        m = spin_errors(pred.ravel(), ref, te.frames)
        print(f"\nnn (n = {sizes[-1]}, budget {args.nn:.0f} s): MAE {m['mae']:.4f}, RMSE {m['rmse']:.4f}, sum MAE {m['sum_mae']:.4f}, "
              f"sum max {m['sum_max']:.4f}, after shift MAE {m['proj_mae']:.4f} e; fit {fit_s:.0f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="labelled extxyz (info delta_g, arrays hirshfeld_spins)")
    ap.add_argument("--prepare", metavar="DIR", help="sample and label the radicals into DIR first")
    ap.add_argument("--method", default="pbe0/def2-svp")
    ap.add_argument("--sizes", default="25,50,100,200,max")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spin-key", default="hirshfeld_spins")
    ap.add_argument("--nn", type=float, default=0, metavar="SECONDS", help="also the network, this wall-time budget per model")
    ap.add_argument("--only", choices=["gtensor", "spin"], help="one of the two parts")
    args = ap.parse_args(argv)
    import ase.io

    path = prepare(args.prepare, args.method) if args.prepare else args.data
    if not path or not os.path.exists(path):
        print(f"SKIP: no labelled data ({path}); pass --data FILE or --prepare DIR")
        return 0
    frames = [a for a in ase.io.read(path, ":") if "delta_g" in a.info and args.spin_key in a.arrays]
    for a in frames:
        a.info.setdefault("radical", a.info.get("smiles", "?"))
    test, order = split(frames, args.test_fraction, args.seed)
    sizes = [len(order) if s == "max" else int(s) for s in args.sizes.split(",")]
    sizes = sorted({min(s, len(order)) for s in sizes})
    counts = {r: sum(a.info["radical"] == r for a in frames) for r in sorted({a.info["radical"] for a in frames})}
    print(f"{path}: {len(frames)} labelled structures {counts}; test {len(test)}, training pool {len(order)}; seed {args.seed}")
    if args.only != "spin":
        gtensor_curve(frames, test, order, sizes, args)
    if args.only != "gtensor":
        spin_curve(frames, test, order, sizes, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
