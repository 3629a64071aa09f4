"""Fit time and peak memory of SA-GPR against the number of environments: the streamed fit
(normal equations accumulated in batches, psilearn.models.sagpr.stream) and, where it fits, the
in-memory one (docs/scaling.md).

Data: QM9 molecules with per-atom charges (``initial_charges``, Mulliken; ../shared/data/qm9_dipoles_charges,
QMtrainRandom.xyz + QMtrainFarthest.xyz, 12 thousand atoms). Larger sets repeat these molecules,
each copy rigidly rotated at random and its atoms displaced by Gaussian noise of 0.02 Angstrom
(seed 0), with the labels of the original: a timing and memory benchmark, not an accuracy one.
Per-atom target (one environment = one sample), default lambda-SOAP, n_sparse stated (fixed), so
the kernel work is linear in N; each fit runs in a fresh subprocess whose peak RSS
(resource.getrusage ru_maxrss) is reported, with the RSS after reading the data for reference.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scaling_sagpr.py --sizes 1000,10000,100000
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scaling_sagpr.py --sizes 1000,3000 --in-memory-max 3000 --out /tmp/x
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data", "qm9_dipoles_charges")
FILES = ("QMtrainRandom.xyz", "QMtrainFarthest.xyz")
SOAP = {"cutoff": 5.0, "max_radial": 6, "max_angular": 4}


def frames_with(n_env: int):
    """Structures with at least ``n_env`` atoms in total (module docstring)."""
    import ase.io
    from scipy.spatial.transform import Rotation

    base = [a for f in FILES for a in ase.io.read(os.path.join(DATA, f), ":")]
    rng = np.random.default_rng(0)
    out, total, i = [], 0, 0
    while total < n_env:
        a = base[i % len(base)].copy()
        if i >= len(base):
            a.positions = (a.positions - a.positions.mean(0)) @ Rotation.random(random_state=rng).as_matrix().T
            a.positions += rng.normal(0.0, 0.02, a.positions.shape)
        out.append(a)
        total += len(a)
        i += 1
    return out


def worker(n_env: int, mode: str, n_sparse: int, batch: int) -> dict:
    """One fit in this process; its time and peak memory."""
    import resource

    from psilearn import Target, load_dataset
    from psilearn.models.factory import fit_model

    target = Target("initial_charges", per="atom", units="e")
    ds = load_dataset(frames_with(n_env), target)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MB (Linux: kB)
    model = {"n_sparse": n_sparse, "regularization": "ml"}
    if mode != "in-memory":
        # without the k-fold held-out estimate (its per-fold sums and third pass: docs/scaling.md), as when the table was measured
        model.update(stream_batch=batch, float32=mode == "streamed-f32", scheduler="local" if mode == "streamed-dask" else "",
                     stream_heldout=False)
    t0 = time.perf_counter()
    fit_model("sagpr", target, ds, {"soap": SOAP, "model": model})
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest Dask worker process (after they exit)
    return {"n_env": int(sum(len(a) for a in ds.frames)), "mode": mode, "fit_s": seconds, "peak_rss_mb": peak, "data_rss_mb": rss_data,
            **({"worker_peak_rss_mb": workers} if mode == "streamed-dask" else {})}


def run(n_env: int, mode: str, args) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", str(n_env), mode, "--n-sparse", str(args.n_sparse), "--batch", str(args.batch)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    if p.returncode != 0:
        print(f"{n_env} {mode}: failed ({p.returncode}): {p.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    row = json.loads(p.stdout.strip().splitlines()[-1])
    row["wall_s"] = time.perf_counter() - t0
    return row


def plot(rows: list[dict], png: str) -> dict:
    """Log-log plot of fit time and peak RSS against N per mode; returns the fitted slopes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    slopes = {}
    for mode in sorted({r["mode"] for r in rows}):
        pts = sorted((r["n_env"], r["fit_s"], r["peak_rss_mb"]) for r in rows if r["mode"] == mode)
        n = np.array([p[0] for p in pts], float)
        for ax, k, what in ((axes[0], 1, "time"), (axes[1], 2, "rss")):
            y = np.array([p[k] for p in pts])
            s = float(np.polyfit(np.log(n), np.log(y), 1)[0]) if len(n) > 1 else float("nan")
            slopes[(mode, what)] = s
            ax.loglog(n, y, "o-", label=f"{mode} (slope {s:.2f})")
    axes[0].set(xlabel="environments N (atoms)", ylabel="fit time [s]", title="SA-GPR fit time")
    axes[1].set(xlabel="environments N (atoms)", ylabel="peak RSS [MB]", title="SA-GPR peak memory")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    return slopes


def report(rows: list[dict], slopes: dict, path: str) -> None:
    """The table and the slopes as markdown (``path``)."""
    lines = ["| N environments | mode | fit time [s] | peak RSS [MB] | RSS after reading the data [MB] | largest Dask worker's peak RSS [MB] |",
             "|---:|---|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["n_env"], r["mode"])):
        w = f"{r['worker_peak_rss_mb']:.0f}" if "worker_peak_rss_mb" in r else "-"
        lines.append(f"| {r['n_env']:,} | {r['mode']} | {r['fit_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['data_rss_mb']:.0f} | {w} |")
    lines += ["", "| mode | log-log slope, fit time | log-log slope, peak RSS | sizes | slope of time, N >= 10^4 | slope of RSS, N >= 10^4 |",
              "|---|---:|---:|---|---:|---:|"]
    for mode in sorted({r["mode"] for r in rows}):
        pts = sorted((r["n_env"], r["fit_s"], r["peak_rss_mb"]) for r in rows if r["mode"] == mode)
        big = [p for p in pts if p[0] >= 10000]
        # above ~10^4 atoms every element has its stated n_sparse, so the kernel size no longer changes with N
        fit = [float(np.polyfit(np.log([p[0] for p in big]), np.log([p[k] for p in big]), 1)[0]) if len(big) > 1 else float("nan") for k in (1, 2)]
        sizes = ", ".join(f"{p[0]:,}" for p in pts)
        lines.append(f"| {mode} | {slopes[(mode, 'time')]:.2f} | {slopes[(mode, 'rss')]:.2f} | {sizes} | {fit[0]:.2f} | {fit[1]:.2f} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="1000,10000,100000", help="numbers of environments")
    ap.add_argument("--modes", default="streamed,streamed-f32,in-memory", help="also streamed-dask (scheduler: local)")
    ap.add_argument("--in-memory-max", type=int, default=10000, help="largest N fitted in memory")
    ap.add_argument("--n-sparse", type=int, default=400, help="sparse environments per element (stated: fixed)")
    ap.add_argument("--batch", type=int, default=200, help="structures per streamed batch")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "scaling_sagpr"), help="prefix of the .json/.png written")
    ap.add_argument("--append", action="store_true", help="add to the rows of an earlier run's .json (table and plot of both)")
    ap.add_argument("--report", action="store_true", help="only redraw the plot and the markdown table from the .json")
    args = ap.parse_args()
    if args.report:
        with open(args.out + ".json") as f:
            rows = json.load(f)
        report(rows, plot(rows, args.out + ".png"), args.out + "_table.md")
        return 0
    if args.worker:
        print(json.dumps(worker(int(args.worker[0]), args.worker[1], args.n_sparse, args.batch)))
        return 0
    if not os.path.isdir(DATA):
        print(f"SKIP: {DATA} not found (benchmarks read ../shared/data beside the checkout)")
        return 0
    rows = []
    if args.append and os.path.isfile(args.out + ".json"):
        with open(args.out + ".json") as f:
            rows = json.load(f)
    print(f"{'N env':>8} {'mode':<14}{'fit [s]':>10}{'peak RSS [MB]':>15}{'RSS after data [MB]':>21}", flush=True)
    for n in (int(s) for s in args.sizes.split(",")):
        for mode in args.modes.split(","):
            if mode == "in-memory" and n > args.in_memory_max:
                continue
            row = run(n, mode, args)
            if row:
                rows.append(row)
                print(f"{row['n_env']:>8} {mode:<14}{row['fit_s']:>10.1f}{row['peak_rss_mb']:>15.0f}{row['data_rss_mb']:>21.0f}", flush=True)
                with open(args.out + ".json", "w") as f:
                    json.dump(rows, f, indent=1)
    slopes = plot(rows, args.out + ".png")
    report(rows, slopes, args.out + "_table.md")
    for (mode, what), s in sorted(slopes.items()):
        print(f"log-log slope {what} {mode}: {s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
