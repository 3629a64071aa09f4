"""`psilearn fit | predict | evaluate | learning-curve`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from psilearn.cli.fit_options import add_fit_options, check_tune, pooled, train_specs, tuned_fit, warn_if_unrepresentative
from psilearn.cli.model_options import add_baseline_method_args, add_fidelity_args, default_baseline_db, fidelity_summary, model_options

TARGET_HELP = """Declaring the observable: --target names the label (atoms.info for per-structure,
atoms.arrays for per-atom values); --tensor gives its Cartesian symmetry as an index formula:
  (none) scalar   i vector (dipole)   ij general rank 2 (NMR shielding, Born charge)
  ij=ji symmetric (polarizability)   ijk=jik=ikj symmetric rank 3 (hyperpolarizability)   ... up to rank 4.
Tensors are read flattened row-major (a 3x3 tensor is 9 numbers), as in extxyz."""

VAL_HELP = ("hold out a random fraction F of the structures (drawn with the seed) and report the model's errors on them "
            "after fitting (also stored in the model file). nn kinds: sets nn_train.val_fraction (their validation split, "
            "used for early stopping and uncertainty calibration; overrides the options file). Other kinds: the model is "
            "fitted on the other 1-F only and evaluated on the held-out structures, as `psilearn evaluate` would")

SEED_HELP = ("random seed (folds, subsets, initial weights). Given, it wins over the options file's seed "
             "(model.seed, kernel kinds), which is used otherwise; default 0. Same seed + data = same model")


def _add_target_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("target (what is learned)")
    g.add_argument("--target", required=True, metavar="KEY", help="label name in the input file")
    g.add_argument("--tensor", default="", metavar="FORMULA", help="Cartesian index formula, e.g. i, ij=ji, ijk=jik=ikj (default: scalar)")
    g.add_argument("--per", choices=["structure", "atom", "pair"], default="structure", help="one value per structure (default), per "
                   "atom, or per atom pair (KEY_pairs lists the pairs; scalar or rank 2; docs/pairs.md)")
    g.add_argument("--pool", choices=["sum", "mean"], default="sum", help="structure targets: sum of atomic contributions (extensive, "
        "default) or mean (intensive)")
    g.add_argument("--pseudo", action="store_true", help="the observable is axial (pseudo-tensor): odd under inversion relative to a polar tensor")
    g.add_argument("--traceless", action="store_true", help="the tensor is traceless (e.g. an electric field gradient)")
    g.add_argument("--units", default="", help="units of the label, recorded in the model (values are never converted)")
    g.add_argument("--symmetrize", action="store_true", help="project labels onto the declared symmetry instead of refusing asymmetric ones")


def _target(args):
    from psilearn.targets import Target

    return Target(args.target, per=args.per, tensor=args.tensor, parity=-1 if args.pseudo else 1,
                  traceless=args.traceless, pool=args.pool, units=args.units)


def _run_options(args, kind: str) -> dict:
    """--device, --resume, --checkpoint-dir (default MODEL.ckpt for iterative kinds)."""
    from psilearn.models.factory import is_iterative

    opts = {"device": getattr(args, "device", None), "checkpoint_dir": getattr(args, "checkpoint_dir", None),
            "resume": getattr(args, "resume", False)}
    if opts["checkpoint_dir"] is None and getattr(args, "output", None) and is_iterative(kind):
        opts["checkpoint_dir"] = f"{args.output}.ckpt"
    if opts["checkpoint_dir"] and is_iterative(kind):
        from psilearn.data.outputs import check_checkpoint_dir

        check_checkpoint_dir(opts["checkpoint_dir"], [*train_specs(args), getattr(args, "config", None)], opts["resume"],
                             bool(getattr(args, "overwrite", False)))
    return opts


def cmd_fit(args) -> int:
    from psilearn.cli.main import secondary_rank
    from psilearn.cli.report import ORTHONORMAL_NOTE, heldout_table
    from psilearn.data import load_dataset
    from psilearn.models.factory import fit_model

    if getattr(args, "density", False) or args.model == "density":
        from psilearn.cli.density_fit import fit_density

        return fit_density(args)
    if getattr(args, "hamiltonian", False) or args.model in ("hamiltonian", "hamiltonian-sagpr"):
        from psilearn.cli.hamiltonian_cmds import fit_hamiltonian

        return fit_hamiltonian(args, _run_options(args, "hamiltonian" if args.model in ("nn", "hamiltonian") else "hamiltonian-sagpr"))
    target = _target(args)
    kind, config, seed = model_options(args)
    check_tune(args, kind)
    if getattr(kind, "kind", None) == "per-element":
        kind.check_target(target)  # before any data is read
    delta = getattr(kind, "kind", None) == "delta"
    method = kind.resolve_method(target) if delta and kind.method_name else None
    trains = train_specs(args)
    for spec in trains:
        warn_if_unrepresentative("fit", spec)
    ds = load_dataset(pooled(trains), target, symmetrize=args.symmetrize, label_mask=args.label_mask)
    if delta:
        summary = kind.check_baseline(ds)
        if summary is not None:
            print(f"baseline {method.label} ({method.units}) from {summary.report()}; label database {kind.method_db}",
                  file=sys.stderr)
    print(f"fitting {target.describe()} on {len(ds)} structures from {', '.join(trains)}", file=sys.stderr)
    if summary_line := fidelity_summary(kind):
        print(summary_line, file=sys.stderr)
    if method is not None:
        print(f"delta-learning: {kind.inner_kind} learns {target.key} - {method.label} from {method.name}; predict "
              f"labels its input with {method.name} through {kind.method_db}", file=sys.stderr)
    elif delta:
        print(f"delta-learning: {kind.inner_kind} learns {target.key} - {kind.baseline_key}; predict needs "
              f"{kind.baseline_key} in its input", file=sys.stderr)
    t0 = time.perf_counter()
    validation = None
    from psilearn.evaluation.validation import fit_with_validation, reads_nn_train

    if getattr(args, "tune", None) is not None:
        model = tuned_fit(args, kind, target, ds, config, seed)
    elif args.val_fraction is not None:
        model, validation = fit_with_validation(kind, target, ds, config, val_fraction=args.val_fraction, seed=seed,
                                                progress=True, run_options=_run_options(args, kind))
    else:
        model = fit_model(kind, target, ds, config, seed=seed, progress=True, run_options=_run_options(args, kind))
    if secondary_rank():  # torchrun/srun: rank 0 writes and reports the model, which every process holds
        return 0
    model.save(args.output, overwrite=args.overwrite)
    held = model.metadata["heldout_metrics"]
    print(f"fitted in {time.perf_counter() - t0:.1f} s; saved to {args.output}")
    _loss_curves(model, args.output)
    if validation is None or not reads_nn_train(kind):  # nn kinds: their held-out set is the validation set
        print(f"held-out estimate ({held['method']}):")
        print(heldout_table(held, target.units))
        if target.rank == 2 and not target.is_spectrum:
            print(ORTHONORMAL_NOTE)
    if validation is not None:
        _print_validation(validation, target)
    return 0


def _print_validation(v: dict, target) -> None:
    from psilearn.cli.report import ORTHONORMAL_NOTE, metrics_table, per_element_table

    physical = v.get("physical")
    print(f"validation ({v['method']}):")
    print(metrics_table(v, target.units, physical=physical and physical["channels"]))
    if physical:
        print(physical["convention"])
    elif target.rank == 2 and not target.is_spectrum:
        print(ORTHONORMAL_NOTE)
    if v.get("per_element"):
        print(per_element_table(v["per_element"], target.units))
    c = v.get("calibration")
    if c:
        print(f"validation uncertainty: {100 * c['within_1sigma']:.1f}% of errors within 1 sigma (ideal 68.3), "
              f"{100 * c['within_2sigma']:.1f}% within 2 sigma (ideal 95.4)")


def _loss_curves(model, output) -> None:
    """Iteratively trained kinds (nn, qeq-nn): MODEL.loss.csv and MODEL.loss.png beside the model."""
    from psilearn.evaluation.loss_curves import write_loss_curves

    written = write_loss_curves(model.metadata, output, title=f"{model.kind} {model.target.key}: {output}")
    if written:
        print(f"loss curves: {written[0]}, {written[1]}")


def cmd_predict(args) -> int:
    from psilearn.data import read_structures, write_structures
    from psilearn.errors import ConfigError
    from psilearn.models import load

    model = load(args.model)
    method = getattr(model, "baseline_method", None)
    if method:
        model.baseline_db = args.baseline_db or default_baseline_db(args.model)
        model.baseline_workers = args.baseline_workers
    elif args.baseline_db:
        raise ConfigError(f"--baseline-db: {args.model} is not a --baseline-method model")
    options = {}
    if getattr(args, "fidelity", None) is not None:
        from psilearn.models.registry import MULTI_FIDELITY_KINDS

        if model.kind not in MULTI_FIDELITY_KINDS:
            raise ConfigError(f"--fidelity: {args.model} is a {model.kind} model, not a multi-fidelity one")
        options["fidelity"] = args.fidelity
    frames = read_structures(args.input)
    t0 = time.perf_counter()
    model.progress = True
    pred = model.predict(frames, return_std=not args.no_std, **options)
    dt = time.perf_counter() - t0
    if method:
        print(f"baseline {method.label} from {model.last_baseline_summary.report()}; label database {model.baseline_db}",
              file=sys.stderr)
    from psilearn.cli.hamiltonian_cmds import prediction_frames

    write_structures(args.output, prediction_frames(args, model, frames, pred))
    print(f"predicted {model.target.key} for {len(frames)} structures in {dt:.2f} s ({len(frames) / max(dt, 1e-9):.0f} structures/s); wrote {args.output}")
    return 0


def cmd_evaluate(args) -> int:
    from psilearn.cli.report import print_evaluation
    from psilearn.evaluation import evaluate
    from psilearn.evaluation.evaluate import json_safe

    model = args.model
    if args.baseline_db:
        from psilearn.errors import ConfigError
        from psilearn.models import load

        model = load(args.model)
        if not getattr(model, "baseline_method", None):
            raise ConfigError(f"--baseline-db: {args.model} is not a --baseline-method model")
        model.baseline_db = args.baseline_db
    metrics = evaluate(model, args.test, symmetrize=args.symmetrize, plot=args.plot)
    if args.json:
        print(json.dumps(json_safe(metrics), allow_nan=False))
        return 0
    print_evaluation(metrics)
    return 0


def _print_curve_row(row: dict) -> None:
    rep = f" repeat {row['repeat'] + 1}" if row.get("repeat") else ""
    print(f"  n_train={row['n_train']}{rep}: " + ", ".join(f"{k} {v:.2f}%" for k, v in row["pct_rmse"].items())
          + f" (fit {row['fit_seconds']:.1f} s)", file=sys.stderr)


def _print_curve(lc: dict, target, out) -> None:
    from psilearn.metrics.channels import channel_titles

    names = list(lc["pct_rmse"])
    titles = {"Cartesian": "Cartesian", **channel_titles(target)}
    n_rep = lc["repeats"]
    spread = f", mean +- std over {n_rep} random subsets per size" if n_rep > 1 else ""
    print(f"learning curve: {target.describe()}, test RMSE as % of std on {lc['n_test']} structures from {lc['test']}{spread}",
          file=out)
    width = 18 if n_rep > 1 else 17
    print(f"{'n_train':>8}" + "".join(f"{titles[k]:>{width}}" for k in names) + f"{'fit [s]':>10}", file=out)
    for i, n in enumerate(lc["sizes"]):
        cells = [f"{lc['pct_rmse'][k][i]:.3f}" + (f" +- {lc['pct_rmse_std'][k][i]:.3f}" if n_rep > 1 else "") for k in names]
        print(f"{n:>8}" + "".join(f"{c:>{width}}" for c in cells) + f"{lc['fit_seconds'][i]:>10.1f}", file=out)


def cmd_learning_curve(args) -> int:
    from psilearn.data import load_dataset
    from psilearn.evaluation import learning_curve
    from psilearn.evaluation.learning_curve import check_sizes

    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    if args.density:
        return _density_curve(args)
    target = _target(args)
    kind, config, seed = model_options(args)
    warn_if_unrepresentative("learning-curve", args.train)
    train = load_dataset(args.train, target, symmetrize=args.symmetrize)
    test = load_dataset(args.test, target, symmetrize=args.symmetrize)
    try:
        sizes = check_sizes(args.sizes.split(","), len(train))
    except ValueError as exc:
        raise ValueError(f"--sizes: {exc}") from None
    lc = learning_curve(train, test, target, sizes, model=kind, config=config, seed=seed, progress=_print_curve_row,
                        repeats=args.repeats)
    _print_curve(lc, target, sys.stderr if args.json else sys.stdout)
    if args.plot:
        from psilearn.evaluation.plots import learning_curve_plot
        from psilearn.metrics.channels import channel_titles

        reps = f", {lc['repeats']} subsets per size (mean +- std)" if lc["repeats"] > 1 else ""
        title = f"{target.key}, {lc['model']}: trained on {args.train}\ntested on {args.test} ({lc['n_test']} structures){reps}"
        titles = {"Cartesian": "Cartesian", **channel_titles(target)}
        spread = {titles[k]: v for k, v in lc["pct_rmse_std"].items()} if lc["repeats"] > 1 else None
        learning_curve_plot(lc["sizes"], {titles[k]: v for k, v in lc["pct_rmse"].items()}, args.plot, title=title, spread=spread)
        print(f"plot: {args.plot}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(lc))
    return 0


def _density_curve(args) -> int:
    """``learning-curve --density``: the density model kind, its options from --config ('soap:', 'density:')."""
    from psilearn.cli.density_fit import density_curve_kind, density_data, print_density_curve
    from psilearn.config import load_config
    from psilearn.evaluation import learning_curve
    from psilearn.evaluation.learning_curve import check_sizes
    from psilearn.models.registry import model_class

    config = load_config(args.config)
    _, seed = model_class("density").validate_config(config, source=args.config, seed=args.seed)
    train, test, target = density_data(args)
    kind = density_curve_kind(args, train)
    try:
        sizes = check_sizes(args.sizes.split(","), len(train))
    except ValueError as exc:
        raise ValueError(f"--sizes: {exc}") from None
    row = lambda r: print(f"  n_train={r['n_train']}: L2 {r['metrics']['l2_percent']:.4f}% (fit {r['fit_seconds']:.1f} s)", file=sys.stderr)  # noqa: E731
    lc = learning_curve(train, test, target, sizes, model=kind, config=config, seed=seed, progress=row, repeats=args.repeats)
    print_density_curve(lc, sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(lc))
    return 0


def register(sub) -> None:
    from psilearn.models.registry import describe_kinds

    model_help = f"model kind ({describe_kinds()})"
    _register_fit(sub, model_help)
    _register_predict_evaluate(sub)
    _register_learning_curve(sub, model_help)


def _register_fit(sub, model_help: str) -> None:
    from psilearn.cli.density_fit import add_density_flag
    from psilearn.cli.hamiltonian_cmds import add_hamiltonian_flags

    p = sub.add_parser("fit", help="fit a model to labelled structures", description="Fit a model to labelled structures and save it.\n\n" + TARGET_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("train", metavar="TRAIN", nargs="+", help="training structures: any ASE-readable file, optionally with @slice "
        "(data.xyz@:200), or a DeePMD set directory; several are pooled (e.g. one file per level of theory with --fidelity-key)")
    _add_target_args(p)
    p.add_argument("--model", default="sagpr", help=model_help)
    add_baseline_method_args(p, fit=True)
    add_fidelity_args(p, fit=True)
    p.add_argument("--config", metavar="YAML", help="options file: 'soap:' and 'model:' sections (kernel kinds), "
                                                     "'nn:' and 'nn_train:' (nn; qeq-nn also 'model:'); checked before data is read")
    p.add_argument("--seed", type=int, default=None, help=SEED_HELP)
    p.add_argument("--val-fraction", type=float, default=None, metavar="F", help=VAL_HELP)
    add_density_flag(p)
    add_hamiltonian_flags(p)
    add_fit_options(p)
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model directory to write")
    p.add_argument("--device", default=None, help="nn: 'auto' (CUDA when available, default), 'cpu', 'cuda', 'cuda:1'")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR", help="nn: training checkpoints (default MODEL.ckpt)")
    p.add_argument("--resume", action="store_true", help="nn: continue an interrupted training run from its checkpoints")
    from psilearn.cli.qeq_args import add_long_range_args

    p.add_argument("--overwrite", action="store_true", help="replace an existing model at MODEL (refused otherwise)")
    add_long_range_args(p)
    p.set_defaults(func=cmd_fit, reads=("train", "config"), writes={"output": "model", "baseline_db": "database"})


def _register_predict_evaluate(sub) -> None:
    p = sub.add_parser("predict", help="predict with a saved model", description="Predict the model's observable for new structures. Writes "
        "KEY and KEY_std (info for structure targets, arrays for atom targets), flattened row-major; an existing KEY in the input is kept "
        "as KEY_reference. Delta models (fit --baseline B) need B in the input and also write KEY_baseline and KEY_correction; "
        "models fitted with --baseline-method label the input with that method themselves (through the label database "
        "MODEL.baseline.db or --baseline-db, so structures labelled before are not labelled again).")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("input", metavar="INPUT", help="structures (ASE-readable, @slice allowed)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.xyz")
    p.add_argument("--no-std", action="store_true", help="skip uncertainties (several times faster for large models); KEY_std is not written")
    add_fidelity_args(p, fit=False)
    add_baseline_method_args(p, fit=False)
    from psilearn.cli.hamiltonian_cmds import add_predict_flags

    add_predict_flags(p)
    p.set_defaults(func=cmd_predict, reads=("model", "input"), writes={"output": "file", "baseline_db": "database"})

    p = sub.add_parser("evaluate", help="errors of a saved model on labelled test data", description="MAE, RMSE and RMSE as % of the test "
        "set's standard deviation, per irreducible channel and for the Cartesian tensor, plus uncertainty calibration. Rank-2 "
        "tensors: the channels in the data's units (isotropic = trace/3, antisymmetric and anisotropic parts as Frobenius norms "
        "of their errors; the JSON keeps the orthonormal-basis numbers under 'channels' and adds 'physical'). Per-atom "
        "targets: also per element ('per_element'). Spectrum models: spectral metrics (RMSE, integrated error, peak-position "
        "error, similarities) instead of one row per grid point.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("test", metavar="TEST")
    p.add_argument("--json", action="store_true", help="print one JSON object (per-element, physical-channel and "
                   "calibration-curve entries included)")
    p.add_argument("--plot", metavar="PNG", help="write a parity plot (spectrum models: a grid of example test spectra with the std band; "
                   "per-atom targets: coloured by element; rank-2 tensors: "
                   "isotropic, antisymmetric and anisotropic parts) and, next to it as PNG_calibration.png (parity.png -> "
                   "parity_calibration.png), a calibration plot: the observed fraction of test errors inside the Gaussian "
                   "interval +-z*std of the predicted uncertainty against the expected coverage (10%% ... 99%%), with the "
                   "ideal diagonal; below it the uncertainties are too small. Not written for models without uncertainties")
    p.add_argument("--symmetrize", action="store_true", help="project test labels onto the declared symmetry")
    p.add_argument("--baseline-db", default=None, metavar="DB", help="--baseline-method models: the label database of the "
                   "baseline (default: the one recorded at fit)")
    p.set_defaults(func=cmd_evaluate, reads=("model", "test"), writes={"plot": "file", "baseline_db": "database"})


def _register_learning_curve(sub, model_help: str) -> None:
    from psilearn.cli.density_fit import add_density_flag
    from psilearn.cli.qeq_args import add_long_range_args

    p = sub.add_parser("learning-curve", help="test error against training-set size", description="Fit on random subsets of TRAIN of the "
        "given sizes and report test errors on TEST.\n\n" + TARGET_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("train", metavar="TRAIN")
    p.add_argument("test", metavar="TEST")
    _add_target_args(p)
    p.add_argument("--sizes", default="50,100,200,400", help="comma-separated training sizes (default 50,100,200,400)")
    p.add_argument("--model", default="sagpr", help=model_help)
    p.add_argument("--config", metavar="YAML", help="options file, as for fit")
    p.add_argument("--seed", type=int, default=None, help=SEED_HELP)
    p.add_argument("--repeats", type=int, default=1, metavar="N", help="N random training subsets per size (default 1): the "
                   "table, JSON and plot give the mean and the standard deviation over them (error bars)")
    p.add_argument("--plot", metavar="PNG", help="write the curve as a PNG (log-log, ticks at the sizes, the test set in the title)")
    p.add_argument("--json", action="store_true", help="print the whole curve as one JSON object on stdout (the table goes to "
                   "stderr): sizes, pct_rmse (mean), pct_rmse_std, pct_rmse_all, rmse, rmse_std, fit_seconds, rows with "
                   "the full test metrics of every fit")
    add_baseline_method_args(p, fit=True)
    add_long_range_args(p)
    add_density_flag(p)
    p.set_defaults(func=cmd_learning_curve, reads=("train", "test", "config"), writes={"plot": "file", "baseline_db": "database"})
