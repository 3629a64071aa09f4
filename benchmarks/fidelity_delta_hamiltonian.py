"""Δ-learning of Hamiltonians: a cheaper F in the same AO basis as the baseline (e.g. HF under PBE).

    python benchmarks/fidelity_delta_hamiltonian.py /work/bench/ham/water_ham.xyz --baseline-method hf/def2-svp \
        --start 200 --frames 100 --test 20 --train 80 --max-seconds 300 --config /work/bench/ham/small.yaml \
        --cache /work/bench/deltamore/water_ham_hf.xyz

DATA carries ``hamiltonian`` (the target level, e.g. PBE/def2-SVP) and ``overlap``. ``--frames`` structures
from ``--start`` are labelled with ``--baseline-method`` (psilearn's labeler, ``--observables hamiltonian``,
cached in ``--cache``) under ``hamiltonian_base``; the method's basis must be DATA's. The first ``--test``
frames are the test set, the next ``--train`` the training set. Reported on the test set (Hartree ->
micro-Hartree): H entry MAE, occupied orbital-energy MAE, gap MAE (psilearn.metrics.hamiltonian, the
eigenvalues of (F, S) with the exact S) for the baseline alone, the plain hamiltonian model and the Δ
model, each trained for the same wall-time budget (``--max-seconds``, 1 thread on a shared machine).
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

from psilearn.config import load_config  # noqa: E402
from psilearn.data import load_hamiltonian_dataset  # noqa: E402
from psilearn.metrics.hamiltonian import dataset_metrics  # noqa: E402
from psilearn.models.factory import fit_model  # noqa: E402
from psilearn.models.fidelity import delta_kind  # noqa: E402

BASE = "hamiltonian_base"


def with_baseline(frames, method: str, cache: Path) -> tuple[list, float]:
    """``frames`` with the baseline F of ``method`` (cached), and the labelling seconds."""
    if cache.exists():
        out = ase.io.read(cache, ":")
        return out, float(sum(a.info.get("baseline_seconds", 0.0) for a in out))
    from psilearn.label import make_labeler

    lab = make_labeler(method, "hamiltonian")
    out = []
    for a in frames:
        t0 = time.perf_counter()
        got = lab.label(a.copy())
        b = a.copy()
        b.info[BASE] = np.asarray(got.info["hamiltonian"])
        b.info[BASE + "_basis"] = got.info["hamiltonian_basis"]
        b.info["baseline_seconds"] = time.perf_counter() - t0
        out.append(b)
    cache.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(cache, out)
    return out, float(sum(a.info["baseline_seconds"] for a in out))


def micro(m: dict) -> str:
    return f"{1e6 * m['h_mae']:10.1f} {1e6 * m['occupied_energy_mae']:12.1f} {1e6 * m['gap_mae']:10.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--baseline-method", default="hf/def2-svp")
    ap.add_argument("--start", type=int, default=200, help="first frame used (the water monomers' frames 0-91 are one rigid "
                    "geometry, rotated: start past them)")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--test", type=int, default=20)
    ap.add_argument("--train", type=int, default=80)
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument("--config", default=None)
    ap.add_argument("--cache", required=True)
    args = ap.parse_args()
    spec = f"{args.data}@{args.start}:{args.start + args.frames}"
    data = load_hamiltonian_dataset(spec)
    frames, seconds = with_baseline(data.frames, args.baseline_method, Path(args.cache))
    data = load_hamiltonian_dataset(frames, data.target)
    print(f"{spec}: {data.target.describe()}; baseline {args.baseline_method}: {seconds:.1f} s "
          f"({seconds / len(frames):.2f} s per structure)")
    test, train = data.subset(range(args.test)), data.subset(range(args.test, args.test + args.train))
    base = [np.asarray(a.info[BASE]).reshape(test.matrix(i).shape) for i, a in enumerate(test.frames)]
    print("model         H_MAE_uHa  occ_eps_uHa  gap_uHa   fit_s  epochs")
    print(f"baseline      {micro(dataset_metrics(base, test))}")
    config = load_config(args.config)
    config.setdefault("nn_train", {}).update({"epochs": 100000, "max_seconds": args.max_seconds})
    for name, kind in (("plain", "hamiltonian"), ("delta", delta_kind(BASE, "hamiltonian"))):
        t0 = time.perf_counter()
        model = fit_model(kind, data.target, train, config, seed=0)
        fit_s = time.perf_counter() - t0
        m = dataset_metrics(model.predict(test.frames).matrices, test)
        print(f"{name:<13} {micro(m)} {fit_s:7.0f}  {model.metadata['members'][0]['epochs']}", flush=True)


if __name__ == "__main__":
    main()
