"""`psilearn active`: active learning (parse -> psilearn.active.run_active -> print)."""

from __future__ import annotations

import sys

DESCRIPTION = """Active learning: fit a model on an initial set of POOL, predict the rest of the pool
with its uncertainty, label the batch of largest predictive variance, refit, and repeat until --budget
structures (the initial ones included) are labelled. The batch is picked greedily, each pick conditioned
on the ones before, on the model's own joint posterior where the kind has one (sagpr; nn, nn-multifidelity,
qeq-nn with LLPR), else on a surrogate kernel of invariant SOAP, so near-duplicates never share a batch;
--strategy targeted instead picks what most reduces the variance on --focus structures. With several
levels (--oracle or --method repeated) each pick is a (structure, level) pair chosen per second of
labelling. Labels come from the pool itself
(--oracle KEY, for benchmarks) or from a method (--method gfn2 | XC/BASIS) through the resumable label
database --db, on Dask. The log (selected pool indices, validation estimates, seconds per phase) is
written after every step to MODEL.active/log.json and stored in the model; rerunning the same command
after a kill resumes without losing or repeating a label. See docs/fidelity.md, "Active learning"."""


def register(sub) -> None:
    from psilearn.cli.fit_cmds import SEED_HELP, _add_target_args
    from psilearn.models.registry import describe_kinds

    p = sub.add_parser("active", help="active learning: label the most uncertain structures of a pool, resumably",
                       description=DESCRIPTION)
    p.add_argument("pool_file", metavar="POOL", help="candidate structures (ASE-readable, @slice allowed)")
    _add_target_args(p)
    src = p.add_argument_group("labels (one of)")
    src.add_argument("--oracle", metavar="KEY", action="append", help="read the labels from POOL's KEY (must be the --target "
                     "key; benchmarks). Repeat for several levels, cheapest first, the --target key last (cost-aware "
                     "multi-fidelity; needs --cost for each)")
    src.add_argument("--method", metavar="METHOD", action="append", help="compute them: gfn2, gfn1 or XC/BASIS (as psilearn "
                     "label). Repeat for several levels, cheapest first, the target level last: cost-aware multi-fidelity, "
                     "seconds per label measured from the label database")
    src.add_argument("--cost", metavar="KEY=SECONDS", action="append", default=[], help="several --oracle levels: the "
                     "labelling time of one label of level KEY")
    src.add_argument("--observables", help="--method: the labeler observables (default: the one writing --target, "
                     "e.g. alpha -> polarizability, dipole_moment -> dipole)")
    src.add_argument("--db", metavar="DB", help="--method: the label database (ASE SQLite, resumable; default MODEL.labels.db)")
    src.add_argument("--workers", type=int, default=0, help="--method: local Dask worker processes (default 0: in this process)")
    src.add_argument("--scheduler", help="--method: address of a running Dask scheduler")
    p.add_argument("--init", type=int, required=True, metavar="N0", help="initial set size")
    p.add_argument("--batch", type=int, required=True, metavar="B", help="structures labelled per round (several levels: "
                   "labels worth B target-level labels of seconds per round, any mix of levels)")
    p.add_argument("--budget", type=int, required=True, metavar="N", help="total labelled structures, the initial set included "
                   "(several levels: label seconds worth N target-level labels)")
    p.add_argument("--strategy", choices=["variance", "targeted", "random"], default="variance", help="variance: largest "
                   "predictive variance, diversified (default); targeted: the batch that most reduces the predictive variance "
                   "on the --focus structures (on the model's own joint posterior for sagpr and the LLPR networks nn, nn-multifidelity, "
                   "qeq-nn, else a surrogate kernel; several levels: per second of labelling); random: uniform (the baseline to compare against)")
    p.add_argument("--focus", metavar="FILE", help="--strategy targeted: structures (unlabelled) where the model should "
                   "be good, e.g. the region a study will predict; the pool file itself: the integrated variance over the pool "
                   "(for use on structures like the pool's)")
    p.add_argument("--init-strategy", choices=["fps", "random", "focus"], default="fps", help="the initial set: farthest-point "
                   "sampling on invariant SOAP from a seeded random start (default), uniform, or focus (with --focus: the set "
                   "that best covers the --focus structures under a kernel of invariant SOAP, before any model exists)")
    p.add_argument("--calibration-neighbours", type=int, default=0, metavar="K", help="variance/targeted on the model's joint "
                   "posterior: scale each structure's covariance by the mean leave-one-out calibration (squared residual over "
                   "variance) of its K nearest labelled structures, so that labels go where the model errs more than it says "
                   "(default 0: off; docs/fidelity.md)")
    p.add_argument("--baseline", metavar="KEY", help="delta-learning: every POOL structure (and --test's) carries KEY, a cheap "
                   "label of the --target observable (e.g. GFN2-xTB's for the whole pool); the model learns --target minus KEY "
                   "and selects on the correction's uncertainty; the final model needs KEY to predict (one level only)")
    p.add_argument("--baseline-method", metavar="METHOD", help="delta-learning on a baseline psilearn computes itself: gfn2, "
                   "gfn1 or XC/BASIS, for every structure fitted, predicted or tested, through --baseline-db (as psilearn fit "
                   "--baseline-method; one level only)")
    p.add_argument("--baseline-db", metavar="DB", help="--baseline-method: its label store (default MODEL.baseline.db)")
    p.add_argument("--model", default="sagpr", help=f"model kind with a predictive uncertainty (several levels: the kind of "
                   f"each level of the multifidelity model) ({describe_kinds()})")
    p.add_argument("--config", metavar="YAML", help="options file, as for fit")
    p.add_argument("--seed", type=int, default=None, help=SEED_HELP + "; also draws the initial set and random batches")
    p.add_argument("--test", metavar="TEST", help="labelled structures: the test errors after every round are logged")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="the final model")
    p.add_argument("--state-dir", default=None, metavar="DIR", help="the log's folder (default MODEL.active)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing MODEL and start over a run logged "
                   "with other options (otherwise refused)")
    p.set_defaults(func=cmd_active, reads=("pool_file", "config", "test", "focus"),
                   writes={"output": "model", "db": "database", "state_dir": "directory", "baseline_db": "database"})


def cmd_active(args) -> int:
    from psilearn.active import ActiveOptions, run_active
    from psilearn.cli.fit_cmds import _target
    from psilearn.config import load_config
    from psilearn.models.registry import model_class

    target = _target(args)
    config = load_config(args.config)
    _, seed = model_class(args.model).validate_config(config, source=args.config, seed=args.seed)
    db = args.db
    if args.method is not None and db is None:
        db = f"{args.output.rstrip('/')}.labels.db"
        from psilearn.data.outputs import check_output

        check_output(db, [args.pool_file, args.config, args.test], kind="database", name="--db")
    opts = ActiveOptions(pool=args.pool_file, target=target.to_dict(), init=args.init, batch=args.batch, budget=args.budget,
                         kind=args.model, config=config, seed=seed, strategy=args.strategy,
                         init_strategy=args.init_strategy, oracle=_one_or_list(args.oracle), method=_one_or_list(args.method),
                         observables=args.observables, db=db, workers=args.workers, scheduler=args.scheduler,
                         test=args.test, focus=args.focus, symmetrize=args.symmetrize, costs=_costs(args.cost),
                         calibration_neighbours=args.calibration_neighbours, baseline=args.baseline,
                         baseline_method=args.baseline_method, baseline_db=_baseline_db(args))
    opts.check()

    def report(line: str) -> None:
        print(line, file=sys.stderr)

    model, log = run_active(opts, output=args.output, state_dir=args.state_dir, overwrite=args.overwrite, report=report,
                            progress=True)
    _print_table(log)
    print(f"saved {args.output} ({log['rounds'][-1].get('n_labelled', '?')} labelled structures); "
          f"log {args.state_dir or args.output.rstrip('/') + '.active'}/log.json")
    return 0


def _baseline_db(args) -> str | None:
    """--baseline-method's label store: --baseline-db, or MODEL.baseline.db next to the model (as psilearn fit)."""
    if args.baseline_method is None:
        return args.baseline_db
    from psilearn.cli.model_options import default_baseline_db

    return args.baseline_db or default_baseline_db(args.output)


def _one_or_list(values: list[str] | None) -> str | list[str] | None:
    """One --oracle/--method: the value (single-level run); several: the list of levels."""
    if not values:
        return None
    return values[0] if len(values) == 1 else list(values)


def _costs(items: list[str]) -> dict[str, float]:
    """--cost KEY=SECONDS (repeated) -> {KEY: seconds}; ConfigError (one line) for a malformed one."""
    from psilearn.errors import ConfigError

    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.rpartition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = None
        if not sep or not key or seconds is None:
            raise ConfigError(f"--cost {item!r}: expected KEY=SECONDS, e.g. --cost mu_gfn2=0.002")
        out[key] = seconds
    return out


def _print_table(log: dict) -> None:
    print(f"{'round':>5} {'selected':>8} {'labelled':>8} {'heldout RMSE':>13} {'test RMSE':>11} {'seconds':>8}")
    for r in log["rounds"]:
        v = r.get("validation", {})
        cell = [f"{v[k]['rmse']:.4g}" if v.get(k) else "-" for k in ("heldout", "test")]
        print(f"{r['round']:>5} {len(r['selected']):>8} {r.get('n_labelled', 0):>8} {cell[0]:>13} {cell[1]:>11} "
              f"{sum(r['seconds'].values()):>8.1f}")
