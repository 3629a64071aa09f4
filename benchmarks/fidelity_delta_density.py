"""Δ-learning of electron densities: a cheap density in the same aux basis as the baseline.

    python benchmarks/fidelity_delta_density.py /work/bench/water_density.xyz --baseline-method hf/sto-3g \
        --start 200 --frames 150 --test 50 --train 10,25,50,100 --cache /work/bench/deltamore/water_hf_sto3g.xyz

DATA carries ``density_coefficients`` (the target level, e.g. PBE/def2-SVP in def2-universal-jkfit, Coulomb
metric). ``--frames`` structures from ``--start`` are labelled with ``--baseline-method`` (psilearn's labeler,
``--observables density`` in DATA's aux basis and metric; cached in ``--cache``) under the key
``density_coefficients_base``. The first ``--test`` frames are the test set, training sets the next ones
(nested). Per size, for the plain density model and the Δ model (and the baseline alone), against the
reference fitted densities with exact aux integrals (psilearn.evaluation.density, as `psilearn evaluate`):
the L2 density error %, the error in the fit's metric %, both with the electron-count constraint and
free, the dipole MAE (Debye, constrained), max |N_pred - N| and fit seconds (1 thread, shared machine).
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
from psilearn.evaluation.density import density_scores, density_sums  # noqa: E402
from psilearn.models.factory import fit_model  # noqa: E402
from psilearn.models.fidelity import delta_kind  # noqa: E402

BASE = "density_coefficients_base"


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
    ap.add_argument("--start", type=int, default=200, help="first frame used (water_density.xyz: frames 0-91 are one rigid "
                    "geometry, rotated: start past them)")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--test", type=int, default=50)
    ap.add_argument("--train", default="10,25,50,100")
    ap.add_argument("--cache", required=True)
    args = ap.parse_args()
    spec = f"{args.data}@{args.start}:{args.start + args.frames}"
    data = load_density_dataset(spec)
    frames, seconds = with_baseline(data.frames, data.target, args.baseline_method, Path(args.cache))
    data = load_density_dataset(frames, data.target)
    target = data.target
    print(f"{spec}: {target.describe()}; baseline {args.baseline_method} density labels: {seconds:.1f} s "
          f"({seconds / len(frames):.2f} s per structure)")
    test = data.subset(range(args.test))
    ref = [test.coefficients(i) for i in range(len(test))]
    base = [np.asarray(a.info[BASE]) for a in test.frames]

    def scores(coefficients) -> dict:
        return density_scores(density_sums(target, test.frames, coefficients, ref))

    b = scores(base)
    print(f"baseline alone: L2 {b['l2_percent']:.4f} %, metric {b['metric_error_percent']:.5f} %, dipole MAE {b['dipole_mae_debye']:.4f} D")
    print("model  n_train  L2%      L2%(free)  metric%   metric%(free)  dipole_MAE_D  max|dN|  fit_s")
    for n in [int(x) for x in args.train.split(",")]:
        train = data.subset(range(args.test, args.test + n))
        for name, kind in (("plain", "density"), ("delta", delta_kind(BASE, "density"))):
            t0 = time.perf_counter()
            model = fit_model(kind, target, train, {})
            fit_s = time.perf_counter() - t0
            c, f = scores(model.predict(test.frames).coefficients), scores(model.predict(test.frames, conserve=False).coefficients)
            print(f"{name:<6} {n:>7}  {c['l2_percent']:.5f}  {f['l2_percent']:.5f}    {c['metric_error_percent']:.6f}  "
                  f"{f['metric_error_percent']:.6f}       {c['dipole_mae_debye']:.5f}       {c['max_electron_error']:.0e}    {fit_s:.1f}", flush=True)

if __name__ == "__main__":
    main()
