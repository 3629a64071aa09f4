"""`psilearn fit | predict | evaluate | learning-curve`."""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

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
    g.add_argument("--pool", choices=["sum", "mean"], default="sum", help="structure targets: sum of atomic contributions (extensive, default) or mean (intensive)")
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
    from psilearn.config import load_config
    from psilearn.cli.qeq_args import check_no_long_range_flags, long_range_options
    from psilearn.models.registry import model_class

    check_no_long_range_flags(args)
    name, config = args.model, load_config(args.config)
    merged = config
    if getattr(args, "long_range", None):
        name, merged = long_range_options(args, config)  # CLI flags over the file's model section
    _, seed = model_class(name).validate_config(config, source=args.config, seed=args.seed)
    return name, merged, seed


def _fit_model(args, target, dataset, progress=True, options=None):
    from psilearn.models.registry import model_class

    name, config, seed = options or _model_options(args)
    model = model_class(name).build(target, config, seed=seed, progress=progress)
    _apply_run_options(args, model)
    return model.fit(dataset)


def _apply_run_options(args, model) -> None:
    """Training-run flags (--device, --resume, --checkpoint-dir) for models that train iteratively."""
    device, resume = getattr(args, "device", None), getattr(args, "resume", False)
    ckpt = getattr(args, "checkpoint_dir", None)
    if not model.iterative:
        if device or resume or ckpt:
            raise ValueError(f"--device/--resume/--checkpoint-dir apply to iterative models (nn), not --model {args.model}")
        return
    if ckpt is None and getattr(args, "output", None):
        ckpt = f"{args.output}.ckpt"
    model.set_run_options(device=device, checkpoint_dir=ckpt, resume=resume)


def _metrics_table(metrics: dict, units: str = "") -> str:
    u = f" [{units}]" if units else ""
    rows = [f"{'component':<12}{'MAE' + u:>16}{'RMSE' + u:>16}{'RMSE % std':>12}"]
    for name, m in [("Cartesian", metrics["cartesian"]), *metrics["channels"].items()]:
        rows.append(f"{name:<12}{m['mae']:>16.5g}{m['rmse']:>16.5g}{m['pct_rmse']:>12.3f}")
    return "\n".join(rows)


def cmd_fit(args) -> int:
    from psilearn.data import load_dataset

    target = _target(args)
    options = _model_options(args)
    ds = load_dataset(args.train, target, symmetrize=args.symmetrize)
    print(f"fitting {target.describe()} on {len(ds)} structures from {args.train}", file=sys.stderr)
    t0 = time.perf_counter()
    model = _fit_model(args, target, ds, options=options)
    model.save(args.output)
    held = model.metadata["heldout_metrics"]
    print(f"fitted in {time.perf_counter() - t0:.1f} s; saved to {args.output}")
    print(f"held-out estimate ({held['method']}):")
    print(_metrics_table(held, target.units))
    return 0


def _write_predictions(frames, model, pred, path, with_std: bool = True) -> None:
    from psilearn.data import write_structures

    key, per = model.target.key, model.target.per
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
    out = []
    for i, a in enumerate(frames):
        b = a.copy()
        b.calc = None
        if per == "structure":
            if key in b.info:
                b.info[f"{key}_reference"] = b.info[key]
            b.info[key] = pred.values[i] if pred.values.shape[1] > 1 else float(pred.values[i, 0])
            if with_std:
                b.info[f"{key}_std"] = pred.std[i] if pred.std.shape[1] > 1 else float(pred.std[i, 0])
        else:
            sl = slice(offsets[i], offsets[i + 1])
            if key in b.arrays:
                b.arrays[f"{key}_reference"] = b.arrays.pop(key)
            squeeze = (lambda v: v[:, 0]) if pred.values.shape[1] == 1 else (lambda v: v)
            b.arrays[key] = squeeze(pred.values[sl])
            if with_std:
                b.arrays[f"{key}_std"] = squeeze(pred.std[sl])
        if hasattr(pred, "extra_info") or hasattr(pred, "extra_arrays"):  # e.g. QEq charges next to a dipole
            from psilearn.cli.qeq_args import write_extras

            write_extras(b, pred, i, slice(offsets[i], offsets[i + 1]))
        out.append(b)
    write_structures(path, out)


def cmd_predict(args) -> int:
    from psilearn.data import read_structures
    from psilearn.models import load

    model = load(args.model)
    frames = read_structures(args.input)
    t0 = time.perf_counter()
    model.progress = True
    pred = model.predict(frames, return_std=False) if args.no_std else model.predict(frames)
    dt = time.perf_counter() - t0
    _write_predictions(frames, model, pred, args.output, with_std=not args.no_std)
    print(f"predicted {model.target.key} for {len(frames)} structures in {dt:.2f} s ({len(frames) / max(dt, 1e-9):.0f} structures/s); wrote {args.output}")
    return 0


def cmd_evaluate(args) -> int:
    from psilearn.data import load_dataset
    from psilearn.models import load
    from psilearn.metrics.regression import calibration, regression_metrics

    model = load(args.model)
    t = model.target
    ds = load_dataset(args.test, t, symmetrize=args.symmetrize)
    pred = model.predict(ds.frames)
    metrics = regression_metrics(t, t.to_irreps(ds.values), pred.irreps)
    metrics["calibration"] = calibration(ds.values, pred.values, pred.std)
    metrics["target"] = t.to_dict()
    metrics["model"] = args.model
    metrics["test"] = args.test
    if args.plot:
        from psilearn.evaluation.plots import parity_plot

        parity_plot(t, t.to_irreps(ds.values), pred.irreps, args.plot, title=f"{args.model} on {args.test}")
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"{t.describe()} on {len(ds)} structures ({metrics['n_samples']} samples) from {args.test}")
        print(_metrics_table(metrics, t.units))
        c = metrics["calibration"]
        print(f"uncertainty: {100 * c['within_1sigma']:.1f}% of errors within 1 sigma (ideal 68.3), "
              f"{100 * c['within_2sigma']:.1f}% within 2 sigma (ideal 95.4)")
        if args.plot:
            print(f"parity plot: {args.plot}")
    return 0


def cmd_learning_curve(args) -> int:
    from psilearn.data import load_dataset
    from psilearn.metrics.regression import block_names, regression_metrics

    target = _target(args)
    options = _model_options(args)
    train = load_dataset(args.train, target, symmetrize=args.symmetrize)
    test = load_dataset(args.test, target, symmetrize=args.symmetrize)
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    if sizes[0] < 2 or sizes[-1] > len(train):
        raise ValueError(f"--sizes must lie between 2 and the number of training structures ({len(train)})")
    order = np.random.default_rng(options[2]).permutation(len(train))
    names = ["Cartesian", *block_names(target)]
    curves = {n: [] for n in names}
    rows = []
    for n in sizes:
        t0 = time.perf_counter()
        model = _fit_model(args, target, train.subset(np.sort(order[:n])), progress=False, options=options)
        fit_s = time.perf_counter() - t0
        pred = model.predict(test.frames, return_std=False)
        m = regression_metrics(target, target.to_irreps(test.values), pred.irreps)
        vals = [m["cartesian"]["pct_rmse"], *[m["channels"][k]["pct_rmse"] for k in names[1:]]]
        for k, v in zip(names, vals):
            curves[k].append(v)
        rows.append((n, vals, fit_s))
        print(f"  n_train={n}: " + ", ".join(f"{k} {v:.2f}%" for k, v in zip(names, vals)) + f" (fit {fit_s:.1f} s)", file=sys.stderr)
    print(f"learning curve: {target.describe()}, test RMSE as % of std on {len(test)} structures from {args.test}")
    print(f"{'n_train':>8}" + "".join(f"{k:>12}" for k in names) + f"{'fit [s]':>10}")
    for n, vals, fit_s in rows:
        print(f"{n:>8}" + "".join(f"{v:>12.3f}" for v in vals) + f"{fit_s:>10.1f}")
    if args.plot:
        from psilearn.evaluation.plots import learning_curve_plot

        learning_curve_plot(sizes, curves, args.plot, title=f"{target.key}: {args.train}")
        print(f"plot: {args.plot}")
    if args.json:
        print(json.dumps({"sizes": sizes, "pct_rmse": curves}))
    return 0


def register(sub) -> None:
    from psilearn.models.registry import describe_kinds

    model_help = f"model kind ({describe_kinds()})"
    p = sub.add_parser("fit", help="fit a model to labelled structures", description="Fit a model to labelled structures and save it.\n\n" + TARGET_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("train", metavar="TRAIN", help="training structures: any ASE-readable file, optionally with @slice (data.xyz@:200), or a DeePMD set directory")
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

    p = sub.add_parser("predict", help="predict with a saved model", description="Predict the model's observable for new structures. Writes KEY and KEY_std (info for structure targets, arrays for atom targets), flattened row-major; an existing KEY in the input is kept as KEY_reference.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("input", metavar="INPUT", help="structures (ASE-readable, @slice allowed)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.xyz")
    p.add_argument("--no-std", action="store_true", help="skip uncertainties (several times faster for large models); KEY_std is not written")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="errors of a saved model on labelled test data", description="MAE, RMSE and RMSE as % of the test set's standard deviation, per irreducible channel and for the Cartesian tensor, plus uncertainty calibration.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("test", metavar="TEST")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="PNG", help="write a parity plot")
    p.add_argument("--symmetrize", action="store_true", help="project test labels onto the declared symmetry")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("learning-curve", help="test error against training-set size", description="Fit on random subsets of TRAIN of the given sizes and report test errors on TEST.\n\n" + TARGET_HELP,
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
