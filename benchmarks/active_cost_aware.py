"""Cost-aware multi-fidelity active learning on the shared water dimers (issue 14): error at the target
level against the total label seconds, for

  * single-fidelity random      (`psilearn active --oracle mu --strategy random`),
  * single-fidelity variance AL (`psilearn active --oracle mu`),
  * cost-aware multi-fidelity AL (`psilearn active --oracle mu_gfn2 --oracle mu --cost mu_gfn2=C0 --cost mu=C1`):
    each pick a (structure, level) pair by the largest reduction of the target level's predictive
    variance per second (psilearn.active.fidelity), the model recursive co-kriging.

Data: ../shared/data/water_tensors/water_dimer/coords_1000.xyz, dipole `mu` (the set's reference level, a.u.)
as the target level; GFN2-xTB dipoles of every frame from psilearn's labeler through a label store (the one
benchmarks/fidelity_water_dimer.py made is reused when --gfn2-db points at it). Per seed: frames 0-799
shuffled, 200 i.i.d. test structures, the next --pool the pool; frames 800-999 (compressed dimers) the
shifted test set.

Costs (seconds per label): GFN2 the mean label_seconds of the store; the reference level has no recorded
cost, so the stand-in is --target-cost (default 3.25 s: PBE0/aug-cc-pVDZ dipoles of 4 dimers measured with
`psilearn label --method pbe0/aug-cc-pvdz --observables dipole --workers 0`, one thread, 2 shared cores).

    python benchmarks/active_cost_aware.py [--seeds 3] [--pool 600] [--init 10] [--batch 10] [--budget 100] --json run.json
    python benchmarks/active_cost_aware.py --methods "MF random" --json mf.json     # the ablation: GFN2 on all, random reference labels
    python benchmarks/active_cost_aware.py --report run.json mf.json               # the tables
    python benchmarks/active_cost_aware.py --methods "cost-aware MF (posterior),cost-aware MF (surrogate)" --json post.json
        # the multi-level selection on the model's per-level joint posterior vs on the surrogate kernel;
        # "cost-aware MF (targeted pool)": --strategy targeted across the levels, the pool as the focus
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import time

import numpy as np

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "water_tensors", "water_dimer", "coords_1000.xyz")
CONFIGS = {"random": dict(strategy="random"), "variance": dict(strategy="variance"), "cost-aware MF": {}}
#: the cost-aware multi-level methods: the loop's default ("cost-aware MF": the model's per-level joint posterior where
#: every level has one, else the surrogate kernel), or one acquisition forced
MF_METHODS = ("cost-aware MF", "cost-aware MF (posterior)", "cost-aware MF (surrogate)", "cost-aware MF (targeted pool)")


def gfn2(frames, db: str) -> tuple[np.ndarray, float]:
    """GFN2-xTB dipoles (n, 3) e*Bohr through the label store, and the mean stored seconds per label."""
    from psilearn.models.fidelity import BaselineMethod
    from psilearn.targets import Target

    method = BaselineMethod.resolve("gfn2", Target("mu", tensor="i", units="e*Bohr"), label="dipole_moment")
    labelled, _, seconds = method.label_frames(frames, db, workers=0, progress=False)
    return np.array([np.asarray(a.info[method.key], float) for a in labelled]), seconds / len(frames)


def rmse(model, frames, truth) -> float:
    return float(np.sqrt(np.mean((model.predict(frames, return_std=False).values - truth) ** 2)))


def one_run(name: str, pool_file: str, tests: dict, args, costs: tuple[float, float], seed: int, state: str) -> list[dict]:
    from psilearn.active import ActiveOptions, run_active

    target = {"key": "mu", "tensor": "i", "units": "e*Bohr"}
    common = dict(pool=pool_file, target=target, init=args.init, batch=args.batch, budget=args.budget, seed=seed,
                  init_strategy="random")
    if name in MF_METHODS:
        # '(targeted pool)': --strategy targeted with the pool as its focus (the pool's integrated target-level variance)
        focus = dict(strategy="targeted", focus=pool_file) if name.endswith("(targeted pool)") else {}
        opts = ActiveOptions(**common, oracle=["mu_gfn2", "mu"], costs={"mu_gfn2": costs[0], "mu": costs[1]}, **focus)
    else:
        opts = ActiveOptions(**common, oracle="mu", **CONFIGS[name])
    rows: list[dict] = []
    total = {"seconds": 0.0, "ref": 0}  # the run is fresh (its state removed): on_fit sees every round once

    def on_fit(r: dict, model) -> None:
        if name in MF_METHODS:
            if name.endswith(("(posterior)", "(targeted pool)")) and r["round"] > 0 and log_acquisition(state, r["round"]) != "model posterior":
                raise RuntimeError(f"round {r['round']}: the posterior acquisition was not used")
            total["seconds"] += r["charged_seconds"]
            total["ref"] += sum(1 for _, level in r["pairs"] if level == "mu")
        else:
            total["seconds"], total["ref"] = r["n_labelled"] * costs[1], r["n_labelled"]
        rows.append({"method": name, "seed": seed, "round": r["round"], "n_ref": total["ref"],
                     "n_gfn2": r["n_labelled"] - total["ref"], "seconds": total["seconds"],
                     **{k: rmse(model, f, y) for k, (f, y) in tests.items()}})
        print(json.dumps(rows[-1]), flush=True)

    shutil.rmtree(state, ignore_errors=True)  # a log left by a killed run with the same options would be resumed, not restarted
    with forced_acquisition(name):
        run_active(opts, state_dir=state, overwrite=True, on_fit=on_fit)
    return rows


def log_acquisition(state: str, round_: int) -> str | None:
    """The acquisition the active-learning log records for round ``round_`` (saved before labelling)."""
    with open(os.path.join(state, "log.json")) as fh:
        return json.load(fh)["rounds"][round_].get("acquisition")


@contextlib.contextmanager
def forced_acquisition(name: str):
    """'cost-aware MF (surrogate)': the loop's per-level posterior path disabled (it then falls back to the
    surrogate kernel, psilearn.active.fidelity.cost_aware_batch, and logs 'surrogate kernel')."""
    from psilearn.active import loop

    real = loop.levels_posterior_batch
    if name.endswith("(surrogate)"):
        loop.levels_posterior_batch = lambda *args, **kw: None
    try:
        yield
    finally:
        loop.levels_posterior_batch = real


def mf_random(pool_file: str, tests: dict, sizes: list[int], costs: tuple[float, float], seed: int) -> list[dict]:
    """Ablation: multi-fidelity with GFN2 on the whole pool and N random reference labels (no selection)."""
    from psilearn.data import load_dataset, read_structures
    from psilearn.models.factory import fit_model
    from psilearn.models.fidelity import multifidelity_kind
    from psilearn.targets import Target

    target = Target("mu", tensor="i", units="e*Bohr")
    pool = read_structures(pool_file)
    lo = []
    for a in pool:
        b = a.copy()
        b.info["mu"], b.info["level"] = b.info["mu_gfn2"], "gfn2"
        lo.append(b)
    order = np.random.default_rng([seed, 1]).permutation(len(pool))
    rows = []
    for n in sizes:
        hi = [pool[i].copy() for i in order[:n]]
        for b in hi:
            b.info["level"] = "ref"
        model = fit_model(multifidelity_kind("level", ["gfn2", "ref"], "ref"), target, load_dataset(lo + hi, target), {}, seed=seed)
        rows.append({"method": "MF random (GFN2 on all)", "seed": seed, "round": -1, "n_ref": n, "n_gfn2": len(pool),
                     "seconds": n * costs[1] + len(pool) * costs[0], **{k: rmse(model, f, y) for k, (f, y) in tests.items()}})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def summarise(rows: list[dict], reference: str = "random") -> None:
    """Mean RMSE per method and round (seconds of labels), and the label-seconds ratio at equal error
    against ``reference`` (its seconds for the same mean error, log-log interpolated; '>' beyond its range)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    curves = {}
    for m in methods:
        key = "n_ref" if m.startswith("MF random") else "round"
        pts = {}
        for r in rows:
            if r["method"] == m:
                pts.setdefault(r[key], []).append(r)
        curves[m] = [{f: float(np.mean([x[f] for x in v])) for f in ("seconds", "n_ref", "n_gfn2", "iid", "shifted")}
                     | {"iid_sd": float(np.std([x["iid"] for x in v])), "shifted_sd": float(np.std([x["shifted"] for x in v])),
                        "n": len(v)} for _, v in sorted(pts.items())]
    for test in ("iid", "shifted"):
        print(f"\n{test} test: RMSE of the dipole (e*Bohr), mean +- std over seeds; ratio: {reference}'s label seconds for the same error / this method's")
        print("| method | ref labels | GFN2 labels | label seconds | RMSE | ratio vs " + reference + " |")
        print("|---|---|---|---|---|---|")
        ref = curves.get(reference, [])
        for m in methods:
            for c in curves[m]:
                print(f"| {m} | {c['n_ref']:.0f} | {c['n_gfn2']:.0f} | {c['seconds']:.1f} | {c[test]:.4f} +- {c[test + '_sd']:.4f} | "
                      f"{_ratio(ref, c, test)} |")


def _ratio(ref: list[dict], c: dict, test: str) -> str:
    if not ref:
        return "-"
    s = np.array([p["seconds"] for p in ref])
    e = np.array([p[test] for p in ref])
    if c[test] >= e[0]:
        return f"{s[0] / c['seconds']:.2f}x (<=)" if c[test] > e[0] else f"{s[0] / c['seconds']:.2f}x"
    if c[test] < e.min():
        return f">{s[np.argmin(e)] / c['seconds']:.2f}x"
    for k in range(len(e) - 1):  # the first crossing of the reference curve, log-log
        lo, hi = sorted((e[k], e[k + 1]))
        if lo <= c[test] <= hi and e[k] != e[k + 1]:
            t = (np.log(c[test]) - np.log(e[k])) / (np.log(e[k + 1]) - np.log(e[k]))
            return f"{np.exp(np.log(s[k]) + t * (np.log(s[k + 1]) - np.log(s[k]))) / c['seconds']:.2f}x"
    return "-"


def run(args) -> list[dict]:
    from ase.io import write

    from psilearn.data import read_structures

    os.makedirs(args.out, exist_ok=True)
    frames = read_structures(DATA)
    mu_gfn2, c_gfn2 = gfn2(frames, args.gfn2_db)
    costs = (args.cheap_cost or c_gfn2, args.target_cost)
    print(f"costs (s per label): gfn2 {costs[0]:.5f}, target level {costs[1]:.3f}", flush=True)
    for a, g in zip(frames, mu_gfn2):
        a.info["mu_gfn2"] = g
    ref = np.array([a.info["mu"] for a in frames])
    rows = []
    for seed in range(args.seeds):
        perm = np.random.default_rng(seed).permutation(800)
        iid, pool = perm[:200], perm[200:200 + args.pool]
        pool_file = os.path.join(args.out, f"pool_seed{seed}.xyz")
        write(pool_file, [frames[i] for i in pool])
        tests = {"iid": ([frames[i] for i in iid], ref[iid]), "shifted": (frames[800:], ref[800:])}
        for name in args.methods.split(","):
            t0 = time.perf_counter()
            if name == "MF random":
                got = mf_random(pool_file, tests, [int(v) for v in args.mf_sizes.split(",")], costs, seed)
                rows += [{**r, "method": r["method"] + args.name_suffix} for r in got]
                print(f"seed {seed} {name}: {time.perf_counter() - t0:.0f} s", flush=True)
                continue
            got = one_run(name, pool_file, tests, args, costs, seed, os.path.join(args.out, f"state_{seed}_{name.replace(' ', '_')}"))
            rows += [{**r, "method": r["method"] + args.name_suffix} for r in got]
            print(f"seed {seed} {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--pool", type=int, default=600)
    ap.add_argument("--init", type=int, default=10)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--methods", default="random,variance,cost-aware MF")
    ap.add_argument("--target-cost", type=float, default=3.25, help="seconds per reference label (stand-in, see above)")
    ap.add_argument("--cheap-cost", type=float, default=None, help="seconds per GFN2 label (default: measured, the store)")
    ap.add_argument("--gfn2-db", default="bench-fidelity/gfn2_dimers.db")
    ap.add_argument("--out", default="bench-active-cost")
    ap.add_argument("--mf-sizes", default="10,30,50,100", help="'MF random' (in --methods): reference labels")
    ap.add_argument("--json", default=None, help="write the rows here")
    ap.add_argument("--report", nargs="+", default=None, metavar="JSON", help="only print the tables of saved runs")
    ap.add_argument("--reference", default="random", help="the method the label-seconds ratios are taken against")
    ap.add_argument("--name-suffix", default="", help="appended to the method names of this run (e.g. ' to 400')")
    args = ap.parse_args()
    if args.report:
        rows = [r for path in args.report for r in json.load(open(path))["rows"]]
        summarise(rows, args.reference)
        return
    rows = run(args)
    summarise(rows, args.reference)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
