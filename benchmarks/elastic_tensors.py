"""Elasticity tensors of 100 cubic crystals (73 elements): kernel and NN, % RMSE per channel and peak memory.

Data: ../shared/data/matten_tensors/elastic_tensors.extxyz (Materials Project via matten; full
3x3x3x3 tensors in GPa). Target: rank 4, ``--tensor ijkl=jikl=klij --pool mean --units GPa``
(irreps 2x0e + 2x2e + 1x4e; for cubic crystals the two 2e blocks are zero by symmetry, so only
0e#0, 0e#1 and 4e carry information). Train: frames 0-79; test: the 17 of frames 80-99 whose
elements all occur in training (the other 3 contain Ca or K, which every model refuses to predict).

Rows:
  train mean        the training set's mean tensor (no structure at all; 100 % of the spread up to
                    the mean shift)
  volume power law  each invariant part fitted as a (V / atom)^b on the training set (log-log least
                    squares; 4e = 0): the physics-only reference (stiffer when denser)
  composition       ``--model baseline``: per-element fit of the two invariant parts (73 coefficients
                    from 80 crystals), 4e = 0; the reference ``psilearn evaluate`` reports ratios to
  SA-GPR d=4/8/16   ``soap: {species_embedding: d}`` (element compression), other options default
  SA-GPR d=8 tuned  ``fit --tune SECONDS`` with the embedding fixed at 8
  NN                ``--model nn`` with ``nn_train: {max_seconds: S, threads: 1}``
  extra rows        ``--extra LABEL=KIND:JSON`` (any options; e.g. the improvements in docs/tuning.md)
Columns: test RMSE as % of the test subset's standard deviation (Cartesian, 0e#0, 0e#1, 4e), the
Cartesian RMSE in GPa, the 5-fold CV % RMSE (Cartesian) the model reports on its training set, the
peak RSS of the fitting process (ru_maxrss right after the fit; each fit runs in its own subprocess,
so imports are included) and the fit wall time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/elastic_tensors.py --tune 240 --nn-seconds 300 \
        --out benchmarks/results/elastic_tensors.md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "matten_tensors", "elastic_tensors.extxyz")
TARGET = dict(tensor="ijkl=jikl=klij", pool="mean", units="GPa")
N_TRAIN = 80
CHANNELS = ("0e#0", "0e#1", "4e")  # the 2e blocks are identically zero for cubic crystals


def _target():
    from psilearn import Target

    return Target("elastic_tensor", **TARGET)


def worker(spec: dict, out: str) -> None:
    """Fit one row in this (sub)process; write the test predictions (irreps), timings and peak RSS."""
    from psilearn import load_dataset
    from psilearn.models.factory import fit_model

    target = _target()
    train = load_dataset(f"{DATA}@:{N_TRAIN}", target)
    test = _seen_test(train, target)
    t0 = time.perf_counter()
    if spec.get("tune"):
        from psilearn.tune import tune_model

        model = tune_model(spec["kind"], target, train, spec.get("config") or {}, seconds=spec["tune"], seed=0)
    else:
        model = fit_model(spec["kind"], target, train, spec.get("config") or {}, seed=0)
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    cv = (model.metadata or {}).get("heldout_metrics") or {}
    pred = model.predict(test.frames, return_std=False).irreps
    extra = {}
    if spec.get("tune"):
        best = dict(model.metadata["tuning"].get("best_params") or {})
        sizes = (best.get("model") or {}).get("n_sparse")
        if isinstance(sizes, dict):  # one number per element: the total is enough here
            best["model"] = {**best["model"], "n_sparse": f"{sum(sizes.values())} in all"}
        extra["best"] = {"n_trials": model.metadata["tuning"].get("n_trials"), "best_params": best}
    with open(out, "w") as f:
        json.dump({"pred": pred.tolist(), "seconds": seconds, "peak_gb": peak_kb / 1024**2,
                   "cv_pct": (cv.get("cartesian") or {}).get("pct_rmse"), **extra}, f)


def run_row(spec: dict) -> dict:
    """``worker(spec)`` in a subprocess (OMP_NUM_THREADS=1), so that its peak RSS is its own."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        path = tmp.name
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec), "--worker-out", path]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    with open(path) as f:
        out = json.load(f)
    os.unlink(path)
    return out


def _seen_test(train, target):
    """The test frames (80-99) whose elements all occur in the training frames."""
    from psilearn import load_dataset

    test = load_dataset(f"{DATA}@{N_TRAIN}:", target)
    known = {int(z) for a in train.frames for z in a.numbers}
    keep = [i for i, a in enumerate(test.frames) if {int(z) for z in a.numbers} <= known]
    return test.subset(keep)


def scores(target, ref, pred) -> dict:
    """% RMSE of the test spread (Cartesian and per channel) and the Cartesian RMSE in GPa."""
    from psilearn.metrics.regression import regression_metrics

    m = regression_metrics(target, ref, pred)
    return {"Cartesian": m["cartesian"]["pct_rmse"], **{k: m["channels"][k]["pct_rmse"] for k in CHANNELS},
            "rmse": m["cartesian"]["rmse"]}


def volume_law(train, test, target):
    """Irreps (n_test, n_irreps): each 0e part as a * (V / atom)^b fitted in log-log on the training set, the rest 0."""
    import numpy as np

    def log_v(frames):
        return np.log([a.get_volume() / len(a) for a in frames])

    y = target.to_irreps(train.values)
    out = np.zeros((len(test.frames), y.shape[1]))
    design = np.c_[np.ones(len(train.frames)), log_v(train.frames)]
    for b in target.blocks:
        if b.l == 0:
            sign = np.sign(np.median(y[:, b.start]))
            coef = np.linalg.lstsq(design, np.log(np.maximum(sign * y[:, b.start], 1e-6)), rcond=None)[0]
            out[:, b.start] = sign * np.exp(coef[0] + coef[1] * log_v(test.frames))
    return out


def default_rows(args) -> list[tuple[str, dict]]:
    rows = [("composition", {"kind": "baseline"})]
    rows += [(f"SA-GPR d={d}", {"kind": "sagpr", "config": {"soap": {"species_embedding": d}}}) for d in args.dims]
    if args.tune:
        rows.append((f"SA-GPR d=8 tuned ({args.tune:g} s)", {"kind": "sagpr", "config": {"soap": {"species_embedding": 8}}, "tune": args.tune}))
    if args.nn_seconds:
        rows.append((f"NN ({args.nn_seconds:g} s)", {"kind": "nn", "config": {"nn_train": {"max_seconds": args.nn_seconds, "threads": 1}}}))
    for item in args.extra:
        match = re.match(r"^(.*)=([a-z][a-z-]*):(\{.*\})$", item, re.S)  # the label may contain '='
        if not match:
            raise SystemExit(f"--extra {item!r}: expected LABEL=KIND:JSON")
        rows.append((match[1], {"kind": match[2], "config": json.loads(match[3])}))
    return rows


def table(results: list[tuple[str, dict]], target, test_ref) -> list[str]:
    import numpy as np

    head = ["model", "Cartesian %", *(f"{c} %" for c in CHANNELS), "RMSE [GPa]", "CV %", "peak RSS [GB]", "fit [s]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, res in results:
        if "error" in res:
            lines.append(f"| {label} | failed: {res['error']} |" + " |" * (len(head) - 2))
            continue
        s = scores(target, test_ref, np.asarray(res["pred"]))
        cv = res.get("cv_pct")
        cells = [label, *(f"{s[k]:.0f}" for k in ("Cartesian", *CHANNELS)), f"{s['rmse']:.1f}", "" if cv is None else f"{cv:.0f}",
                 "" if res.get("peak_gb") is None else f"{res['peak_gb']:.2f}", "" if res.get("seconds") is None else f"{res['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", type=int, nargs="*", default=[4, 8, 16], help="species_embedding sizes (default 4 8 16)")
    ap.add_argument("--tune", type=float, default=240.0, metavar="SECONDS", help="tuning budget (0: no tuned row)")
    ap.add_argument("--nn-seconds", type=float, default=300.0, help="NN training budget (0: no NN row)")
    ap.add_argument("--extra", action="append", default=[], metavar="LABEL=KIND:JSON", help="more rows, e.g. 'zeta 1=sagpr:{\"model\": {\"zeta\": 1}}'")
    ap.add_argument("--out", help="also write the table (markdown) here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker), args.worker_out)
        return 0
    if not os.path.isfile(DATA):
        print(f"SKIP: {DATA} not found (benchmarks read ../shared/data beside the checkout)")
        return 0
    import numpy as np

    from psilearn import load_dataset

    target = _target()
    train = load_dataset(f"{DATA}@:{N_TRAIN}", target)
    test = _seen_test(train, target)
    test_ref = target.to_irreps(test.values)
    mean = np.repeat(target.to_irreps(train.values).mean(0, keepdims=True), len(test.frames), axis=0)
    results = [("train mean", {"pred": mean.tolist()}), ("volume power law", {"pred": volume_law(train, test, target).tolist()})]
    for label, spec in default_rows(args):
        print(f"{label}: fitting ...", file=sys.stderr, flush=True)
        results.append((label, run_row(spec)))
        r = results[-1][1]
        done = r["error"] if "error" in r else f"{r['seconds']:.0f} s, {r['peak_gb']:.2f} GB"
        print(f"{label}: {done}", file=sys.stderr, flush=True)
    lines = [f"Elasticity tensors ({os.path.basename(DATA)}): train frames 0-{N_TRAIN - 1}; test: the {len(test_ref)} of frames "
             f"{N_TRAIN}-99 with only training elements; RMSE as % of the test std (2e blocks: zero for cubic crystals, not shown)", "",
             *table(results, target, test_ref)]
    for label, res in results:
        if res.get("best"):
            lines += ["", f"{label}: {json.dumps(res['best'])}"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
