"""Shared SA-GPR vs a separate model per element (`--per-element`) on QM9 per-atom charges.

    OMP_NUM_THREADS=1 python benchmarks/per_element_qm9.py [--train N] [--test N] [--h-cutoff 3.0]

Train: the first N molecules of qm9_dipoles_charges/QMtrainRandom.xyz; test: the first N of
TestQM9.xyz (elements unseen in training dropped). Target `initial_charges` (per atom, e).
Models, all with the default options otherwise (soap cutoff 5 Å, max_radial 6, max_angular 4;
data-scaled sparse points; regularisation by marginal likelihood):
  shared          one sagpr model of all atoms
  per-element     one sagpr model per element, same options
  per-element H   the same with `per_element: {H: {soap: {cutoff: H_CUTOFF}}}`
Prints the test RMSE per element and writes benchmarks/results/per_element_qm9.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols

from psilearn import Target, load_dataset
from psilearn.models.factory import fit_model

DATA = Path("/work/shared/data/qm9_dipoles_charges")


def _tuned(kind: str, target, train, seconds: float):
    from psilearn.models.per_element import per_element_kind
    from psilearn.tune import tune_model
    from psilearn.tune.per_element import tune_per_element

    if kind == "sagpr":
        return tune_model("sagpr", target, train, {}, seconds=seconds, seed=0)
    return tune_per_element(per_element_kind(), target, train, {}, seconds=seconds, seed=0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--test", type=int, default=300)
    ap.add_argument("--h-cutoff", type=float, default=3.0)
    ap.add_argument("--tune", type=float, default=0.0, help="also: shared and per-element models tuned within this many seconds each")
    ap.add_argument("--only", default="", help="run only the models whose name contains this text")
    ap.add_argument("--out", default="benchmarks/results/per_element_qm9.json")
    args = ap.parse_args()
    target = Target("initial_charges", per="atom", units="e")
    train = load_dataset(f"{DATA}/QMtrainRandom.xyz@:{args.train}", target)
    known = set(train.species)
    test_frames = [a for a in load_dataset(f"{DATA}/TestQM9.xyz@:{args.test}", target).frames if set(a.numbers) <= known]
    test = load_dataset(test_frames, target)
    numbers = np.concatenate([a.numbers for a in test.frames])
    runs = {"shared": ("sagpr", {}), "per-element": ("per-element", {}),
            f"per-element, H cutoff {args.h_cutoff:g}": ("per-element", {"per_element": {"H": {"soap": {"cutoff": args.h_cutoff}}}})}
    if args.tune > 0:
        runs[f"shared, --tune {args.tune:g}"] = ("tune", "sagpr")
        runs[f"per-element, --tune {args.tune:g}"] = ("tune", "per-element")
    if args.only:
        runs = {k: v for k, v in runs.items() if args.only in k}
    rows = {}
    for name, (kind, cfg) in runs.items():
        t0 = time.perf_counter()
        model = _tuned(cfg, target, train, args.tune) if kind == "tune" else fit_model(kind, target, train, cfg, seed=0)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = model.predict(test.frames, return_std=False).values[:, 0]
        pred_s = time.perf_counter() - t0
        err = pred - test.values[:, 0]
        per = {chemical_symbols[z]: float(np.sqrt(np.mean(err[numbers == z] ** 2))) for z in sorted(set(numbers))}
        rows[name] = {"rmse_all": float(np.sqrt(np.mean(err**2))), "rmse_per_element": per, "fit_seconds": round(fit_s, 1),
                      "predict_seconds": round(pred_s, 1)}
        if "tuning" in model.metadata:
            rows[name]["chosen"] = model.metadata["tuning"]["best_params"]
        elif kind == "tune":
            rows[name]["chosen"] = {s: r["tuning"]["best_params"] for s, r in model.metadata["per_element"].items()}
        print(name, json.dumps(rows[name]), flush=True)
    counts = {chemical_symbols[z]: int(np.sum(numbers == z)) for z in sorted(set(numbers))}
    out = {"train": f"QMtrainRandom.xyz@:{args.train}", "test": f"TestQM9.xyz@:{args.test} ({len(test)} molecules)",
           "test_atoms": counts, "units": "e", "runs": rows}
    Path("benchmarks/results").mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    els = list(counts)
    print("| model | " + " | ".join(f"{e} ({counts[e]})" for e in els) + " | all | fit [s] | predict [s] |")
    print("|---" * (len(els) + 4) + "|")
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{1000 * r['rmse_per_element'][e]:.1f}" for e in els)
              + f" | {1000 * r['rmse_all']:.1f} | {r['fit_seconds']} | {r['predict_seconds']} |")
    print("(test RMSE in 10^-3 e)")


if __name__ == "__main__":
    main()
