"""`psilearn fit --density`: the density model kind on a file's density labels (called by fit_cmds)."""

from __future__ import annotations

import sys


def add_density_flag(p) -> None:
    p.add_argument("--density", action="store_true", help="learn electron densities (labels of psilearn label --observables "
                   "density; --target density_coefficients) with the density model kind: options in the 'soap:' and "
                   "'density:' sections (docs/density.md)")

def fit_density(args) -> int:
    """``fit --density``: the density model on a file's density labels (its aux basis, metric, shells)."""
    from psilearn.cli.fit_options import pooled, train_specs
    from psilearn.config import load_config
    from psilearn.data import density_target, load_density_dataset
    from psilearn.errors import ConfigError
    from psilearn.models.factory import fit_model
    from psilearn.models.registry import model_class

    other = [f for f, on in (("--baseline", args.baseline), ("--baseline-method", args.baseline_method),
                             ("--long-range", getattr(args, "long_range", None)), ("--val-fraction", args.val_fraction),
                             ("--tensor", args.tensor), ("--fidelity-key", getattr(args, "fidelity_key", None)),
                             ("--tune", getattr(args, "tune", None) is not None), ("--label-mask", getattr(args, "label_mask", None))) if on]
    if args.model not in ("sagpr", "density") or other:
        raise ConfigError(f"--density fits the density model kind; it does not take {', '.join(other) or '--model ' + args.model}")
    config = load_config(args.config)
    _, seed = model_class("density").validate_config(config, source=args.config, seed=args.seed)
    trains = train_specs(args)
    source = pooled(trains)
    ds = load_density_dataset(source)
    if ds.target.key != args.target:
        ds = load_density_dataset(source, density_target(ds.frames, args.target))
    print(f"fitting {ds.target.describe()} on {len(ds)} structures from {', '.join(trains)}", file=sys.stderr)
    model = fit_model("density", ds.target, ds, config, seed=seed, progress=True)
    model.save(args.output, overwrite=args.overwrite)
    m = model.metadata
    print(f"fitted in {m['fit_seconds']:.1f} s ({m['n_weights']} weights, lambda {m['regularization']:.3g} x mean "
          f"diagonal per structure); saved to {args.output}")
    held = m["heldout_metrics"]
    if "density_error_percent" in held:
        print(f"held-out density error in the {ds.target.metric} metric ({held['method']}): {held['density_error_percent']:.4f}%")
    print(f"training density error in the {ds.target.metric} metric: {m['training_error_percent']:.4f}%")
    return 0
