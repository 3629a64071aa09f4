"""SA-GPR on the water tensor sets of Grisafi et al., PRL 120, 036002 (2018), with a side-by-side baseline.

For each (system, key): learning curve with training sets drawn from frames [0, 800) and the last 200
frames as the test set, % RMSE of the test standard deviation per irreducible channel and for the
Cartesian tensor. Baseline: invariant SOAP power spectrum (featomic, same hypers), summed per structure,
+ scikit-learn KernelRidge (RBF, alpha/gamma by 5-fold CV) on the invariant (0e) part only -- a plain
kernel method cannot learn the l > 0 parts without symmetry adaptation.
Speed: fit time for the largest training set, prediction throughput with and without uncertainties,
peak resident memory of this process.

    .venv/bin/python benchmarks/water_tensors.py                 # all four curves
    .venv/bin/python benchmarks/water_tensors.py --quick         # sizes 50,200 only
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "water_tensors")
CASES = [
    ("water_monomer", "alpha", "ij=ji"),
    ("water_monomer", "beta", "ijk=jik=ikj"),
    ("water_dimer", "mu", "i"),
    ("water_dimer", "alpha", "ij=ji"),
]


def krr_baseline(train, test, target):
    """SOAP power spectrum + KernelRidge on the l=0 part (trace-like invariant)."""
    import featomic
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import GridSearchCV

    from psilearn.features.lsoap import _featomic_ready

    calc = featomic.SoapPowerSpectrum(
        cutoff={"radius": 5.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        density={"type": "Gaussian", "width": 0.3},
        basis={"type": "TensorProduct", "max_angular": 4, "radial": {"type": "Gto", "max_radial": 5}},
    )

    def feats(frames):
        t = calc.compute([_featomic_ready(a, i) for i, a in enumerate(frames)])
        t = t.keys_to_samples("center_type").keys_to_properties(["neighbor_1_type", "neighbor_2_type"])
        import metatensor

        t = metatensor.sum_over_samples(t, ["atom", "center_type"])
        return np.asarray(t.block().values)

    b0 = next(b for b in target.blocks if b.l == 0 and b.p == 1)
    ytr = target.to_irreps(train.values)[:, b0.start]
    yte = target.to_irreps(test.values)[:, b0.start]
    xtr, xte = feats(train.frames), feats(test.frames)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-12
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    ym = ytr.mean()
    grid = {"alpha": [1e-10, 1e-8, 1e-6, 1e-4, 1e-2], "gamma": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]}
    krr = GridSearchCV(KernelRidge(kernel="rbf"), grid, cv=5).fit(xtr, ytr - ym)
    pred = krr.predict(xte) + ym
    return 100 * np.sqrt(np.mean((pred - yte) ** 2)) / yte.std()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="50,100,200,400,800")
    ap.add_argument("--quick", action="store_true", help="sizes 50,200")
    ap.add_argument("--cases", default="all", help="comma list of system:key, e.g. water_dimer:alpha")
    ap.add_argument("--speed", action="store_true", help="only the speed goals: fit on 800, throughput on 1000 structures")
    args = ap.parse_args()
    if not os.path.isdir(DATA):
        print(f"SKIP: {DATA} not found (benchmarks read ../shared/data beside the checkout)")
        return 0
    from psilearn import SAGPR, Target, load_dataset
    from psilearn.metrics.regression import block_names, regression_metrics

    sizes = [50, 200] if args.quick else [int(s) for s in args.sizes.split(",")]
    if args.speed:
        return speed_only(args)
    cases = CASES if args.cases == "all" else [c for c in CASES if f"{c[0]}:{c[1]}" in args.cases.split(",")]
    speed = []
    for system, key, formula in cases:
        path = os.path.join(DATA, system, "coords_1000.xyz")
        target = Target(key, tensor=formula, units="a.u.")
        pool = load_dataset(path + "@:800", target)
        test = load_dataset(path + "@800:", target)
        names = ["Cartesian", *block_names(target)]
        print(f"\n{system} {key} ({target.irreps}); test = frames 800-999; % RMSE of test std")
        print(f"{'n_train':>8}" + "".join(f"{'SA-GPR ' + n:>16}" for n in names) + f"{'KRR 0e':>10}{'fit [s]':>9}")
        order = np.random.default_rng(0).permutation(len(pool))
        for n in sizes:
            train = pool.subset(np.sort(order[:n]))
            t0 = time.perf_counter()
            model = SAGPR(target).fit(train)
            fit_s = time.perf_counter() - t0
            pred = model.predict(test.frames, return_std=False)
            m = regression_metrics(target, target.to_irreps(test.values), pred.irreps)
            vals = [m["cartesian"]["pct_rmse"], *[m["channels"][k]["pct_rmse"] for k in names[1:]]]
            has0 = any(b.l == 0 and b.p == 1 for b in target.blocks)
            base = krr_baseline(train, test, target) if has0 else float("nan")
            print(f"{n:>8}" + "".join(f"{v:>16.2f}" for v in vals) + f"{base:>10.2f}{fit_s:>9.1f}", flush=True)
        # speed on the last model: throughput on the test structures, twice (mean only / with std)
        model.predict(test.frames[:10])  # warm-up
        t0 = time.perf_counter()
        model.predict(test.frames, return_std=False)
        t_mean = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.predict(test.frames)
        t_std = time.perf_counter() - t0
        speed.append((system, key, sizes[-1], fit_s, len(test) / t_mean, len(test) / t_std))
    print("\nspeed (2 cores, same run)")
    print(f"{'system':<14}{'key':<7}{'n_train':>8}{'fit [s]':>9}{'pred/s (mean)':>15}{'pred/s (+std)':>15}")
    for s in speed:
        print(f"{s[0]:<14}{s[1]:<7}{s[2]:>8}{s[3]:>9.1f}{s[4]:>15.0f}{s[5]:>15.0f}")
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


def speed_only(args) -> int:
    """Fit time for 800 structures and prediction throughput (structures/s) on all 1000 frames,
    mean only and with uncertainties, for each case; peak memory at the end."""
    from psilearn import SAGPR, Target, load_dataset, read_structures

    cases = CASES if args.cases == "all" else [c for c in CASES if f"{c[0]}:{c[1]}" in args.cases.split(",")]
    print(f"{'system':<14}{'key':<7}{'atoms':>6}{'fit 800 [s]':>12}{'pred/s (mean)':>15}{'pred/s (+std)':>15}")
    for system, key, formula in cases:
        path = os.path.join(DATA, system, "coords_1000.xyz")
        target = Target(key, tensor=formula)
        train = load_dataset(path + "@:800", target)
        frames = read_structures(path)
        t0 = time.perf_counter()
        model = SAGPR(target).fit(train)
        fit_s = time.perf_counter() - t0
        model.predict(frames[:10], return_std=False)
        model.predict(frames[:10])
        t0 = time.perf_counter()
        model.predict(frames, return_std=False)
        t_mean = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.predict(frames)
        t_std = time.perf_counter() - t0
        print(f"{system:<14}{key:<7}{len(frames[0]):>6}{fit_s:>12.1f}{len(frames) / t_mean:>15.0f}{len(frames) / t_std:>15.0f}", flush=True)
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
