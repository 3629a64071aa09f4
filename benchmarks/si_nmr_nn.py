"""²⁹Si NMR shielding tensors (labels on Si only, `has_tensor` mask) with the nn kind, on the split of
docs/tuning.md's SA-GPR row: train on frames 0-119, test on frames 120-199 restricted to the training
elements. One thread, a wall-time budget for training.

    OMP_NUM_THREADS=1 python benchmarks/si_nmr_nn.py [--max-seconds 540] [--seed 0] [--config nn.yaml] [--out DIR]

Prints one JSON line: sizes, fit time, the model's validation metrics and the test metrics
(``psilearn.evaluate``, labelled Si atoms only).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ase.io

DATA = Path(__file__).resolve().parents[2] / "shared/data/matten_tensors/si_nmr_tensors.extxyz"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--max-seconds", type=float, default=540.0)
    p.add_argument("--config", help="YAML with nn / nn_train sections (defaults otherwise)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="si_nmr_nn.model")
    args = p.parse_args()

    from psilearn import Target, load_dataset
    from psilearn.config import load_config
    from psilearn.evaluation import evaluate
    from psilearn.models.factory import fit_model

    target = Target("nmr_tensor", per="atom", tensor="ij", units="ppm")
    frames = ase.io.read(args.data, ":200")
    train = load_dataset(frames[:120], target, label_mask="has_tensor")
    known = set(train.species)
    test_frames = [a for a in frames[120:] if set(int(z) for z in a.numbers) <= known]
    test = load_dataset(test_frames, target, label_mask="has_tensor")
    options = load_config(args.config) if args.config else {}
    options = {**options, "nn_train": {**options.get("nn_train", {}), "max_seconds": args.max_seconds, "threads": 1}}
    t0 = time.perf_counter()
    model = fit_model("nn", target, train, options, seed=args.seed, progress=False)
    fit_s = time.perf_counter() - t0
    model.save(args.out, overwrite=True)
    report = evaluate(model, test)
    print(json.dumps({"seed": args.seed,
        "train": {"structures": len(train), "atoms": int(len(train.labelled)), "labelled": int(len(train.values)), "elements": len(known)},
        "test": {"structures": len(test), "labelled": int(len(test.values))},
        "fit_seconds": round(fit_s, 1), "epochs": model.metadata["members"][0]["epochs"], "stopped": model.metadata["members"][0]["stopped"],
        "validation_rmse": model.metadata["heldout_metrics"]["cartesian"]["rmse"],
        "test_rmse": report["cartesian"]["rmse"], "test_pct_rmse": report["cartesian"]["pct_rmse"],
        "rmse_ratio_to_baseline": report.get("baseline", {}).get("rmse_ratio"),
    }))


if __name__ == "__main__":
    main()
