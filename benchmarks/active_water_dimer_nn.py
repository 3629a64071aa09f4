"""Active learning with the nn kind on water-dimer polarizabilities: selection on the network's own LLPR joint
posterior (``posterior_factors``) vs on the surrogate kernel, and random selection.

The split, the test sets and the table are those of benchmarks/active_water_dimer.py (pool: frames 0-799 minus a
200-structure i.i.d. test set; shifted test set: the compressed dimers 800-999). Every round refits the nn kind
with a fixed number of epochs (no wall-time budget, so the runs do not depend on the machine's load). Strategies:

- ``targeted`` / ``variance``: `psilearn active --strategy targeted|variance` on the model posterior (LLPR);
- ``targeted-surrogate`` / ``variance-surrogate``: the same with ``posterior_factors`` switched off, i.e. the
  surrogate kernel on invariant descriptors that the kinds without a joint posterior use;
- ``random`` (the reference).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/active_water_dimer_nn.py --seeds 2 --budget 125 --save s01.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/active_water_dimer_nn.py --seeds 3 --first-seed 2 --save s234.json
    .venv/bin/python benchmarks/active_water_dimer_nn.py --merge s01.json s234.json   # one table over all seeds
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from active_water_dimer import FILE, _split, _table

NET = dict(cutoff=5.0, channels=16, layers=2, correlation=2, lmax=2, n_basis=8, radial_hidden=32)


def _run(strategy: str, seed: int, pool: str, tests: dict, args, tmp: str, focus: str) -> dict[int, dict]:
    from psilearn.active import ActiveOptions, run_active
    from psilearn.evaluation import evaluate
    from psilearn.models.nn import NNModel

    curve: dict[int, dict] = {}
    labelled = [0]

    def on_fit(r, model):  # keyed by the labels so far (the nn's n_train_structures excludes its validation split)
        labelled[0] += len(r["selected"]) - len(r["failed"])
        curve[labelled[0]] = {name: evaluate(model, ds)["cartesian"]["rmse"] for name, ds in tests.items()}

    base, surrogate = strategy.split("-")[0], strategy.endswith("-surrogate")
    config = {"nn": NET, "nn_train": {"epochs": args.epochs, "patience": 40, "threads": 1}}
    opts = ActiveOptions(pool=pool, target={"key": "alpha", "tensor": "ij=ji"}, kind="nn", init=args.init, batch=args.batch,
                         budget=args.budget, config=config, seed=seed, strategy=base, init_strategy="random", oracle="alpha",
                         focus=focus if base == "targeted" else None)
    saved = NNModel.posterior_factors
    if surrogate:
        NNModel.posterior_factors = lambda self, frames: None
    try:
        _, log = run_active(opts, state_dir=os.path.join(tmp, f"{strategy}-{seed}"), on_fit=on_fit)
    finally:
        NNModel.posterior_factors = saved
    acq = sorted({r.get("acquisition") for r in log["rounds"] if r.get("acquisition")})
    print(f"seed {seed} {strategy}: acquisition {acq}", file=sys.stderr)
    return curve


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--init", type=int, default=25)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--budget", type=int, default=125)
    ap.add_argument("--epochs", type=int, default=100, help="epochs of every nn fit (early stopping: patience 40)")
    ap.add_argument("--n-iid", type=int, default=200)
    ap.add_argument("--strategies", default="targeted,targeted-surrogate,random", help="comma list of targeted, "
                    "targeted-surrogate, variance, variance-surrogate, random (always run)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--save", metavar="JSON", help="write the curves (strategy -> seed -> labels -> test set -> RMSE)")
    ap.add_argument("--merge", nargs="+", metavar="JSON", help="print one table from saved curves (no runs)")
    args = ap.parse_args()
    if args.merge:
        results: dict = {}
        for path in args.merge:
            with open(path) as fh:
                for s, seeds in json.load(fh).items():
                    results.setdefault(s, {}).update({int(k): {int(n): v for n, v in c.items()} for k, c in seeds.items()})
        results = {s: results[s] for s in results if s != "random"} | {"random": results["random"]}
        print(f"water dimer alpha, nn kind, merged from {', '.join(args.merge)}")
        for name in next(iter(next(iter(results["random"].values())).values())):
            _table(results, name)
        return 0
    if not os.path.exists(FILE):
        print(f"skipped: {FILE} not found")
        return 0
    from psilearn.data import load_dataset
    from psilearn.targets import Target

    with tempfile.TemporaryDirectory() as tmp:
        pool, iid, shifted = _split(args.n_iid, 0, tmp)
        target = Target("alpha", tensor="ij=ji")
        tests = {"i.i.d.": load_dataset(iid, target), "shifted (compressed)": load_dataset(shifted, target)}
        results = {s: {} for s in args.strategies.split(",") if s != "random"} | {"random": {}}
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for strategy in results:
                t1 = time.perf_counter()
                results[strategy][seed] = _run(strategy, seed, pool, tests, args, tmp, shifted)
                print(f"seed {seed} {strategy}: {time.perf_counter() - t1:.0f} s", file=sys.stderr, flush=True)
                if args.save:  # after every run: a partial campaign can be merged
                    with open(args.save, "w") as fh:
                        json.dump(results, fh)
    print(f"water dimer alpha, nn kind ({NET}, {args.epochs} epochs per fit), pool {800 - args.n_iid}, init {args.init}, "
          f"batch {args.batch}, budget {args.budget}, {args.seeds} seeds; targeted's focus: the shifted structures (unlabelled)")
    for name in tests:
        _table(results, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
