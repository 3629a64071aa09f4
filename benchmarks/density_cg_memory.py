"""Peak memory of the density model's CG fit against the number of training structures: in-RAM vs disk store.

    python benchmarks/density_cg_memory.py /work/bench/methanol_density.xyz --sizes 25,50,100,200 \
        --maxiter 30 --scratch /work/bench/density-ecp/scratch -o benchmarks/results/density_cg_memory.md

Each (n, ``density.cg_storage``) runs in its own process (one thread): load the first n frames, fit
the density model with ``solver: cg``, a fixed relative lambda (no hold-out walk, so every size does
one solve) and at most ``--maxiter`` CG iterations (memory does not depend on the iteration count;
the weights of the two storages are compared after the same iterations). Reported: the process's
peak RSS (``ru_maxrss``) before the fit (imports and data) and after it, the guard's estimates
(RAM, disk; the log line of :func:`psilearn.models.density.fit.choose_solver`), fit seconds, seconds
per CG iteration, and max |w_disk - w_memory| / max |w_memory| over the weights.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def one(path: str, n: int, storage: str, maxiter: int, scratch: str, out: str) -> dict:
    """Fit once in this process; the weights go to ``out`` (npz), the record is returned."""
    from psilearn.data import load_density_dataset
    from psilearn.models.factory import fit_model

    lines: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logging.getLogger("psilearn").addHandler(Grab())
    logging.getLogger("psilearn").setLevel(logging.INFO)
    data = load_density_dataset(f"{path}@:{n}")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    opts = {"solver": "cg", "regularization": 1e-4, "cg_maxiter": maxiter, "cg_storage": storage, "cg_scratch": scratch}
    model = fit_model("density", data.target, data, {"density": opts})
    seconds = time.perf_counter() - t0
    (solve,) = model.metadata["cg"]["solves"]
    np.savez(out, **{f"{z}_{l}": w for (z, l), w in model.weights.items()})
    estimate = next((x for x in lines if "CG needs" in x), "")
    return {"n": n, "storage": storage, "weights": model.metadata["n_weights"], "rss_before_mb": rss0,
            "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "estimate": estimate.split("needs ~")[-1],
            "fit_s": seconds, "iterations": solve["iterations"], "s_per_iteration": solve["seconds"] / max(solve["iterations"], 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data")
    p.add_argument("--sizes", default="25,50,100")
    p.add_argument("--maxiter", type=int, default=30)
    p.add_argument("--scratch", default="")
    p.add_argument("-o", "--output", default=None)
    p.add_argument("--one", nargs=3, metavar=("N", "STORAGE", "OUT"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        print(json.dumps(one(a.data, int(a.one[0]), a.one[1], a.maxiter, a.scratch, a.one[2])))
        return
    rows = []
    for n in [int(x) for x in a.sizes.split(",")]:
        weights = {}
        for storage in ("memory", "disk"):
            out = os.path.join(a.scratch or ".", f"w_{n}_{storage}.npz")
            res = subprocess.run([sys.executable, __file__, a.data, "--maxiter", str(a.maxiter), "--scratch", a.scratch,
                                  "--one", str(n), storage, out], capture_output=True, text=True, check=True)
            rec = json.loads(res.stdout.strip().splitlines()[-1])
            weights[storage] = dict(np.load(out))
            rows.append(rec)
            print(rec, flush=True)
        scale = max(np.abs(w).max() for w in weights["memory"].values())
        rows[-1]["w_diff"] = max(np.abs(weights["disk"][k] - w).max() for k, w in weights["memory"].items()) / scale
    table = ["| n_train | storage | weights | peak RSS before fit MB | peak RSS MB | guard estimate (RAM, disk) | fit s | CG iterations "
             "| s/iteration | max \\|w_disk − w_mem\\| / max \\|w\\| |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['n']} | {r['storage']} | {r['weights']} | {r['rss_before_mb']:.0f} | {r['rss_peak_mb']:.0f} | {r['estimate']} | "
                     f"{r['fit_s']:.1f} | {r['iterations']} | {r['s_per_iteration']:.3f} | {r.get('w_diff', float('nan')):.1e} |")
    text = "\n".join(table)
    print(text)
    if a.output:
        with open(a.output, "w") as fh:
            fh.write(f"# Density CG: peak memory vs training structures\n\n`python benchmarks/density_cg_memory.py {a.data} "
                     f"--sizes {a.sizes} --maxiter {a.maxiter}`\n\n{text}\n")


if __name__ == "__main__":
    main()
