"""Test error and fit time of SA-GPR against the number of sparse points per element, for several
training-set sizes: the measurement behind the data-scaled ``n_sparse`` default (docs/tuning.md).

Water dimer polarizability (../shared/data/water_tensors/water_dimer/coords_1000.xyz): training sets
drawn at random (seed 0) from frames 0-799, test frames 800-999; % RMSE of the test std (Cartesian).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sparse_scaling.py            # ~5 min
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sparse_scaling.py --sizes 100,200 --sparse 50,100,200,400
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "water_tensors", "water_dimer", "coords_1000.xyz")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,200,800", help="training dimers")
    ap.add_argument("--sparse", default="50,100,200,400,800", help="sparse points per element")
    args = ap.parse_args()
    if not os.path.isfile(DATA):
        print(f"SKIP: {DATA} not found (benchmarks read ../shared/data beside the checkout)")
        return 0
    from psilearn import Target, load_dataset
    from psilearn.metrics.regression import regression_metrics
    from psilearn.models.factory import fit_model

    target = Target("alpha", tensor="ij=ji")
    pool, test = load_dataset(f"{DATA}@:800", target), load_dataset(f"{DATA}@800:", target)
    order = np.random.default_rng(0).permutation(len(pool))
    ref = target.to_irreps(test.values)
    print(f"{'dimers':>7}{'n_sparse':>10}{'test % RMSE':>13}{'fit [s]':>9}")
    for n in (int(s) for s in args.sizes.split(",")):
        train = pool.subset(np.sort(order[:n]))
        for m in (int(s) for s in args.sparse.split(",")):
            if m > 4 * n:  # more than the H environments of n dimers
                continue
            t0 = time.perf_counter()
            model = fit_model("sagpr", target, train, {"model": {"n_sparse": m}})
            fit_s = time.perf_counter() - t0
            pct = regression_metrics(target, ref, model.predict(test.frames, return_std=False).irreps)["cartesian"]["pct_rmse"]
            print(f"{n:>7}{m:>10}{pct:>13.3f}{fit_s:>9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
