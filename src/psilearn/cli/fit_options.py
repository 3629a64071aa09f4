"""Options of `psilearn fit` beyond the basic fit: `--tune [SECONDS]` (the study is psilearn.tune) and
`--label-mask KEY` (per-atom labels on only some atoms)."""

from __future__ import annotations

import argparse
import sys

TUNE_HELP = ("choose the lambda-SOAP and kernel settings (cutoff, radial/angular sizes, density width, radial scaling, "
             "zeta, sparse points per element) by k-fold cross-validation with Optuna's TPE sampler within SECONDS of "
             "wall time (default 300); options stated in --config stay fixed, regularisation is chosen by each fit's "
             "marginal likelihood; the chosen values, every trial and the best CV error are stored in the model and "
             "printed. Kernel kinds: sagpr, qeq (--long-range qeq); see docs/tuning.md")


MASK_HELP = ("per-atom targets labelled on only some atoms: KEY is a per-atom array (nonzero: labelled), e.g. has_tensor; "
             "the other atoms' values are ignored (NaN allowed), every atom is still described. The model records KEY "
             "and psilearn evaluate applies it to the test file. sagpr only")


def train_specs(args) -> list[str]:
    """The TRAIN specs of ``fit`` (one or several; ``learning-curve`` has one)."""
    return args.train if isinstance(args.train, list) else [args.train]


def pooled(specs: list[str]):
    """One spec as is (its name stays in messages), several read and pooled in order (every frame
    keeps its own file and index in ``info['source']``)."""
    if len(specs) == 1:
        return specs[0]
    from psilearn.data import read_structures

    return [a for spec in specs for a in read_structures(spec)]


SCHEDULER_HELP = ("sagpr: fit in batches of structures (streamed, normal equations accumulated) on a Dask cluster: 'local' "
                  "(a LocalCluster, one worker process per core) or the address of a running scheduler (tcp://host:8786); "
                  "batch size model.stream_batch (default soap.batch_size). See docs/scaling.md")


PER_ELEMENT_HELP = ("per-atom targets: a separate --model (sagpr or nn) for each centre element, fitted on that element's "
                    "atoms only, with its own options: the options file's sections are shared and per_element: {H: {soap: "
                    "{cutoff: 3.0}}, ...} overrides them for the elements named; --tune tunes each element on its own "
                    "(docs/tuning.md)")


def add_fit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tune", nargs="?", type=float, const=300.0, default=None, metavar="SECONDS", help=TUNE_HELP)
    p.add_argument("--label-mask", default=None, metavar="KEY", help=MASK_HELP)
    p.add_argument("--per-element", action="store_true", help=PER_ELEMENT_HELP)
    p.add_argument("--scheduler", default=None, metavar="ADDR|local", help=SCHEDULER_HELP)


def with_scheduler(args, config: dict) -> dict:
    """The options with ``model.scheduler`` from ``--scheduler`` (plain sagpr fits only; ConfigError otherwise)."""
    addr = getattr(args, "scheduler", None)
    if not addr:
        return config
    from psilearn.errors import ConfigError

    others = [f for f, on in (("--baseline", getattr(args, "baseline", None)), ("--baseline-method", getattr(args, "baseline_method", None)),
                              ("--long-range", getattr(args, "long_range", None)), ("--fidelity-key", getattr(args, "fidelity_key", None)),
                              ("--tune", getattr(args, "tune", None) is not None)) if on]
    if args.model != "sagpr" or others:
        raise ConfigError(f"--scheduler distributes a streamed sagpr fit (docs/scaling.md); not with {', '.join(others) or '--model ' + args.model}")
    return {**config, "model": {**(config.get("model") or {}), "scheduler": addr}}


def check_tune(args, kind, options: dict | None = None) -> None:
    """ConfigError, before any data is read, for --tune with a kind (or, given its validated ``options``,
    a setting such as a spectrum loss) that cannot be tuned, or with --val-fraction."""
    if getattr(args, "tune", None) is None:
        return
    from psilearn.errors import ConfigError
    from psilearn.tune import tunable_error

    why = tunable_error(kind, options)
    if why:
        raise ConfigError(why)
    if getattr(args, "val_fraction", None) is not None:
        raise ConfigError("--tune cannot be combined with --val-fraction (the study's k-fold CV error is stored and printed; "
                          "use psilearn evaluate on held-out data)")
    if not args.tune > 0:
        raise ConfigError(f"--tune: the budget must be a positive number of seconds, got {args.tune:g}")
    from psilearn.cli.main import distributed_launch

    if distributed_launch():  # each process would stop its trials on its own clock, and the collectives would not match
        raise ConfigError("--tune runs in one process: tune without torchrun/srun, then fit with the chosen options on several")


def tuned_fit(args, kind, target, ds, config, seed):
    """The tuned model; one line per trial on stderr (silenced by psilearn -q), then the chosen settings."""
    from psilearn.tune import describe_trial, describe_tuning, tune_model

    what = f"one {kind.inner_kind} per element" if getattr(kind, "kind", None) == "per-element" else kind
    print(f"tuning {what} for {args.tune:g} s (Optuna TPE, seed {seed})", file=sys.stderr)
    def progress(row: dict) -> None:
        print(describe_trial(row), file=sys.stderr, flush=True)

    if getattr(kind, "kind", None) == "per-element":
        from psilearn.tune.per_element import tune_per_element

        model = tune_per_element(kind, target, ds, config, seconds=args.tune, seed=seed, progress=progress)
        for sym, rec in model.metadata["per_element"].items():
            print(f"{sym}: {describe_tuning(rec['tuning'])}")
        return model
    model = tune_model(kind, target, ds, config, seconds=args.tune, seed=seed, progress=progress)
    print(describe_tuning(model.metadata["tuning"]))
    return model


def labelled_kind_data(args, kind: str, flag: str, load, target_of, note: str = "", models: tuple[str, ...] = ("sagpr",)):
    """(dataset, TRAIN specs, options, seed) for ``fit FLAG`` (``--density``, ``--hamiltonian``): a kind
    whose Target comes from the file's own labels (``--baseline KEY`` and ``--baseline-method XC/BASIS`` are
    allowed: Δ-learning, checked by the caller). ConfigError, before any data is read, for another
    ``--model`` or a flag of other kinds (``note`` is appended); ``load(source[, target])`` reads the
    pooled TRAIN, ``target_of(frames, key)`` gives the file's target under ``--target``; ``models``: the
    ``--model`` values that select ``kind``."""
    from psilearn.config import load_config
    from psilearn.errors import ConfigError
    from psilearn.models.registry import model_class

    check_field_baseline_flags(args, kind)
    flags = (("--long-range", getattr(args, "long_range", None)), ("--val-fraction", args.val_fraction),
             ("--tensor", args.tensor), ("--fidelity-key", getattr(args, "fidelity_key", None)),
             ("--density", getattr(args, "density", False)), ("--hamiltonian", getattr(args, "hamiltonian", False)),
             ("--tune", getattr(args, "tune", None) is not None), ("--label-mask", getattr(args, "label_mask", None)),
             ("--per-element", getattr(args, "per_element", False)))
    other = [f for f, on in flags if on and f != flag]
    if args.model not in (*models, kind) or other:
        raise ConfigError(f"{flag} fits the {kind} model kind; it does not take {', '.join(other) or '--model ' + args.model}{note}")
    config = load_config(args.config)
    _, seed = model_class(kind).validate_config(config, source=args.config, seed=args.seed)
    trains = train_specs(args)
    source = pooled(trains)
    ds = load(source)
    if ds.target.key != args.target:
        ds = load(source, target_of(ds.frames, args.target))
    return ds, trains, config, seed


def check_field_baseline_flags(args, kind: str) -> None:
    """ConfigError, before any data is read, for Δ flags a density or Hamiltonian fit cannot take: both
    --baseline and --baseline-method, --baseline-db/--baseline-label without a method, an xTB method."""
    from psilearn.errors import ConfigError
    from psilearn.models.fidelity.baseline_method import check_field_method

    method = getattr(args, "baseline_method", None)
    if getattr(args, "baseline", None) and method:
        raise ConfigError("give either --baseline KEY (a label in TRAIN) or --baseline-method METHOD (computed by psilearn), not both")
    if not method and (getattr(args, "baseline_db", None) or getattr(args, "baseline_label", None)):
        raise ConfigError("--baseline-db and --baseline-label go with --baseline-method")
    if method:
        check_field_method(method, kind, getattr(args, "baseline_label", None))
        if not getattr(args, "baseline_db", None) and not getattr(args, "output", None):
            raise ConfigError("--baseline-method here needs --baseline-db DB: the label store of the baseline labels")


def warn_if_unrepresentative(command: str, spec: str) -> None:
    """One line on stderr when TRAIN's @slice of an ordered file is a poor sample of it."""
    from psilearn.data.representative import slice_warning

    msg = slice_warning(spec)
    if msg:
        print(f"psilearn {command}: warning: {msg}", file=sys.stderr)
