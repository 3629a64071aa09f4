"""`psilearn fit --density` and `learning-curve --density`: the density model kind on a file's density labels, and the
reports of `evaluate` / `learning-curve` for density models (called by fit_cmds and report)."""

from __future__ import annotations

import sys


def add_density_flag(p) -> None:
    p.add_argument("--density", action="store_true", help="learn electron densities (labels of psilearn label --observables "
                   "density; --target density_coefficients) with the density model kind: options in the 'soap:' and "
                   "'density:' sections (docs/density.md)")

def fit_density(args) -> int:
    """``fit --density``: the density model on a file's density labels (its aux basis, metric, shells)."""
    from psilearn.cli.fit_options import labelled_kind_data
    from psilearn.data import density_target, load_density_dataset
    from psilearn.models.factory import fit_model

    ds, trains, config, seed = labelled_kind_data(args, "density", "--density", load_density_dataset, density_target)
    kind = delta_kind_of(args, "density", ds)
    print(f"fitting {ds.target.describe()} on {len(ds)} structures from {', '.join(trains)}", file=sys.stderr)
    model = fit_model(kind, ds.target, ds, config, seed=seed, progress=True)
    model.save(args.output, overwrite=args.overwrite)
    m = model.metadata
    print(f"fitted in {m['fit_seconds']:.1f} s ({m['n_weights']} weights, {m['solver']} solve, lambda {m['regularization']:.3g} x mean "
          f"diagonal per structure); saved to {args.output}")
    held = m["heldout_metrics"]
    if "density_error_percent" in held:
        print(f"held-out density error in the {ds.target.metric} metric ({held['method']}): {held['density_error_percent']:.4f}%")
    print(f"training density error in the {ds.target.metric} metric: {m['training_error_percent']:.4f}%")
    return 0


def delta_kind_of(args, kind: str, ds):
    """``kind``, or with ``--baseline KEY`` / ``--baseline-method XC/BASIS`` its delta kind: the baseline label is
    checked on ``ds`` first (one line naming file, frame and key); a method is checked against ``ds``'s basis (one
    line, before any labelling), then labels ``ds`` into its store (MODEL.baseline.db or --baseline-db)."""
    if not args.baseline and not args.baseline_method:
        return kind
    from psilearn.models.fidelity.delta import delta_kind

    if args.baseline:
        delta = delta_kind(args.baseline, kind)
        delta.check_baseline(ds)
        print(f"delta-learning: the {kind} model learns {ds.target.key} - {args.baseline}; predict needs {args.baseline} in its input",
              file=sys.stderr)
        return delta
    from psilearn.cli.model_options import default_baseline_db
    from psilearn.config import load_config
    from psilearn.models.fidelity.delta import delta_method_kind
    from psilearn.models.fidelity.delta_fields import check_field_options
    from psilearn.models.registry import model_class

    db = args.baseline_db or default_baseline_db(args.output)
    delta = delta_method_kind(args.baseline_method, kind, db=db, label=args.baseline_label, workers=args.baseline_workers)
    method = delta.resolve_method(ds.target)  # another AO basis: one line, before any labelling
    check_field_options(kind, model_class(kind).validate_config(load_config(args.config), source=args.config)[0])
    summary = delta.check_baseline(ds)
    print(f"baseline {method.label} from {summary.report()}; label database {db}", file=sys.stderr)
    print(f"delta-learning: the {kind} model learns {ds.target.key} - {method.label} from {method.name}; predict labels its input "
          f"with {method.name} through {db}", file=sys.stderr)
    return delta


def density_curve_kind(args, train):
    """``learning-curve --density``: 'density', or with --baseline KEY / --baseline-method METHOD (and --baseline-db) its delta kind."""
    from psilearn.cli.fit_options import check_field_baseline_flags

    check_field_baseline_flags(args, "density")
    return delta_kind_of(args, "density", train)


def density_data(args):
    """(train, test, target) of ``learning-curve --density``: the target from TRAIN's own density labels
    (aux basis, metric, shells); TEST must use the same."""
    from psilearn.data import density_target, load_density_dataset

    train = load_density_dataset(args.train)
    if train.target.key != args.target:
        train = load_density_dataset(args.train, density_target(train.frames, args.target))
    return train, load_density_dataset(args.test, train.target), train.target


def print_density_evaluation(m: dict, target) -> None:
    """The ``evaluate`` report of a density model (:func:`psilearn.evaluation.density.evaluate_density`)."""
    print(f"{target.describe()} on {m['n_structures']} structures from {m['test']}")
    print(f"  density L2 error vs the fitted densities: {m['l2_percent']:.4f}% (sqrt(sum int d^2 / sum int rho_fit^2), exact aux integrals)")
    print(f"  error in the {m['metric']} metric (the fit's): {m['metric_error_percent']:.4f}%")
    label = m.get("dipole_mae_vs_label_debye")
    print(f"  dipole MAE vs the fitted densities' dipoles: {m['dipole_mae_debye']:.4f} D"
          + (f"; vs the dipole_moment labels: {label:.4f} D" if label is not None else ""))
    print(f"  max |N_pred - N|: {m['max_electron_error']:.1e} e")


def print_density_curve(lc: dict, out) -> None:
    """The ``learning-curve --density`` table (means over repeats)."""
    reps = f", mean over {lc['repeats']} random subsets per size" if lc["repeats"] > 1 else ""
    print(f"learning curve: density model on {lc['n_test']} test structures from {lc['test']}{reps}", file=out)
    print(f"{'n_train':>8}{'L2 % vs fit':>14}{'metric err %':>14}{'dipole MAE D':>14}{'fit [s]':>10}", file=out)
    for i, n in enumerate(lc["sizes"]):
        m = {k: v[i] for k, v in lc["metrics"].items()}
        print(f"{n:>8}{m['l2_percent']:>14.4f}{m['metric_error_percent']:>14.4f}{m['dipole_mae_debye']:>14.4f}{lc['fit_seconds'][i]:>10.1f}", file=out)
