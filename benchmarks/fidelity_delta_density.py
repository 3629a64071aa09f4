"""Δ-learning of electron densities: a cheap density in the same aux basis as the baseline.

    python benchmarks/fidelity_delta_density.py /work/bench/water_density.xyz --baseline-method hf/sto-3g \
        --frames 150 --test 50 --train 10,25,50,100 --cache /work/bench/deltamore/water_hf_sto3g.xyz

DATA carries ``density_coefficients`` (the target level, e.g. PBE/def2-SVP in def2-universal-jkfit, Coulomb
metric). The first ``--frames`` structures are labelled with ``--baseline-method`` (psilearn's labeler,
``--observables density`` in DATA's aux basis and metric; cached in ``--cache``) under the key
``density_coefficients_base``. The first ``--test`` frames are the test set, training sets the next ones
(nested). Per size: the error in the fit's metric, 100 sqrt(sum_s d^T S d / sum_s c^T S c), of the
baseline alone, of the plain density model and of the Δ model (constrained and free: without the
electron-count projection), max |N_pred - N| of the Δ model, and fit seconds (1 thread, shared machine).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import ase.io  # noqa: E402
import numpy as np  # noqa: E402

from psilearn.data import load_density_dataset  # noqa: E402
from psilearn.models.density.constraint import structure_metric  # noqa: E402
from psilearn.models.factory import fit_model  # noqa: E402
from psilearn.models.fidelity import delta_kind  # noqa: E402

BASE = "density_coefficients_base"


def metric_error(target, frames, predicted, reference) -> float:
    err = ref = 0.0
    for a, p, c in zip(frames, predicted, reference):
        s, _ = structure_metric(target, a)
        err += (p - c) @ s @ (p - c)
        ref += c @ s @ c
    return 100 * float(np.sqrt(err / ref))


def with_baseline(frames, target, method: str, cache: Path) -> tuple[list, float]:
    """``frames`` with the baseline density of ``method`` (cached), and the labelling seconds."""
    if cache.exists():
        out = ase.io.read(cache, ":")
        return out, float(sum(a.info.get("baseline_seconds", 0.0) for a in out))
    from psilearn.label import make_labeler

    lab = make_labeler(method, "density", density_aux_basis=target.aux_basis, density_metric=target.metric)
    out = []
    for a in frames:
        t0 = time.perf_counter()
        lab_a = lab.label(a.copy())
        b = a.copy()
        b.info[BASE] = np.asarray(lab_a.info["density_coefficients"])
        b.info["baseline_seconds"] = time.perf_counter() - t0
        out.append(b)
    cache.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(cache, out)
    return out, float(sum(a.info["baseline_seconds"] for a in out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--baseline-method", default="hf/sto-3g")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--test", type=int, default=50)
    ap.add_argument("--train", default="10,25,50,100")
    ap.add_argument("--cache", required=True)
    args = ap.parse_args()
    data = load_density_dataset(f"{args.data}@:{args.frames}")
    frames, seconds = with_baseline(data.frames, data.target, args.baseline_method, Path(args.cache))
    data = load_density_dataset(frames, data.target)
    target = data.target
    print(f"{args.data}@:{args.frames}: {target.describe()}; baseline {args.baseline_method} density labels: {seconds:.1f} s "
          f"({seconds / len(frames):.2f} s per structure)")
    test = data.subset(range(args.test))
    ref = [test.coefficients(i) for i in range(len(test))]
    base = [np.asarray(a.info[BASE]) for a in test.frames]
    print(f"baseline alone: error {metric_error(target, test.frames, base, ref):.4f} %")
    print("n_train  plain%   plain%(free)  delta%   delta%(free)  max|dN|(delta)  fit_s(plain)  fit_s(delta)")
    for n in [int(x) for x in args.train.split(",")]:
        train = data.subset(range(args.test, args.test + n))
        t0 = time.perf_counter()
        plain = fit_model("density", target, train, {})
        t1 = time.perf_counter()
        delta = fit_model(delta_kind(BASE, "density"), target, train, {})
        t2 = time.perf_counter()
        row = []
        for model in (plain, delta):
            for conserve in (True, False):
                row.append(metric_error(target, test.frames, model.predict(test.frames, conserve=conserve).coefficients, ref))
        pred = delta.predict(test.frames)
        dn = max(abs(e - (a.numbers.sum() - a.info.get("charge", 0))) for e, a in zip(pred.electrons, test.frames))
        print(f"{n:>7}  {row[0]:.4f}   {row[1]:.4f}        {row[2]:.4f}   {row[3]:.4f}        {dn:.0e}           "
              f"{t1 - t0:.1f}          {t2 - t1:.1f}")


if __name__ == "__main__":
    main()
