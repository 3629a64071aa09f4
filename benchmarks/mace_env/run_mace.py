"""Train MACE's dipole/polarizability model on one target and predict a test set; print one JSON line.

Runs inside the separate MACE venv (see setup.sh), called by benchmarks/nn_vs_mace.py:

    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 /work/mace-venv/bin/python benchmarks/mace_env/run_mace.py \
        --train train.xyz --test test.xyz --target dipole --workdir DIR --epochs 60

Both files are extxyz with ``bench_dipole`` (3) and ``bench_polar`` (9, row-major) in ``info``; the
target not learned carries zeros and gets loss weight 0. The model is ``AtomicDielectricMACE`` with
the ``dipole_polar`` loss (``--E0s`` is required even without energies). Output JSON: predictions on
the test set (n, 3 or 9), training and prediction wall times (s), peak resident memory (MB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--target", choices=["dipole", "polarizability"], required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--r-max", type=float, default=5.0)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--max-L", type=int, default=2)
    ap.add_argument("--correlation", type=int, default=3)
    ap.add_argument("--interactions", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--valid-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--elements", default="1,8")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from mace.cli import run_train

    os.makedirs(args.workdir, exist_ok=True)
    e0s = "{" + ", ".join(f"{z}: 0.0" for z in args.elements.split(",")) + "}"
    dip_w, pol_w = (1.0, 0.0) if args.target == "dipole" else (0.0, 1.0)
    argv = [
        "mace_run_train", "--name", "mace", "--model", "AtomicDielectricMACE", "--loss", "dipole_polar",
        "--error_table", "DipolePolarRMSE", "--train_file", args.train, "--valid_fraction", str(args.valid_fraction),
        "--E0s", e0s, "--dipole_key", "bench_dipole", "--polarizability_key", "bench_polar",
        "--dipole_weight", str(dip_w), "--polarizability_weight", str(pol_w),
        "--r_max", str(args.r_max), "--num_channels", str(args.channels), "--max_L", str(args.max_L),
        "--correlation", str(args.correlation), "--num_interactions", str(args.interactions),
        "--batch_size", str(args.batch_size), "--valid_batch_size", "32", "--max_num_epochs", str(args.epochs),
        "--patience", str(10 * args.epochs), "--lr", str(args.lr), "--ema", "--ema_decay", "0.99",
        "--scheduler", "ReduceLROnPlateau", "--seed", str(args.seed), "--device", "cpu", "--default_dtype", "float32",
        "--work_dir", args.workdir, "--num_workers", "0", "--eval_interval", "1", "--save_cpu",
    ]
    sys.argv = argv
    t0 = time.perf_counter()
    run_train.main()
    train_s = time.perf_counter() - t0

    import ase.io
    from mace import data
    from mace.tools import torch_geometric, utils

    model_path = os.path.join(args.workdir, "mace.model")
    model = torch.load(model_path, map_location="cpu", weights_only=False)
    model.eval()
    for p in model.parameters():
        p.requires_grad = False
    frames = ase.io.read(args.test, index=":")
    t0 = time.perf_counter()
    z_table = utils.AtomicNumberTable([int(z) for z in model.atomic_numbers])
    configs = [data.config_from_atoms(a) for a in frames]
    loader = torch_geometric.dataloader.DataLoader(
        dataset=[data.AtomicData.from_config(c, z_table=z_table, cutoff=float(model.r_max)) for c in configs],
        batch_size=32, shuffle=False, drop_last=False)
    preds = []
    for batch in loader:
        out = model(batch.to_dict(), training=False)
        if args.target == "dipole":
            preds.append(out["dipole"].detach().numpy().reshape(-1, 3))
        else:
            preds.append(out["polarizability"].detach().numpy().reshape(-1, 9))
    pred_s = time.perf_counter() - t0
    import numpy as np

    print(json.dumps({
        "pred": np.concatenate(preds).tolist(),
        "train_seconds": train_s,
        "predict_seconds": pred_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
    }))


if __name__ == "__main__":
    main()
