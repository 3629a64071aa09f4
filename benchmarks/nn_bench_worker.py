"""One psilearn training + prediction run for benchmarks/nn_vs_mace.py, in its own process so that
its peak memory is its own; prints one JSON line.

    python benchmarks/nn_bench_worker.py --model nn --train train.xyz --test test.xyz \
        --target mu --tensor i --config nn.yaml --out DIR

Training goes through the command line (`psilearn fit --model nn|sagpr`); prediction loads the saved
model (`psilearn.models.load`) and times `predict` on the test structures, neighbour lists or
descriptors included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--tensor", default="")
    ap.add_argument("--config", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from psilearn.cli.main import main as cli
    from psilearn.data import load_dataset
    from psilearn.metrics.regression import calibration
    from psilearn.models import load

    argv = ["fit", args.train, "--target", args.target, "--model", args.model, "-o", args.out, "--seed", str(args.seed), "--overwrite"]
    if args.tensor:
        argv += ["--tensor", args.tensor]
    if args.config:
        argv += ["--config", args.config]
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        rc = cli(argv)
    train_s = time.perf_counter() - t0
    if rc:
        raise SystemExit(f"psilearn fit failed with exit code {rc}")
    model = load(args.out)
    test = load_dataset(args.test, model.target)
    t0 = time.perf_counter()
    pred = model.predict(test.frames)
    pred_s = time.perf_counter() - t0
    out = {
        "pred": np.asarray(pred.values).tolist(),
        "train_seconds": train_s,
        "predict_seconds": pred_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "std": np.asarray(pred.std).tolist() if np.any(pred.std > 0) else None,
        "calibration": calibration(test.values, pred.values, pred.std) if np.any(pred.std > 0) else None,
        "training": {k: model.metadata.get(k) for k in ("members", "n_parameters", "calibration") if k in model.metadata},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
