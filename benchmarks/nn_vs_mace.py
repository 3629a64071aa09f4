"""psilearn-NN vs psilearn-SAGPR vs MACE on dipoles and polarizabilities, side by side, in one run.

Data (read from ../shared/data, skipped with a message where absent):

- ``water_dimer``: water dimers (Grisafi et al. 2018), targets ``mu`` (vector) and ``alpha``
  (symmetric rank 2, atomic units); training subsets of frames :800, test frames 800: (compressed
  dimers, an extrapolation test);
- ``liquid``: 64-molecule liquid-water boxes from DeePMD-kit's water_tensor example, ``dipole``
  (global_system of the dipole set, read as non-periodic since the set has a ``nopbc`` marker) and
  ``polarizability`` (periodic); training subsets of ``training_data_reformat``, test on
  ``validation_data_reformat``.

Every model sees the same training structures (nested random subsets, same seed), holds out 10 % of
them for validation/early stopping, gets the same epoch budget and the same cutoff and width, and
runs single-threaded (``OMP_NUM_THREADS=1``) in its own process, so peak memory (max RSS) is per run.
MACE (``AtomicDielectricMACE``, loss ``dipole_polar``, the other property weighted 0) runs in its own
venv (benchmarks/mace_env/setup.sh). Prediction throughput = test structures / wall time of
prediction including neighbour lists / descriptors. RMSE is over all Cartesian components, as % of
the test set's standard deviation.

    nice -n 10 .venv/bin/python benchmarks/nn_vs_mace.py                     # default budget (~10 min of
                                                                             # CPU; 30-60 min on a busy machine)
    .venv/bin/python benchmarks/nn_vs_mace.py --quick                        # smoke test (~3 min)

Timings on a shared 2-core machine swing up to 2x: compare models within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = (ROOT / ".." / "shared" / "data").resolve()
DIMER = DATA / "water_tensors" / "water_dimer" / "coords_1000.xyz"
LIQUID = DATA / "deepmd_sets" / "water_tensor"


def datasets(args):
    """[(name, train_spec, test_spec, key, tensor, sizes, budget)]; budget: epochs, batch, cutoff."""
    out = []
    dimer_budget = dict(epochs=args.dimer_epochs, batch=8, cutoff=5.0, channels=32)
    liquid_budget = dict(epochs=args.liquid_epochs, batch=2, cutoff=4.0, channels=16)
    if DIMER.exists():
        for key, tensor in (("mu", "i"), ("alpha", "ij=ji")):
            out.append(("water_dimer", f"{DIMER}@:800", f"{DIMER}@800:", key, tensor, args.dimer_sizes, dimer_budget))
    else:
        print(f"skipping water_dimer: {DIMER} not found", file=sys.stderr)
    for sub, key, tensor in (("dipole", "dipole", "i"), ("polar", "polarizability", "ij=ji")):
        d = LIQUID / sub
        if d.exists():
            out.append((f"liquid_{sub}", str(d / "training_data_reformat" / "global_system"),
                        f"{d / 'validation_data_reformat' / 'global_system'}@:{args.liquid_test}", key, tensor,
                        args.liquid_sizes, liquid_budget))
        else:
            print(f"skipping liquid water {sub}: {d} not found", file=sys.stderr)
    return out


def write_xyz(path: Path, ds) -> None:
    """extxyz with the psilearn key and MACE's bench_dipole / bench_polar (zeros for the other);
    labels as validated (projected onto the declared symmetry) by psilearn."""
    from psilearn.data import write_structures

    key, tensor = ds.target.key, ds.target.tensor
    out = []
    for a, val in zip(ds.frames, ds.values):
        b = a.copy()
        val = np.asarray(val, float).ravel()
        b.info = {key: val, "bench_dipole": val if tensor == "i" else np.zeros(3),
                  "bench_polar": val if tensor != "i" else np.zeros(9)}
        if not b.pbc.any():
            b.cell = np.zeros((3, 3))
        out.append(b)
    write_structures(path, out)


def nn_config(path: Path, budget: dict, quick: bool) -> None:
    import yaml

    cfg = {
        "nn": {"cutoff": budget["cutoff"], "channels": budget["channels"], "lmax": 2, "layers": 2, "correlation": 2},
        "nn_train": {"epochs": budget["epochs"], "batch_size": budget["batch"], "lr": 5e-3, "val_fraction": 0.1,
                     "threads": 1, "schedule": "plateau", "patience": 10 * budget["epochs"], "plateau_patience": 5,
                     "uncertainty": "llpr", "checkpoint_every": 10**6},
    }
    path.write_text(yaml.safe_dump(cfg))


def sagpr_config(path: Path, budget: dict) -> None:
    import yaml

    path.write_text(yaml.safe_dump({"soap": {"cutoff": budget["cutoff"]}, "model": {"n_sparse": 400}}))


def run_json(cmd: list[str], env: dict, log: Path) -> dict | None:
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=fh, text=True, env=env)
    if proc.returncode != 0:
        print(f"  FAILED ({proc.returncode}) after {time.perf_counter() - t0:.0f} s: see {log}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def score(key: str, tensor: str, test_values: np.ndarray, pred: np.ndarray) -> float:
    from psilearn.report.metrics import regression_metrics
    from psilearn.targets import Target

    t = Target(key, tensor=tensor)
    return regression_metrics(t, t.to_irreps(test_values), t.to_irreps(np.asarray(pred)))["cartesian"]["pct_rmse"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dimer-sizes", default="50,100,200")
    ap.add_argument("--liquid-sizes", default="4,8,16")
    ap.add_argument("--dimer-epochs", type=int, default=25)
    ap.add_argument("--liquid-epochs", type=int, default=8)
    ap.add_argument("--liquid-test", type=int, default=40, help="test on the first N validation boxes")
    ap.add_argument("--models", default="nn,sagpr,mace")
    ap.add_argument("--datasets", default="water_dimer,liquid_dipole,liquid_polar", help="subset of the data sets to run")
    ap.add_argument("--mace-python", default="/work/mace-venv/bin/python")
    ap.add_argument("--workdir", default="/tmp/psilearn-nn-vs-mace")
    ap.add_argument("--json", default=None, help="write all results as JSON here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny sizes and budgets: a smoke test")
    args = ap.parse_args()
    if args.quick:
        args.dimer_sizes, args.liquid_sizes, args.dimer_epochs, args.liquid_epochs, args.liquid_test = "20", "4", 3, 2, 8
    args.dimer_sizes = [int(s) for s in str(args.dimer_sizes).split(",")]
    args.liquid_sizes = [int(s) for s in str(args.liquid_sizes).split(",")]
    models = args.models.split(",")
    if "mace" in models and not Path(args.mace_python).exists():
        print(f"MACE venv not found at {args.mace_python}: run benchmarks/mace_env/setup.sh; skipping MACE", file=sys.stderr)
        models.remove("mace")

    from psilearn.data import load_dataset
    from psilearn.targets import Target

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "PYTHONUNBUFFERED": "1"}
    py = sys.executable
    rows = []
    t_all = time.perf_counter()
    for name, train_spec, test_spec, key, tensor, sizes, budget in datasets(args):
        if name not in args.datasets.split(","):
            continue
        target = Target(key, tensor=tensor)
        # the liquid-water polarizabilities are symmetric only to ~1e-3: project them, for every model
        pool = load_dataset(train_spec, target, symmetrize=True)
        test = load_dataset(test_spec, target, symmetrize=True)
        sizes = [n for n in sizes if n <= len(pool)]
        order = np.random.default_rng(args.seed).permutation(len(pool))
        tag = f"{name}-{key}"
        test_xyz = work / f"{tag}-test.xyz"
        write_xyz(test_xyz, test)
        elements = ",".join(str(z) for z in sorted({int(z) for a in pool.frames for z in a.numbers}))
        for n in sizes:
            sub = pool.subset(np.sort(order[:n]))
            train_xyz = work / f"{tag}-n{n}-train.xyz"
            write_xyz(train_xyz, sub)
            for model in models:
                run_dir = work / f"{tag}-n{n}-{model}"
                print(f"[{time.perf_counter() - t_all:6.0f} s] {tag} n={n} {model}", file=sys.stderr, flush=True)
                if model in ("nn", "sagpr"):
                    cfg = work / f"{tag}-{model}.yaml"
                    (nn_config if model == "nn" else lambda p, b, q: sagpr_config(p, b))(cfg, budget, args.quick)
                    cmd = [py, str(HERE / "nn_bench_worker.py"), "--model", model, "--train", str(train_xyz),
                           "--test", str(test_xyz), "--target", key, "--tensor", tensor, "--config", str(cfg),
                           "--out", str(run_dir)]
                else:
                    cmd = [args.mace_python, str(HERE / "mace_env" / "run_mace.py"), "--train", str(train_xyz),
                           "--test", str(test_xyz), "--target", "dipole" if tensor == "i" else "polarizability",
                           "--workdir", str(run_dir), "--epochs", str(budget["epochs"]),
                           "--batch-size", str(budget["batch"]), "--r-max", str(budget["cutoff"]),
                           "--channels", str(budget["channels"]), "--valid-fraction", "0.1", "--seed", str(args.seed),
                           "--elements", elements]
                res = run_json(cmd, env, work / f"{tag}-n{n}-{model}.log")
                if res is None:
                    rows.append({"dataset": name, "target": key, "n_train": n, "model": model, "failed": True})
                    continue
                row = {"dataset": name, "target": key, "n_train": n, "model": model,
                       "pct_rmse": score(key, tensor, test.values, res["pred"]),
                       "train_seconds": res["train_seconds"],
                       "throughput": len(test) / max(res["predict_seconds"], 1e-9),
                       "peak_rss_mb": res["peak_rss_mb"], "calibration": res.get("calibration"),
                       "n_test": len(test)}
                rows.append(row)
                if args.json:  # partial results survive an interrupted run
                    Path(args.json).write_text(json.dumps({"rows": rows, "partial": True, "argv": sys.argv}, indent=1))
                print(f"    RMSE {row['pct_rmse']:.2f}% of std, train {row['train_seconds']:.0f} s, "
                      f"{row['throughput']:.1f} structures/s, peak {row['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    total = time.perf_counter() - t_all
    print_table(rows, total, models)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "total_seconds": total, "argv": sys.argv}, indent=1))
    return 0


def print_table(rows: list[dict], total: float, models: list[str]) -> None:
    print(f"\npsilearn-NN vs psilearn-SAGPR vs MACE (1 CPU thread each; total wall time {total / 60:.1f} min)")
    head = f"{'dataset':<15}{'target':<15}{'n_train':>8}  {'model':<7}{'RMSE %std':>10}{'train [s]':>11}{'pred [struct/s]':>17}{'peak [MB]':>11}{'within 1s/2s':>14}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if r.get("failed"):
            print(f"{r['dataset']:<15}{r['target']:<15}{r['n_train']:>8}  {r['model']:<7}{'failed':>10}")
            continue
        cal = r.get("calibration")
        cal_s = f"{100 * cal['within_1sigma']:.0f}/{100 * cal['within_2sigma']:.0f}%" if cal else "-"
        print(f"{r['dataset']:<15}{r['target']:<15}{r['n_train']:>8}  {r['model']:<7}{r['pct_rmse']:>10.2f}"
              f"{r['train_seconds']:>11.1f}{r['throughput']:>17.1f}{r['peak_rss_mb']:>11.0f}{cal_s:>14}")
    # summary of the goal: best psilearn model vs MACE, accuracy and throughput
    if "mace" in models:
        print("\nbest psilearn model vs MACE (accuracy ratio < 1: psilearn more accurate; speed = psilearn-NN / MACE throughput):")
        keys = sorted({(r["dataset"], r["target"], r["n_train"]) for r in rows if not r.get("failed")})
        for k in keys:
            by = {r["model"]: r for r in rows if (r["dataset"], r["target"], r["n_train"]) == k and not r.get("failed")}
            if "mace" not in by:
                continue
            ours = [m for m in ("nn", "sagpr") if m in by]
            if not ours:
                continue
            best = min(ours, key=lambda m: by[m]["pct_rmse"])
            speed = by["nn"]["throughput"] / by["mace"]["throughput"] if "nn" in by else float("nan")
            print(f"  {k[0]:<15}{k[1]:<15}{k[2]:>6}: best={best:<6} RMSE ratio {by[best]['pct_rmse'] / by['mace']['pct_rmse']:.2f}, "
                  f"NN speed x{speed:.1f}")


if __name__ == "__main__":
    sys.exit(main())
