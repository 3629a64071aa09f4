"""Tuned vs default SA-GPR vs a SOAP + KRR baseline: water dimer polarizability or dipole (Grisafi et al. data).

Train: the first 200 frames of ../shared/data/water_tensors/water_dimer/coords_1000.xyz; test: the
last 200 (frames 800-999). Rows:
  default         SA-GPR with the data-scaled defaults (psilearn fit with no options)
  n_sparse=400    SA-GPR with psilearn 0.2's fixed default of 400 sparse points per element
  tuned           psilearn fit --tune SECONDS (Optuna TPE, k-fold CV on the training set, seed 0)
  SOAP+KRR (0e)   invariant SOAP power spectrum + scikit-learn KernelRidge (RBF, alpha/gamma by 5-fold
                  grid search) on the isotropic part only (benchmarks/water_tensors.py:krr_baseline);
                  not for the dipole (--target mu), which has no invariant part
Columns: test RMSE as % of the test set's standard deviation, Cartesian and per irreducible channel;
the training k-fold CV RMSE (a.u.) the model reports; wall time of the fit (tuned: the whole study).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tune_vs_default.py --tune 300
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tune_vs_default.py --tune 300 --target mu
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "water_tensors", "water_dimer", "coords_1000.xyz")


def _krr_baseline():
    spec = importlib.util.spec_from_file_location("water_tensors", os.path.join(os.path.dirname(__file__), "water_tensors.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.krr_baseline


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tune", type=float, default=300.0, metavar="SECONDS", help="tuning budget (default 300)")
    ap.add_argument("--n-train", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", choices=["alpha", "mu"], default="alpha", help="polarizability (default) or dipole")
    args = ap.parse_args()
    if not os.path.isfile(DATA):
        print(f"SKIP: {DATA} not found (benchmarks read ../shared/data beside the checkout)")
        return 0
    from psilearn import Target, load_dataset
    from psilearn.metrics.regression import block_names, regression_metrics
    from psilearn.models.factory import fit_model
    from psilearn.tune import describe_trial, describe_tuning, tune_model

    target = Target(args.target, tensor="ij=ji" if args.target == "alpha" else "i", units="a.u.")
    train = load_dataset(f"{DATA}@:{args.n_train}", target)
    test = load_dataset(f"{DATA}@800:", target)
    names = ["Cartesian", *block_names(target)]
    ref = target.to_irreps(test.values)
    rows = []

    def score(label, model, seconds):
        m = regression_metrics(target, ref, model.predict(test.frames, return_std=False).irreps)
        pct = [m["cartesian"]["pct_rmse"], *[m["channels"][k]["pct_rmse"] for k in names[1:]]]
        rows.append((label, pct, model.metadata["heldout_metrics"]["cartesian"]["rmse"], seconds))
        print(f"{label}: done in {seconds:.1f} s", file=sys.stderr, flush=True)

    for label, config in (("default", {}), ("n_sparse=400", {"model": {"n_sparse": 400}})):
        t0 = time.perf_counter()
        model = fit_model("sagpr", target, train, config, seed=args.seed)
        score(label, model, time.perf_counter() - t0)
    t0 = time.perf_counter()
    tuned = tune_model("sagpr", target, train, seconds=args.tune, seed=args.seed,
                       progress=lambda r: print(describe_trial(r), file=sys.stderr, flush=True))
    score(f"tuned ({args.tune:g} s)", tuned, time.perf_counter() - t0)
    krr = None
    if "0e" in names:
        t0 = time.perf_counter()
        krr = _krr_baseline()(train, test, target)
        krr_s = time.perf_counter() - t0

    print(f"\nwater dimer {args.target}: train frames 0-{args.n_train - 1}, test frames 800-999; test % RMSE of the test std")
    print(f"{'model':<18}" + "".join(f"{n:>11}" for n in names) + f"{'CV RMSE':>10}{'time [s]':>10}")
    for label, pct, cv, sec in rows:
        print(f"{label:<18}" + "".join(f"{v:>11.2f}" for v in pct) + f"{cv:>10.4f}{sec:>10.1f}")
    if krr is not None:
        cells = [f"{'':>11}"] * len(names)
        cells[names.index("0e")] = f"{krr:>11.2f}"
        print(f"{'SOAP+KRR (0e)':<18}" + "".join(cells) + f"{'':>10}{krr_s:>10.1f}")
    print("\n" + describe_tuning(tuned.metadata["tuning"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
