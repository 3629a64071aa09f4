"""`psilearn fit | predict | evaluate | learning-curve`."""

from __future__ import annotations

import argparse
import json
import sys
import time

TARGET_HELP = """Declaring the observable: --target names the label (atoms.info for per-structure,
atoms.arrays for per-atom values); --tensor gives its Cartesian symmetry as an index formula:
  (none) scalar   i vector (dipole)   ij general rank 2 (NMR shielding, Born charge)
  ij=ji symmetric (polarizability)   ijk=jik=ikj symmetric rank 3 (hyperpolarizability)   ... up to rank 4.
Tensors are read flattened row-major (a 3x3 tensor is 9 numbers), as in extxyz."""

SEED_HELP = ("random seed (folds, subsets, initial weights). Given, it wins over the options file's seed "
             "(model.seed, kernel kinds), which is used otherwise; default 0. Same seed + data = same model")


def _add_target_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("target (what is learned)")
    g.add_argument("--target", required=True, metavar="KEY", help="label name in the input file")
    g.add_argument("--tensor", default="", metavar="FORMULA", help="Cartesian index formula, e.g. i, ij=ji, ijk=jik=ikj (default: scalar)")
    g.add_argument("--per", choices=["structure", "atom"], default="structure", help="one value per structure (default) or per atom")
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


def _model_options(args) -> tuple[str, dict, int]:
    """(model kind, options, seed) from --model/--long-range/--config/--seed; the options file is
    validated against the kind here, before any data is read."""
    from psilearn.cli.qeq_args import check_no_long_range_flags, long_range_options
    from psilearn.config import load_config
    from psilearn.models.registry import model_class

    check_no_long_range_flags(args)
    name, config = args.model, load_config(args.config)
    merged = config
    if getattr(args, "long_range", None):
        name, merged = long_range_options(args, config)  # CLI flags over the file's model section
    _, seed = model_class(name).validate_config(config, source=args.config, seed=args.seed)
    return name, merged, seed


def _run_options(args, kind: str) -> dict:
    """--device, --resume, --checkpoint-dir (default MODEL.ckpt for iterative kinds)."""
    from psilearn.models.factory import is_iterative

    opts = {"device": getattr(args, "device", None), "checkpoint_dir": getattr(args, "checkpoint_dir", None),
            "resume": getattr(args, "resume", False)}
    if opts["checkpoint_dir"] is None and getattr(args, "output", None) and is_iterative(kind):
        opts["checkpoint_dir"] = f"{args.output}.ckpt"
    return opts


def _metrics_table(metrics: dict, units: str = "", ratio: dict | None = None) -> str:
    """MAE, RMSE and RMSE % of std per channel; with ``ratio`` a column RMSE / composition baseline."""
    u = f" [{units}]" if units else ""
    rows = [f"{'component':<12}{'MAE' + u:>16}{'RMSE' + u:>16}{'RMSE % std':>12}" + (f"{'RMSE/base':>11}" if ratio else "")]
    for name, m in [("Cartesian", metrics["cartesian"]), *metrics["channels"].items()]:
        row = f"{name:<12}{m['mae']:>16.5g}{m['rmse']:>16.5g}{m['pct_rmse']:>12.3f}"
        if ratio:
            r = ratio.get(name)
            row += f"{r:>11.4f}" if r is not None else f"{'-':>11}"
        rows.append(row)
    return "\n".join(rows)


def cmd_fit(args) -> int:
    from psilearn.data import load_dataset
    from psilearn.models.factory import fit_model

    target = _target(args)
    kind, config, seed = _model_options(args)
    ds = load_dataset(args.train, target, symmetrize=args.symmetrize)
    print(f"fitting {target.describe()} on {len(ds)} structures from {args.train}", file=sys.stderr)
    t0 = time.perf_counter()
    model = fit_model(kind, target, ds, config, seed=seed, progress=True, run_options=_run_options(args, kind))
    model.save(args.output)
    held = model.metadata["heldout_metrics"]
    print(f"fitted in {time.perf_counter() - t0:.1f} s; saved to {args.output}")
    _loss_curves(model, args.output)
    print(f"held-out estimate ({held['method']}):")
    print(_metrics_table(held, target.units))
    return 0


def _loss_curves(model, output) -> None:
    """Iteratively trained kinds (nn, qeq-nn): MODEL.loss.csv and MODEL.loss.png beside the model."""
    from psilearn.evaluation.loss_curves import write_loss_curves

    written = write_loss_curves(model.metadata, output, title=f"{model.kind} {model.target.key}: {output}")
    if written:
        print(f"loss curves: {written[0]}, {written[1]}")


def cmd_predict(args) -> int:
    from psilearn.data import read_structures, write_structures
    from psilearn.data.prediction_io import predictions_to_atoms
    from psilearn.models import load

    model = load(args.model)
    frames = read_structures(args.input)
    t0 = time.perf_counter()
    model.progress = True
    pred = model.predict(frames, return_std=not args.no_std)
    dt = time.perf_counter() - t0
    write_structures(args.output, predictions_to_atoms(frames, pred, model.target, with_std=not args.no_std))
    print(f"predicted {model.target.key} for {len(frames)} structures in {dt:.2f} s ({len(frames) / max(dt, 1e-9):.0f} structures/s); wrote {args.output}")
    return 0


def _print_evaluation(m: dict) -> None:
    from psilearn.targets import Target

    t = Target.from_dict(m["target"])
    print(f"{t.describe()} on {m['n_structures']} structures ({m['n_samples']} samples) from {m['test']}")
    if "spectral" in m:  # one channel per grid point: the spectral metrics say more
        from psilearn.cli.spectra_cmds import print_spectral

        print(_metrics_table({"cartesian": m["cartesian"], "channels": {}}, t.units))
        print_spectral(m["spectral"], t.units, t.grid_units)
    else:
        base = m.get("baseline") or {}
        print(_metrics_table(m, t.units, base.get("rmse_ratio")))
        if base.get("rmse_ratio"):
            print("RMSE/base: the model's RMSE over that of the per-element composition baseline fitted on the training data (< 1 is better)")
        elif base.get("note"):
            print(f"composition baseline: {base['note']}")
    c = m["calibration"]
    print(f"uncertainty: {100 * c['within_1sigma']:.1f}% of errors within 1 sigma (ideal 68.3), "
          f"{100 * c['within_2sigma']:.1f}% within 2 sigma (ideal 95.4)")


def cmd_evaluate(args) -> int:
    from psilearn.evaluation import evaluate

    metrics = evaluate(args.model, args.test, symmetrize=args.symmetrize, plot=args.plot)
    if args.json:
        print(json.dumps(metrics))
        return 0
    _print_evaluation(metrics)
    if args.plot:
        print(f"parity plot: {args.plot}")
    return 0


def _print_curve_row(row: dict) -> None:
    print(f"  n_train={row['n_train']}: " + ", ".join(f"{k} {v:.2f}%" for k, v in row["pct_rmse"].items())
          + f" (fit {row['fit_seconds']:.1f} s)", file=sys.stderr)


def cmd_learning_curve(args) -> int:
    from psilearn.data import load_dataset
    from psilearn.evaluation import learning_curve
    from psilearn.evaluation.learning_curve import check_sizes

    target = _target(args)
    kind, config, seed = _model_options(args)
    train = load_dataset(args.train, target, symmetrize=args.symmetrize)
    test = load_dataset(args.test, target, symmetrize=args.symmetrize)
    try:
        sizes = check_sizes(args.sizes.split(","), len(train))
    except ValueError as exc:
        raise ValueError(f"--sizes: {exc}") from None
    lc = learning_curve(train, test, target, sizes, model=kind, config=config, seed=seed, progress=_print_curve_row)
    names = list(lc["pct_rmse"])
    print(f"learning curve: {target.describe()}, test RMSE as % of std on {lc['n_test']} structures from {args.test}")
    print(f"{'n_train':>8}" + "".join(f"{k:>12}" for k in names) + f"{'fit [s]':>10}")
    for row in lc["rows"]:
        print(f"{row['n_train']:>8}" + "".join(f"{row['pct_rmse'][k]:>12.3f}" for k in names) + f"{row['fit_seconds']:>10.1f}")
    if args.plot:
        from psilearn.evaluation.plots import learning_curve_plot

        learning_curve_plot(lc["sizes"], lc["pct_rmse"], args.plot, title=f"{target.key}: {args.train}")
        print(f"plot: {args.plot}")
    if args.json:
        print(json.dumps({"sizes": lc["sizes"], "pct_rmse": lc["pct_rmse"]}))
    return 0


def register(sub) -> None:
    from psilearn.models.registry import describe_kinds

    model_help = f"model kind ({describe_kinds()})"
    p = sub.add_parser("fit", help="fit a model to labelled structures", description="Fit a model to labelled structures and save it.\n\n" + TARGET_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("train", metavar="TRAIN", help="training structures: any ASE-readable file, optionally with @slice (data.xyz@:200), or a "
        "DeePMD set directory")
    _add_target_args(p)
    p.add_argument("--model", default="sagpr", help=model_help)
    p.add_argument("--config", metavar="YAML", help="options file: 'soap:' and 'model:' sections (kernel kinds), "
                                                     "'nn:' and 'nn_train:' (nn; qeq-nn also 'model:'); checked before data is read")
    p.add_argument("--seed", type=int, default=None, help=SEED_HELP)
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model directory to write")
    p.add_argument("--device", default=None, help="nn: 'auto' (CUDA when available, default), 'cpu', 'cuda', 'cuda:1'")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR", help="nn: training checkpoints (default MODEL.ckpt)")
    p.add_argument("--resume", action="store_true", help="nn: continue an interrupted training run from its checkpoints")
    from psilearn.cli.qeq_args import add_long_range_args

    add_long_range_args(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("predict", help="predict with a saved model", description="Predict the model's observable for new structures. Writes "
        "KEY and KEY_std (info for structure targets, arrays for atom targets), flattened row-major; an existing KEY in the input is kept "
        "as KEY_reference.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("input", metavar="INPUT", help="structures (ASE-readable, @slice allowed)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.xyz")
    p.add_argument("--no-std", action="store_true", help="skip uncertainties (several times faster for large models); KEY_std is not written")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="errors of a saved model on labelled test data", description="MAE, RMSE and RMSE as % of the test "
        "set's standard deviation, per irreducible channel and for the Cartesian tensor, plus uncertainty calibration.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("test", metavar="TEST")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="PNG", help="write a parity plot")
    p.add_argument("--symmetrize", action="store_true", help="project test labels onto the declared symmetry")
    p.set_defaults(func=cmd_evaluate)

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
    p.add_argument("--plot", metavar="PNG", help="write the curve as a PNG")
    p.add_argument("--json", action="store_true", help="also print the curve as JSON")
    add_long_range_args(p)
    p.set_defaults(func=cmd_learning_curve)
