"""Electronic DOS learning curve on the DeePMD Si set: psilearn's spectrum model (total DOS with
L2 or shift-aware loss, and the local DOS learned per atom and summed) against a SOAP +
scikit-learn kernel-ridge baseline on the flattened spectrum.

Data: ../shared/data/deepmd_sets/dos/data/heat-221 (11 Si32 cells, total and per-atom DOS on 250
points). The set records no energy grid, so energies are point indices; peak errors and shifts are
in grid points. With 11 structures, each repeat holds out 3 random structures and trains on subsets
of the other 8.

    nice -n 10 python benchmarks/spectra_dos.py --out bench-dos     # ~2 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))
import numpy as np  # noqa: E402
from spectra_common import aggregate, krr_baseline, structure_features, summarise, table  # noqa: E402

from psilearn.data.spectra import load_spectrum_dataset, read_deepmd_dos  # noqa: E402
from psilearn.features import SoapConfig  # noqa: E402
from psilearn.models.spectrum import SpectrumConfig, SpectrumModel  # noqa: E402
from psilearn.models.spectrum.representation import invariant_features, subset_features  # noqa: E402
from psilearn.targets import Target  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "deepmd_sets", "dos", "data", "heat-221")


def run(args) -> dict:
    if not os.path.isdir(DATA):
        print(f"skipped: {DATA} not present")
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frames = read_deepmd_dos(DATA)
    n_grid = len(frames[0].info["dos"])
    grid = np.arange(n_grid, dtype=float)
    total = Target("dos", grid=grid, grid_units="index", units="states")
    local = Target("atom_dos", per="atom", grid=grid, grid_units="index", units="states")
    ds_total, ds_local = load_spectrum_dataset(frames, total), load_spectrum_dataset(frames, local)
    soap = SoapConfig(cutoff=args.cutoff, max_radial=args.max_radial, max_angular=args.max_angular)
    feats = {"total": invariant_features(frames, soap, [14])}  # one computation, subsets reused
    x = structure_features(feats["total"])
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    for seed in range(args.repeats):
        perm = np.random.default_rng(seed).permutation(len(frames))
        test, pool = np.sort(perm[:3]), perm[3:]
        ref = ds_total.values[test]
        test_frames = [frames[i] for i in test]
        for n in sizes:
            tr = np.sort(pool[:n])
            runs = {
                "psilearn GP (L2)": (total, {}),
                "psilearn GP (shift-aware)": (total, {"loss": "shift", "max_shift": args.max_shift}),
                "psilearn GP (local DOS, summed)": (local, {}),
            }
            for name, (target, opts) in runs.items():
                t1 = time.perf_counter()
                ds = (ds_total if target is total else ds_local).subset(tr)
                model = SpectrumModel(target, soap, SpectrumConfig(seed=seed, **opts)).fit(ds, features=subset_features(feats["total"], tr))
                pred = model.predict(test_frames, return_std=False, features=subset_features(feats["total"], test)).values
                if target is local:  # local DOS summed over each cell's atoms
                    pred = np.add.reduceat(pred, np.cumsum([0] + [len(a) for a in test_frames[:-1]]))
                results.append({"n_train": n, "model": name, "seed": seed, "fit_s": time.perf_counter() - t1,
                                **summarise(grid, ref, pred, max_shift=args.max_shift)})
            t1 = time.perf_counter()
            pred = krr_baseline(x[tr], ds_total.values[tr], x[test], seed)
            results.append({"n_train": n, "model": "SOAP + KRR (sklearn)", "seed": seed, "fit_s": time.perf_counter() - t1,
                            **summarise(grid, ref, pred, max_shift=args.max_shift)})
            floor = np.array([frames[i].arrays["atom_dos"].sum(0) for i in test])
            results.append({"n_train": n, "model": "sum of reference atom_dos (data consistency)", "seed": seed, "fit_s": 0.0,
                            **summarise(grid, ref, floor, max_shift=args.max_shift)})
            mean_pred = np.repeat(ds_total.values[tr].mean(0, keepdims=True), len(test), axis=0)
            results.append({"n_train": n, "model": "training mean", "seed": seed, "fit_s": 0.0,
                            **summarise(grid, ref, mean_pred, max_shift=args.max_shift)})
            print(f"seed {seed} n={n}: " + ", ".join(f"{r['model']} {r['rmse']:.4f}" for r in results[-6:]), file=sys.stderr)
    rows = aggregate(results)
    rows.sort(key=lambda r: (r["n_train"], r["model"]))
    keys = ["rmse", "shift_aligned_rmse", "relative_integrated_error", "pearson", "tanimoto", "peak_position_error"]
    spread = float(np.sqrt(np.mean((ds_total.values - ds_total.values.mean(0)) ** 2)))
    text = [f"## Si DOS (DeePMD heat-221): 3 held-out cells, mean ± sd over {args.repeats} random splits", "",
            table(rows, keys + ["fit_s"]), "",
            f"RMSE in states per grid point (spread of the data about its mean: {spread:.4f}); peak errors and shifts in grid "
            f"points (no energy grid is recorded in the set); shift-aligned RMSE allows a rigid shift of up to {args.max_shift:g} points. "
            f"SOAP: cutoff {args.cutoff} A, max_radial {args.max_radial}, max_angular {args.max_angular}."]
    print("\n".join(text))
    out = {"rows": rows, "raw": results, "soap": soap.to_dict(), "data_spread": spread}
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "dos_results.json"), "w") as fh:
            json.dump(out, fh, indent=1, default=float)
        with open(os.path.join(args.out, "dos_table.md"), "w") as fh:
            fh.write("\n".join(text) + "\n")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="2,4,6,8")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-shift", type=float, default=10.0, help="grid points")
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--max-radial", type=int, default=6)
    p.add_argument("--max-angular", type=int, default=4)
    p.add_argument("--out", default="bench-spectra")
    run(p.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
