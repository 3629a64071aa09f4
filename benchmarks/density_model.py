"""The density model (kind ``density``) on a density-labelled file: error, electron count, cost.

    python benchmarks/density_model.py /work/bench/water_density.xyz --train 100 --test 50
    python benchmarks/density_model.py DATA.xyz --train 50,200,800 --test 200 --config opts.yaml

The first ``--test`` frames are the test set and the training sets are the next frames (nested).
Per training size: the error of the predicted coefficients relative to the reference fitted
density, both in the fit's metric, 100 sqrt(sum_s d_s^T S_s d_s / sum_s c_s^T S_s c_s) (S_s the
Coulomb metric (P|Q) for Coulomb-fitted labels), with and without the electron-count constraint,
the same for the mean model (per-element mean of the l = 0 coefficients), SALTED's % RMSE (the
error relative to the test set's spread about that mean model: err / mean-model err), the largest |N_pred - N|,
and seconds (fit, then prediction of the test set; 1 thread, a shared machine's timings swing).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from psilearn.config import load_config  # noqa: E402
from psilearn.data import load_density_dataset  # noqa: E402
from psilearn.models.density.constraint import structure_metric  # noqa: E402
from psilearn.models.factory import fit_model  # noqa: E402


def metric_error(target, frames, predicted, reference) -> float:
    err = ref = 0.0
    for a, p, c in zip(frames, predicted, reference):
        s, _ = structure_metric(target, a)
        err += (p - c) @ s @ (p - c)
        ref += c @ s @ c
    return 100 * float(np.sqrt(err / ref))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--train", default="100", help="comma-separated training sizes")
    ap.add_argument("--test", type=int, default=50)
    ap.add_argument("--config", default=None, help="options file (soap:, density: sections)")
    args = ap.parse_args()
    data = load_density_dataset(args.data)
    target = data.target
    test = data.subset(range(args.test))
    ref = [test.coefficients(i) for i in range(len(test))]
    n_el = [a.numbers.sum() - a.info.get("charge", 0) for a in test.frames]
    print(f"{args.data}: {len(data)} frames, {target.describe()}")
    print("n_train  err%     err%(free)  mean-model%  SALTED%RMSE(free)  max|dN|  lambda  weights  fit_s  predict_s")
    sizes = [int(x) for x in args.train.split(",")]
    if args.test + max(sizes) > len(data):
        raise SystemExit(f"--test {args.test} + --train {max(sizes)} > {len(data)} frames")
    for n in sizes:
        train = data.subset(range(args.test, args.test + n))
        t0 = time.perf_counter()
        model = fit_model("density", target, train, load_config(args.config))
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = model.predict(test.frames)
        t_pred = time.perf_counter() - t0
        free = model.predict(test.frames, conserve=False)
        mean = [target.from_irreps(a, model.baseline_vector(a)) for a in test.frames]
        dn = max(abs(e - k) for e, k in zip(pred.electrons, n_el))
        err, err_free = (metric_error(target, test.frames, p.coefficients, ref) for p in (pred, free))
        err_mean = metric_error(target, test.frames, mean, ref)
        print(f"{n:7d}  {err:.5f}  {err_free:.5f}     {err_mean:.4f}       {100 * err / err_mean:.3f} ({100 * err_free / err_mean:.3f})"
              f"      {dn:.1e}  {model.metadata['regularization']:.0e}  {model.metadata['n_weights']:7d}  {t_fit:5.1f}  "
              f"{t_pred:6.1f}", flush=True)

if __name__ == "__main__":
    main()
