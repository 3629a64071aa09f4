"""Active learning vs random selection on water-dimer polarizabilities or dipoles (oracle mode: labels read from the pool).

Data: ../shared/data/water_tensors/water_dimer/coords_1000.xyz (info keys: potential, mu, alpha, beta).
Frames 800-999 are compressed dimers: the *shifted* test set. Frames 0-799 are split once (split seed 0;
with --split-per-seed, once per seed with that seed) into an i.i.d. test set (--n-iid, default 200) and the pool (the rest). For each seed, `psilearn active`
(run_active) with --strategy variance (farthest-point initial set), --strategy targeted (the same, with the
shifted structures, unlabelled, as --focus: what a study that knows where it will predict can do) and
--strategy random (random initial set) from --init to --budget labels in batches of --batch; after each
round the model is scored on both test sets. The table gives the mean (and spread over seeds) Cartesian test RMSE vs the
number of labels, and the labels-for-equal-error ratio: random's error at the budget, and the number
of labels active learning needs for it (log-log interpolation), and active's error at the budget and
the labels random would need (log-log extrapolation of random's last points where beyond the budget).

    .venv/bin/python benchmarks/active_water_dimer.py                          # 5 seeds, 25 -> 200 by 25
    .venv/bin/python benchmarks/active_water_dimer.py --seeds 2 --budget 100   # reduced
    .venv/bin/python benchmarks/active_water_dimer.py --first-seed 5 --seeds 5 --json more.json  # seeds 5-9
    .venv/bin/python benchmarks/active_water_dimer.py --load first.json more.json               # tables of all seeds

--pool-shifted K moves K compressed dimers (seed 0) into the pool, so that the pool covers the shifted
region sparsely (as the pools of ANI-1x-style studies do); the shifted test set is then the other 200 - K.
--ceiling adds SA-GPR fits on fixed subsets (every compressed dimer of the pool, ...): how much any
selection that concentrates on the compressed region can gain.

    .venv/bin/python benchmarks/active_water_dimer.py --pool-shifted 100 --ceiling

--split-per-seed draws the split (i.i.d. test set, pool, and which compressed dimers join the pool) anew for each
seed, with that seed: the spread over seeds then includes the split's, which a deterministic strategy (targeted
with --init-strategy focus picks the same labels for the same split) needs to be judged at all.

--delta-gfn2 DB makes every strategy fit a delta model on GFN2-xTB's value of the target (psilearn active --baseline
alpha_gfn2 or mu_gfn2; the GFN2 labels of the 1000 dimers are computed through the label store DB in ~10 s, or read back
from it).

--target mu learns the dipole (a.u., e Bohr; a vector: one l=1 channel) instead of the polarizability (default alpha:
symmetric 3x3 in a.u., l=0 and l=2 channels).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import fidelity_water_dimer as fwd
import numpy as np

FILE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "water_tensors", "water_dimer",
                    "coords_1000.xyz")
TARGETS = {key: {"key": key, "tensor": tensor} for key, (tensor, _, _) in fwd.TENSORS.items()}  # the observables: alpha, mu
SMALL = {"soap": {"cutoff": 4.0, "max_radial": 6, "max_angular": 4}, "model": {"n_sparse": 200}}


def _split(n_iid: int, pool_shifted: int, tmp: str, split_seed: int = 0) -> tuple[str, str, str]:
    """Pool, i.i.d. test and shifted test files: ``pool_shifted`` compressed dimers (drawn with ``split_seed``) join
    the pool, the other compressed dimers are the shifted test set; the i.i.d. test set is drawn with the same seed."""
    from psilearn.data import read_structures, write_structures

    frames = read_structures(FILE)
    perm = np.random.default_rng(split_seed).permutation(800)
    iid, pool = np.sort(perm[:n_iid]), np.sort(perm[n_iid:])
    comp = 800 + np.random.default_rng(split_seed).permutation(200)
    pool, shifted = np.concatenate([pool, np.sort(comp[:pool_shifted])]), np.sort(comp[pool_shifted:])
    os.makedirs(tmp, exist_ok=True)
    paths = [os.path.join(tmp, f"{name}.xyz") for name in ("pool", "iid", "shifted")]
    for path, idx in zip(paths, (pool, iid, shifted)):
        write_structures(path, [frames[i] for i in idx], format="extxyz")
    return tuple(paths)


def _run(strategy: str, seed: int, pool: str, tests: dict, args, tmp: str, focus: str, budget: int,
         batch: int) -> tuple[dict[int, dict], list[int]]:
    """One run: its curve {labels: {test set: RMSE}} and the pool indices it labelled, in selection order."""
    from psilearn.active import ActiveOptions, run_active
    from psilearn.active.labels import order_indices
    from psilearn.evaluation import evaluate

    curve: dict[int, dict] = {}

    def on_fit(r, model):
        curve[r["n_labelled"]] = {name: evaluate(model, ds)["cartesian"]["rmse"] for name, ds in tests.items()}

    opts = ActiveOptions(pool=pool, target=TARGETS[args.target], init=args.init, batch=batch,
                         budget=budget, config=SMALL if args.small else {}, seed=seed, strategy=strategy,
                         init_strategy=_init_strategy(strategy, args.init_strategy), oracle=args.target,
                         focus=focus if strategy == "targeted" else None,
                         calibration_neighbours=0 if strategy == "random" else args.calibration_neighbours,
                         baseline=f"{args.target}_gfn2" if args.delta_gfn2 else None)
    _, log = run_active(opts, state_dir=os.path.join(tmp, f"{strategy}-{seed}"), on_fit=on_fit)
    return curve, order_indices(log["rounds"])


def gfn2_frames(db: str, key: str = "alpha") -> list:
    """The water dimers with GFN2-xTB's ``key`` (alpha or mu) in info[f'{key}_gfn2'] (a.u., labelled by psilearn through
    the label store ``db``: ~10 s for the 1000 dimers, read back when ``db`` has them)."""
    from psilearn.data import read_structures

    frames = read_structures(FILE)
    gfn2, _ = fwd.gfn2_labels(frames, db, key)
    for a, g in zip(frames, gfn2):
        a.info[f"{key}_gfn2"] = g
    return frames


def with_gfn2(db: str, out_dir: str, key: str = "alpha") -> str:
    """:func:`gfn2_frames` written to ``out_dir``: the file for delta models (``--baseline {key}_gfn2``)."""
    from psilearn.data import write_structures

    path = os.path.join(out_dir, "dimers_gfn2.xyz")
    write_structures(path, gfn2_frames(db, key), format="extxyz")
    return path


def _init_strategy(strategy: str, asked: str) -> str:
    """The initial set of ``strategy``: random selection always starts at random; ``focus`` needs a focus (targeted)."""
    if strategy == "random" or (asked == "focus" and strategy != "targeted"):
        return "random"
    return asked


def _labels_for(ns: np.ndarray, err: np.ndarray, level: float) -> float:
    """Labels at which the (log-log, piecewise linear) curve reaches ``level``; beyond the last point: the
    power law through the last half of the curve."""
    le, ln = np.log(err), np.log(ns)
    for k in range(1, len(ns)):
        if err[k] <= level:
            if err[k - 1] <= level:
                return float(ns[k - 1])
            t = (np.log(level) - le[k - 1]) / (le[k] - le[k - 1])
            return float(np.exp(ln[k - 1] + t * (ln[k] - ln[k - 1])))
    if err[0] <= level:
        return float(ns[0])
    h = max(2, len(ns) // 2)
    slope, icpt = np.polyfit(ln[-h:], le[-h:], 1)
    return float(np.exp((np.log(level) - icpt) / slope)) if slope < 0 else float("inf")


def _mean_curve(per_seed: dict, seeds: list, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, mean RMSE over ``seeds``) of one strategy's per-seed curves on test set ``name``."""
    ns = sorted(per_seed[seeds[0]].keys())
    return np.array(ns, float), np.array([np.mean([per_seed[k][n][name] for k in seeds]) for n in ns])


def _need_ratios(results: dict, s: str, name: str, seeds: list) -> np.ndarray:
    """For each label count n of strategy ``s``: the labels random needs for s's mean error at n, divided by n."""
    n_s, e_s = _mean_curve(results[s], seeds, name)
    n_r, e_r = _mean_curve(results["random"], seeds, name)
    return np.array([_labels_for(n_r, e_r, e) / n for n, e in zip(n_s, e_s)])


def _ratio_table(results: dict, name: str, n_boot: int = 2000) -> None:
    """Labels random needs for each strategy's error, over the strategy's labels, with a 90 % interval from a
    paired bootstrap over seeds (a seed's active and random runs share the split and the initial set, so they
    are resampled together)."""
    seeds = sorted(set.intersection(*(set(results[s]) for s in results)))
    rng = np.random.default_rng(0)
    for s in [s for s in results if s != "random"]:
        n_s = _mean_curve(results[s], seeds, name)[0]
        point = _need_ratios(results, s, name, seeds)
        boot = np.array([_need_ratios(results, s, name, list(rng.choice(seeds, len(seeds)))) for _ in range(n_boot)])
        lo, hi = np.percentile(boot, [5, 95], axis=0)
        last = max(results["random"][seeds[0]].keys())
        print(f"\n{name}, {s}: labels random needs for {s}'s mean error / {s}'s labels ({len(seeds)} seeds; 90 % interval: "
              f"paired bootstrap over seeds, {n_boot} draws; * beyond random's last point ({last}): extrapolated)")
        print(f"{'labels':>7} {'ratio':>7} {'90 % interval':>16}")
        for n, r, a, b in zip(n_s, point, lo, hi):
            if n > n_s[0]:
                print(f"{n:>7.0f} {r:>7.2f}{'*' if r * n > last else ' '} {a:>7.2f} - {b:<6.2f}")
        per_seed = {k: _need_ratios(results, s, name, [k])[-1] for k in seeds}
        print(f"per seed at {n_s[-1]:.0f} labels (ratio of that seed's curves): "
              + ", ".join(f"{k}: {r:.2f}" for k, r in per_seed.items()))


def _table(results: dict, name: str, key: str = "alpha") -> None:
    ns_of = {s: sorted(next(iter(results[s].values())).keys()) for s in results}
    ns = sorted(set().union(*ns_of.values()))
    mean = {s: {n: np.mean([results[s][seed][n][name] for seed in results[s]]) for n in ns_of[s]} for s in results}
    spread = {s: {n: np.std([results[s][seed][n][name] for seed in results[s]]) for n in ns_of[s]} for s in results}
    active = [s for s in results if s != "random"]
    print(f"\n{name} test set: Cartesian RMSE of {key} (a.u.), mean +- std over {len(results['random'])} seeds; "
          "ratio = random's RMSE / the strategy's at equal labels")
    print(f"{'labels':>7}" + "".join(f"{s:>19}" for s in results) + "".join(f"{'ratio ' + s:>16}" for s in active))
    for n in ns:
        cells = [f"{mean[s][n]:>10.4f} +- {spread[s][n]:<5.4f}" if n in mean[s] else f"{'':>19}" for s in results]
        ratios = [f"{mean['random'][n] / mean[s][n]:>16.2f}" if n in mean[s] and n in mean["random"] else f"{'':>16}" for s in active]
        print(f"{n:>7}" + "".join(cells) + "".join(ratios))
    curve = {s: (np.array(ns_of[s], float), np.array([mean[s][n] for n in ns_of[s]])) for s in results}
    for s in active:
        n_s, e_s = curve[s]
        n_r, e_r = curve["random"]
        at = n_s[-1]
        r_at = np.interp(np.log(at), np.log(n_r), np.log(e_r))  # random's error at the strategy's budget
        n_a = _labels_for(n_s, e_s, float(np.exp(r_at)))
        need = _labels_for(n_r, e_r, e_s[-1])
        print(f"labels for equal error, {s}: random's error at {at:.0f} ({np.exp(r_at):.4f}) is reached "
              + (f"at {n_a:.0f} labels ({at / n_a:.2f}x fewer{', extrapolated' if n_a > at else ''})" if np.isfinite(n_a)
                 else "never (the error does not fall towards it)")
              + f"; its error at {at:.0f} ({e_s[-1]:.4f}) needs {need:.0f} random labels "
              f"({need / at:.2f}x more{', extrapolated beyond random' + chr(39) + 's last point' if need > n_r[-1] else ''})")


def _ceiling(args, tmp: str) -> None:
    """What concentrating the labels on the compressed region can give at all: SA-GPR fits on fixed pool
    subsets (every compressed dimer of the pool, with and without random ordinary ones, and random ordinary
    ones alone), scored on both test sets. Needs --pool-shifted > 0."""
    from psilearn.data import load_dataset, read_structures, write_structures
    from psilearn.evaluation import evaluate
    from psilearn.models.factory import fit_model
    from psilearn.models.registry import model_class
    from psilearn.targets import Target

    target = Target(**TARGETS[args.target])
    pool, iid, shifted = (read_structures(p) for p in _split(args.n_iid, args.pool_shifted, tmp))
    comp, normal = pool[800 - args.n_iid:], pool[: 800 - args.n_iid]
    rng = np.random.default_rng(1)

    def data(frames, name):
        path = os.path.join(tmp, f"ceiling-{name}.xyz")
        write_structures(path, frames, format="extxyz")
        return load_dataset(path, target)

    tests = {"i.i.d.": data(iid, "iid"), "shifted": data(shifted, "shifted")}
    n = len(comp)
    print(f"\nceiling: fixed training sets (random draws with seed 1), Cartesian RMSE of {args.target} (a.u.)\n"
          f"{'training set':>44} {'i.i.d.':>8} {'shifted':>8}")
    for name, frames in [(f"all {n} compressed of the pool", comp),
                         (f"{n} compressed + {n} random ordinary", comp + [normal[i] for i in rng.choice(len(normal), n, replace=False)]),
                         *[(f"{m} random ordinary", [normal[i] for i in rng.choice(len(normal), m, replace=False)]) for m in (n, 2 * n, 4 * n)]]:
        model = fit_model(model_class("sagpr"), target, data(frames, "train"), SMALL if args.small else {}, seed=0)
        print(f"{name:>44}" + "".join(f" {evaluate(model, ds)['cartesian']['rmse']:>8.4f}" for ds in tests.values()), flush=True)


def _save(path: str, results: dict, picks: dict, n_ordinary: int, n_pool: int, key: str = "alpha") -> None:
    """The per-seed curves as JSON (atomically: a kill while writing leaves the previous file); under ``_picks`` each
    run's labelled pool indices in selection order, under ``_n_ordinary`` the pool index where the compressed
    dimers start, under ``_n_pool`` the pool's size and under ``_target`` the observable (alpha or mu)."""
    curves = {s: {str(k): {str(n): v for n, v in c.items()} for k, c in r.items()} for s, r in results.items()}
    extra = {"_picks": {s: {str(k): v for k, v in r.items()} for s, r in picks.items()}, "_n_ordinary": n_ordinary, "_n_pool": n_pool, "_target": key}
    with open(path + ".tmp", "w") as fh:
        json.dump(curves | extra, fh)
    os.replace(path + ".tmp", path)


def _picks_table(picks: dict, n_ordinary: int, n_pool: int, ns: list[int]) -> None:
    """The share of compressed dimers among each strategy's first n labels (mean over seeds; the pool's share for reference)."""
    def mean_share(runs, n):
        shares = [np.mean(np.asarray(p[:n]) >= n_ordinary) for p in runs if len(p) >= n]
        return float(np.mean(shares)) if shares else float("nan")

    share = {s: {n: mean_share(r.values(), n) for n in ns} for s, r in picks.items() if r}
    if not share:
        return
    runs = ", ".join(f"{s}: {len(r)}" for s, r in picks.items() if r)
    print(f"\nshare of compressed dimers among the first n labels (mean over the runs whose picks were saved: {runs}; "
          f"random's expectation: the pool's share, {1 - n_ordinary / n_pool:.3f})\n{'labels':>7}" + "".join(f"{s:>10}" for s in share))
    for n in ns:
        print(f"{n:>7}" + "".join(f"{share[s][n]:>10.3f}" if np.isfinite(share[s][n]) else f"{'':>10}" for s in share))


def _picks_counts(results: dict) -> list[int]:
    """Label counts for the picks table: every third of the first active strategy's (random's if none), and its last."""
    s = next((s for s in results if s != "random"), "random")
    ns = sorted(next(iter(results[s].values())).keys())
    return sorted(set(ns[::3]) | {ns[-1]})


def _report(paths: list[str]) -> int:
    """The tables of per-seed curves saved by --json (later files add strategies and seeds, or replace a
    strategy's seed of an earlier file)."""
    results: dict = {}
    picks: dict = {}
    n_ordinary = n_pool = None
    key = "alpha"  # files saved before the target was recorded are alpha's
    for path in paths:
        with open(path) as fh:
            saved = json.load(fh)
        n_ordinary, n_pool = saved.pop("_n_ordinary", n_ordinary), saved.pop("_n_pool", n_pool)
        key = saved.pop("_target", key)
        for s, r in saved.pop("_picks", {}).items():  # files saved before picks were recorded have none
            picks.setdefault(s, {}).update({int(k): v for k, v in r.items()})
        for s, r in saved.items():
            results.setdefault(s, {}).update({int(k): {int(n): v for n, v in c.items()} for k, c in r.items()})
    if "random" not in results:
        print("--load: no random curves in " + ", ".join(paths))
        return 2
    results = {s: results[s] for s in results if s != "random"} | {"random": results["random"]}
    print("per-seed curves from " + ", ".join(paths))
    for name in next(iter(next(iter(results["random"].values())).values())):
        _table(results, name, key)
        _ratio_table(results, name)
    if picks and n_ordinary is not None and n_pool is not None:
        _picks_table(picks, n_ordinary, n_pool, _picks_counts(results))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--target", choices=sorted(TARGETS), default="alpha", help="the observable: alpha (polarizability, default) or mu (dipole)")
    ap.add_argument("--first-seed", type=int, default=0, help="seeds run from this one (--seeds of them): more seeds for "
                    "curves saved earlier, merged with --load")
    ap.add_argument("--init", type=int, default=25)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--random-budget", type=int, default=0, help="run random selection further than --budget (the labels "
                    "random needs for the active strategies' error at --budget: measured instead of extrapolated)")
    ap.add_argument("--random-batch", type=int, default=0, help="random selection's batch (default: --batch); its picks do "
                    "not depend on the model, so the batch only changes which random draws it makes, and fewer refits are cheaper")
    ap.add_argument("--focus", choices=["shifted", "pool"], default="shifted", help="targeted's focus set: the shifted "
                    "structures (default) or the whole pool (the integrated variance over the pool: a selection for i.i.d. use)")
    ap.add_argument("--n-iid", type=int, default=200)
    ap.add_argument("--pool-shifted", type=int, default=0, help="this many compressed dimers join the pool (a pool that "
                    "covers the shifted region sparsely, as in ANI-1x); the others are the shifted test set (default 0: none)")
    ap.add_argument("--ceiling", action="store_true", help="also fit fixed subsets (all compressed dimers of the pool, ...): "
                    "what labelling the compressed region can give at all (needs --pool-shifted)")
    ap.add_argument("--small", action="store_true", help="smaller SOAP and 200 sparse points (faster)")
    ap.add_argument("--init-strategy", default="random", choices=["random", "fps", "focus"], help="the initial set of the active "
                    "strategies (random: the same as the random baseline's, default; focus: targeted's only, chosen for its focus)")
    ap.add_argument("--split-per-seed", action="store_true", help="a new split for each seed, drawn with that seed "
                    "(default: one split, seed 0, for all seeds)")
    ap.add_argument("--calibration-neighbours", type=int, default=0, help="the active strategies scale the joint posterior by "
                    "the leave-one-out calibration of this many nearest labelled structures (psilearn active --calibration-neighbours)")
    ap.add_argument("--delta-gfn2", metavar="DB", help="every strategy fits a delta model on GFN2-xTB's value of the target (psilearn active "
                    "--baseline; the GFN2 labels of the 1000 dimers computed through the label store DB, ~10 s, or read from it)")
    ap.add_argument("--json", help="also save the per-seed curves here (for --load)")
    ap.add_argument("--load", nargs="+", help="no runs: merge the per-seed curves of these --json files (e.g. an active "
                    "strategy from one run and random from another) and print the tables")
    ap.add_argument("--strategies", default="variance,targeted,random", help="comma list of variance, targeted (focus: the "
                    "shifted structures, unlabelled), random (always run, unless --skip-random: the reference)")
    ap.add_argument("--skip-random", action="store_true", help="no random runs (their curves come from another --json "
                    "of the same seeds and splits, merged with --load): random's picks do not depend on the other strategies")
    args = ap.parse_args()
    if not os.path.exists(FILE):
        print(f"skipped: {FILE} not found")
        return 0
    from psilearn.data import load_dataset
    from psilearn.targets import Target

    if args.load:
        return _report(args.load)
    t0 = time.perf_counter()
    target = Target(**TARGETS[args.target])
    with tempfile.TemporaryDirectory() as tmp:
        if args.delta_gfn2:  # the split reads the module's FILE
            globals()["FILE"] = with_gfn2(args.delta_gfn2, tmp, args.target)
        results = {s: {} for s in args.strategies.split(",") if s != "random"} | ({} if args.skip_random else {"random": {}})
        picks: dict = {s: {} for s in results}
        n_ordinary = 800 - args.n_iid  # the pool's compressed dimers follow its ordinary ones (_split)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            if seed == args.first_seed or args.split_per_seed:
                where = os.path.join(tmp, f"split-{seed}")
                pool, iid, shifted = _split(args.n_iid, args.pool_shifted, where, seed if args.split_per_seed else 0)
                tests = {"i.i.d.": load_dataset(iid, target), "shifted (compressed)": load_dataset(shifted, target)}
            for strategy in results:
                t1 = time.perf_counter()
                budget = max(args.budget, args.random_budget or 0) if strategy == "random" else args.budget
                batch = args.random_batch or args.batch if strategy == "random" else args.batch
                focus = pool if args.focus == "pool" else shifted
                results[strategy][seed], picks[strategy][seed] = _run(strategy, seed, pool, tests, args, where, focus, budget, batch)
                print(f"seed {seed} {strategy}: {time.perf_counter() - t1:.0f} s", file=sys.stderr, flush=True)
            if args.json:  # after every seed: a long run killed midway keeps the seeds it finished
                _save(args.json, results, picks, n_ordinary, n_ordinary + args.pool_shifted, args.target)
    further = f" (random: {args.random_budget})" if args.random_budget > args.budget else ""
    further += f", random's batch {args.random_batch}" if args.random_batch else ""
    print(f"water dimer {args.target}, pool {800 - args.n_iid + args.pool_shifted} (frames 0-799 minus the i.i.d. test set"
          + (f", plus {args.pool_shifted} compressed dimers; shifted test set: the other {200 - args.pool_shifted}" if args.pool_shifted else "")
          + f"), {'a split per seed' if args.split_per_seed else 'one split'}, init {args.init}, "
          f"batch {args.batch}, budget {args.budget}{further}, {'small' if args.small else 'default'} SA-GPR settings"
          + (f", delta on GFN2-xTB (--baseline {args.target}_gfn2)" if args.delta_gfn2 else ""))
    for name in tests if not args.skip_random else ():
        _table(results, name, args.target)
        _ratio_table(results, name)
    if args.pool_shifted:
        _picks_table(picks, n_ordinary, n_ordinary + args.pool_shifted, _picks_counts(results))
    if args.ceiling and args.pool_shifted:
        with tempfile.TemporaryDirectory() as tmp:
            _ceiling(args, tmp)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
