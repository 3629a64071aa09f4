"""`psilearn fit-spectrum | predict-spectrum | compare | pca`.

Spectra are functions on a recorded grid (DOS, XANES, ...). The library does the work (grids and
spectrum data in :mod:`psilearn.data.spectra`, fitting in :mod:`psilearn.models.factory`, comparison
and PCA in :mod:`psilearn.observe.spectrum_sets`); these commands parse, call and print. Input
problems raise ValueError / FileNotFoundError, which `psilearn` prints as one line (exit code 2).
Vibrational spectra from trajectories: :mod:`psilearn.cli.vib_cmds`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

SPECTRUM_HELP = """A spectrum target is a function on a grid: per structure (--per structure, atomic
contributions pooled by --pool), per atom (--per atom: local spectra such as a projected DOS;
predictions can be summed to the structure), or absorber-centred (--absorber Fe: only the Fe
environment describes the structure, e.g. Fe K-edge XANES). The grid comes from the data
(info[KEY_grid], the labeler's KEY_emin/_emax/_npts, or the spectrum files), or --grid; spectra on
another grid are interpolated with a warning (--on-grid-mismatch refuse to stop instead).
Losses: l2 (plain), shift (optimise one rigid shift per training structure: for an ill-defined
energy reference), align (move each spectrum so a stated feature, --align-feature, lines up)."""


def print_spectral(m: dict, units: str = "", grid_units: str = "") -> None:
    """One line per spectral metric: name, value, units, and which way is better."""
    from psilearn.spectral.metrics import METRIC_INFO

    for k, v in m.items():
        name, unit, better = METRIC_INFO.get(k, (k, "", ""))
        unit = {"spectrum units": units, "grid units": grid_units}.get(unit, unit)
        value = f"{v:>14.5g}" if v is not None and math.isfinite(v) else f"{'n/a':>14}"  # e.g. no peaks to compare
        print(f"  {name:<26}{value}  {('[' + unit + ']') if unit else ''}{'  (' + better + ' is better)' if better else ''}")


# ---- fit-spectrum / predict-spectrum ---------------------------------------------------------------
def _spectrum_config(args) -> dict:
    """The YAML options with the model flags (--loss, --max-shift, --align-feature, --pca, --elements) on top."""
    from psilearn.config import load_config

    config = load_config(args.config)
    from psilearn.models.registry import model_class

    model_class("spectrum").validate_config(config, source=args.config)  # before any data is read
    model_opts = config.setdefault("model", {})
    for opt in ("loss", "max_shift", "align_feature", "pca"):
        val = getattr(args, opt)
        if val is not None:
            model_opts[opt] = val
    if args.elements:
        from ase.data import atomic_numbers

        try:
            extra = [atomic_numbers[e.strip()] for e in args.elements.split(",") if e.strip()]
        except KeyError as exc:
            raise ValueError(f"--elements: {exc.args[0]!r} is not an element symbol") from None
        model_opts["species"] = sorted(set(model_opts.get("species") or []) | set(extra))
    return config


def _training_frames(args) -> list:
    from psilearn.data.spectra import dos_from_orbitals, parse_grid, read_structures_or_xanes

    frames = read_structures_or_xanes(args.train, args.split, args.target)
    if args.from_orbitals is not None:
        if not args.grid:
            raise ValueError("--from-orbitals needs --grid (energies in the units of the orbital energies, Hartree from psilearn label)")
        frames = dos_from_orbitals(frames, parse_grid(args.grid), args.from_orbitals, key=args.target, reference=args.dos_reference)
    return frames


def cmd_fit_spectrum(args) -> int:
    from psilearn.cli.fit_options import check_tune, tuned_fit
    from psilearn.data.spectra import load_spectrum_dataset, spectrum_target
    from psilearn.models.factory import fit_model
    from psilearn.models.registry import model_class

    config = _spectrum_config(args)
    options, seed = model_class("spectrum").validate_config(config, seed=args.seed)  # the one seed rule
    loss = options["model"].loss
    _check_baseline_flags(args)
    if (args.baseline or args.baseline_method) and (loss != "l2" or args.tune is not None):  # before any data is read
        from psilearn.errors import ConfigError
        from psilearn.models.fidelity.delta_spectrum import SHIFT_LOSSES_REFUSED

        if args.tune is not None:
            raise ConfigError("--tune tunes a plain spectrum model, not a delta model: tune without --baseline, then fit the "
                              "correction with the chosen options in --config")
        raise ConfigError(f"--baseline with --loss {loss}: {SHIFT_LOSSES_REFUSED}")
    check_tune(args, "spectrum", options)
    frames = _training_frames(args)
    target = spectrum_target(frames, args.target, per=args.per, grid=args.grid or None, grid_units=args.grid_units,
                             units=args.units, pool=args.pool, absorber=args.absorber or "")
    ds = load_spectrum_dataset(frames, target, on_mismatch=args.on_grid_mismatch)
    ds.name = args.train
    kind = _delta_spectrum_kind(args, ds)
    print(f"fitting {target.describe()} on {len(ds)} structures from {args.train}", file=sys.stderr)
    t0 = time.perf_counter()
    if args.tune is not None:
        model = tuned_fit(args, "spectrum", target, ds, config, seed)
    else:
        model = fit_model(kind, target, ds, config, seed=args.seed, progress=True)
    model.save(args.output, overwrite=args.overwrite)
    held = model.metadata["heldout_metrics"]
    loss = getattr(model, "inner", model).config.loss  # a delta model's is its inner spectrum model's
    print(f"fitted in {time.perf_counter() - t0:.1f} s ({model.metadata['n_columns']} output columns, loss {loss}); saved to {args.output}")
    if "train_shifts" in model.metadata:
        s = model.metadata["train_shifts"]
        print(f"training shifts: rms {s['rms']:.4g}, max |shift| {s['max_abs']:.4g} {s['units']}")
    print(f"held-out estimate ({held['method']}):")
    print_spectral(held["spectral"], target.units, target.grid_units)
    return 0


def _check_baseline_flags(args) -> None:
    from psilearn.errors import ConfigError

    if args.baseline and args.baseline_method:
        raise ConfigError("give either --baseline KEY (a spectrum in TRAIN) or --baseline-method METHOD (computed by psilearn), not both")
    if args.baseline_db and not args.baseline_method:
        raise ConfigError("--baseline-db goes with --baseline-method")


def _delta_spectrum_kind(args, ds):
    """'spectrum', or with --baseline KEY / --baseline-method METHOD the delta kind around it (the baseline
    checked on ``ds`` first; a method's refusals come before any labelling, then ``ds`` is labelled into its store)."""
    if args.baseline_method:
        return _method_spectrum_kind(args, ds)
    if not args.baseline:
        return "spectrum"
    from psilearn.models.fidelity.delta import delta_kind

    kind = delta_kind(args.baseline, "spectrum")
    kind.check_baseline(ds)
    print(f"delta-learning: the spectrum model learns {ds.target.key} - {args.baseline} (loss l2); predict-spectrum needs "
          f"{args.baseline} in its input", file=sys.stderr)
    return kind


def _method_spectrum_kind(args, ds):
    """The delta kind whose DOS baseline the labeler computes (--baseline-method), broadened as TRAIN records it."""
    from psilearn.cli.model_options import default_baseline_db
    from psilearn.models.fidelity.delta import delta_method_kind
    from psilearn.models.fidelity.delta_spectrum import recorded_broadening

    sigma, reference = recorded_broadening(ds.frames, ds.target.key)  # KEY_sigma: the labeler's dos, --from-orbitals
    db = args.baseline_db or default_baseline_db(args.output)
    kind = delta_method_kind(args.baseline_method, "spectrum", db=db, workers=args.baseline_workers, sigma=sigma, reference=reference)
    method = kind.resolve_method(ds.target)  # one-line refusals, before any labelling
    summary = kind.check_baseline(ds)
    what = "Löwdin-projected DOS per atom" if ds.target.per == "atom" else "DOS"
    print(f"baseline: {what} of the {method.name} orbital energies (sigma {sigma:g} {ds.target.grid_units}, reference {reference}) from "
          f"{summary.report()}; label database {db}", file=sys.stderr)
    return kind


def cmd_predict_spectrum(args) -> int:
    from psilearn.data import write_structures
    from psilearn.data.prediction_io import predictions_to_atoms
    from psilearn.data.spectra import read_structures_or_xanes, write_spectrum_table
    from psilearn.models import load

    model = load(args.model)
    t = model.target
    if not getattr(t, "is_spectrum", False):
        raise ValueError(f"{args.model}: not a spectrum model (target {t.describe()})")
    if getattr(model, "baseline_method", None):
        from psilearn.cli.model_options import default_baseline_db

        model.baseline_db, model.baseline_workers = args.baseline_db or default_baseline_db(args.model), args.baseline_workers
    elif args.baseline_db:
        raise ValueError(f"--baseline-db: {args.model} is not a --baseline-method model")
    frames = read_structures_or_xanes(args.input, args.split, t.key)
    model.progress = True
    if args.output.lower().endswith((".csv", ".txt", ".dat")):
        values = model.predict_structures(frames)
        names = [str(a.info.get("name", f"structure_{i}")) for i, a in enumerate(frames)]
        write_spectrum_table(args.output, np.asarray(t.grid), values, names, grid_name=f"grid_{t.grid_units or 'units'}",
                             comments={"model": args.model, "target": t.describe()})
    else:
        write_structures(args.output, predictions_to_atoms(frames, model.predict(frames), t))
    if getattr(model, "baseline_method", None):
        print(f"baseline from {model.last_baseline_summary.report()}; label database {model.baseline_db}", file=sys.stderr)
    print(f"predicted {t.key} for {len(frames)} structures; wrote {args.output}")
    return 0


# ---- compare / pca ------------------------------------------------------------------------------
def cmd_compare(args) -> int:
    from psilearn.observe.spectrum_sets import compare_sources, comparison_summary, write_comparison_csv
    from psilearn.spectral.fingerprint import FingerprintSpec

    res = compare_sources(args.a, args.b, key=args.key, key_b=args.key_b, grid=args.grid or None, split=args.split,
                          on_mismatch=args.on_grid_mismatch, n_peaks=args.peaks,
                          fingerprint=FingerprintSpec(n_bins=args.bins, n_levels=args.levels), max_shift=args.max_shift)
    if args.json:
        print(json.dumps(comparison_summary(res)))
    else:
        g = res["grid"]
        print(f"{args.a} vs {args.b}: {res['n_spectra']} spectrum pair(s) on {len(g)} points ({g[0]:g}..{g[-1]:g})")
        print("mean over pairs:" if res["n_spectra"] > 1 else "metrics:")
        print_spectral(res["mean"])
    if args.csv:
        write_comparison_csv(args.csv, res)
        print(f"per-pair metrics: {args.csv}")
    if args.plot:
        from psilearn.observe.plots import plot_comparison

        plot_comparison(res["grid"], res["spectra_a"], res["spectra_b"], args.plot, names=(args.a, args.b),
                        labels=res["names_a"], scores=res["per_spectrum"]["pearson"])
        print(f"plot (worst pairs by Pearson r first): {args.plot}")
    return 0


def _number(flag: str, text: str, what: str, integer: bool = False) -> int | float:
    """A positive count (or, unless ``integer``, a fraction in (0, 1)) from a flag's text; ValueError naming the flag."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or (value >= 1 or integer) and value != int(value):
        raise ValueError(f"{flag}: expected {what}, got {text!r}")
    return value if value < 1 else int(value)


def cmd_pca(args) -> int:
    from psilearn.observe.spectrum_sets import spectra_pca, write_pca_csv

    n_comp = _number("--n-components", args.n_components, "a number of components or a variance fraction in (0, 1)")
    clusters = args.clusters if args.clusters == "auto" else _number("--clusters", args.clusters, "a number of clusters or auto", integer=True)
    res = spectra_pca(args.spectra, key=args.key, grid=args.grid or None, split=args.split, on_mismatch=args.on_grid_mismatch,
                      n_components=n_comp, clusters=clusters,
                      cluster_dims=args.cluster_dims, normalize=args.normalize, seed=args.seed)
    pca, labels = res["pca"], res["labels"]
    cum = np.cumsum(pca.explained)
    print(f"{len(res['spectra'])} spectra on {len(res['grid'])} points; {len(pca.components)} components explain {100 * cum[-1]:.2f}% of the variance")
    for i, (e, c) in enumerate(zip(pca.explained[:10], cum[:10])):
        print(f"  PC{i + 1}: {100 * e:7.3f}%  (cumulative {100 * c:7.3f}%)")
    print(f"{res['n_clusters']} cluster(s) by k-means on the first {res['cluster_dims']} PC scores (silhouette {res['silhouette']:.3f}): "
          f"sizes {np.bincount(labels).tolist()}")
    if args.csv:
        write_pca_csv(args.csv, res)
        print(f"scores and clusters: {args.csv}")
    if args.output:
        from psilearn.observe.plots import plot_pca

        plot_pca(res["grid"], pca, labels, args.output)
        print(f"plot: {args.output}")
    return 0


# ---- registration --------------------------------------------------------------------------------
def _grid_args(p, mismatch_help: str = "spectra on another grid: interpolate (warning, default) or refuse") -> None:
    p.add_argument("--grid", metavar="GRID", help="grid START:STOP:NUM (write --grid=-5:5:251 when START is negative), a comma list, or a "
        "file (default: recorded in the data)")
    p.add_argument("--on-grid-mismatch", choices=["interpolate", "refuse"], default="interpolate", help=mismatch_help)
    p.add_argument("--split", help="for XANES-style folders (xyz_SPLIT/ + xanes_SPLIT/): only this split, e.g. train")


def _register_fit(sub) -> None:
    p = sub.add_parser("fit-spectrum", help="fit a model of spectra (DOS, XANES) on a grid",
                       description="Fit a kernel model of a spectrum on invariant SOAP and save it (model kind 'spectrum').\n\n" + SPECTRUM_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("train", metavar="TRAIN", help="structures with spectra: extxyz/ASE file (@slice allowed), DeePMD system, or an XANES "
        "folder of xyz + spectrum files")
    g = p.add_argument_group("target")
    g.add_argument("--target", required=True, metavar="KEY", help="label name (info for structures, arrays for atoms); XANES folders store it under KEY")
    g.add_argument("--per", choices=["structure", "atom"], default="structure", help="one spectrum per structure (default) or per atom (local spectra)")
    g.add_argument("--pool", choices=["sum", "mean"], help="how atomic contributions combine (default sum; mean with --absorber)")
    g.add_argument("--absorber", metavar="ELEMENT", help="the spectrum belongs to this element's atom (e.g. Fe)")
    g.add_argument("--units", default="", help="units of the spectrum values (recorded)")
    g.add_argument("--grid-units", default="", help="units of the grid, e.g. eV (recorded)")
    _grid_args(p)
    g.add_argument("--from-orbitals", type=float, metavar="SIGMA",
                   help="build the DOS KEY from the labels' orbital_energies (psilearn label --observables orbitals), Gaussians of "
                        "width SIGMA on --grid (same units as the orbital energies)")
    g.add_argument("--dos-reference", choices=["none", "homo"], default="none",
                   help="with --from-orbitals: absolute energies (default) or relative to each structure's HOMO")
    m = p.add_argument_group("model")
    m.add_argument("--loss", choices=["l2", "shift", "align"], help="l2 (default), shift (per-structure shift optimised), align (on --align-feature)")
    m.add_argument("--max-shift", type=float, help="largest shift for --loss shift, grid units (default 10%% of the grid span)")
    m.add_argument("--align-feature", choices=["edge", "max", "onset"], help="feature lined up by --loss align (default edge: half maximum)")
    m.add_argument("--baseline", metavar="KEY", help="delta-learning: KEY is a cheaper spectrum of the same structures on the "
                   "same grid; the model learns TARGET - KEY (loss l2 only) and predict-spectrum needs KEY in its input "
                   "(writes the sum, KEY_baseline and KEY_correction; docs/fidelity.md)")
    m.add_argument("--baseline-method", metavar="METHOD", help="delta-learning on a DOS computed by psilearn: gfn2, gfn1 or "
                   "XC/BASIS orbital energies, Gaussian-broadened on the target's grid (--grid-units an energy unit) with the width "
                   "and reference TRAIN records (KEY_sigma, KEY_reference: the labeler's dos and --from-orbitals write them), at "
                   "fit and at predict time through --baseline-db (default MODEL.baseline.db); loss l2 only")
    m.add_argument("--baseline-db", metavar="DB", help="--baseline-method: the label database (resumable; reused at predict)")
    m.add_argument("--baseline-workers", type=int, default=0, metavar="N", help="--baseline-method: labeling processes (default 0)")
    m.add_argument("--pca", type=float, help="learn PCA scores: a number of components, or a variance fraction in (0, 1)")
    m.add_argument("--elements", metavar="LIST", help="extra descriptor elements, e.g. B,Se: structures to predict may contain "
                                                    "them as neighbours even if no training structure does")
    m.add_argument("--config", metavar="YAML", help="options file with 'soap:' and 'model:' sections (SpectrumConfig)")
    m.add_argument("--seed", type=int, default=None, help="random seed (CV folds); wins over model.seed in --config; default 0")
    m.add_argument("--tune", nargs="?", type=float, const=300.0, default=None, metavar="SECONDS",
                   help="choose the SOAP and kernel settings by k-fold CV with Optuna within SECONDS (default 300; --loss l2 only; "
                        "docs/tuning.md); options stated in --config stay fixed")
    p.add_argument("-o", "--output", required=True, metavar="MODEL")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model at MODEL (refused otherwise)")
    p.set_defaults(func=cmd_fit_spectrum, reads=("train", "config", "grid"), writes={"output": "model", "baseline_db": "database"})

    p = sub.add_parser("predict-spectrum", help="predict spectra with a spectrum model",
                       description="Predict spectra for structures. OUT.csv: a table (grid + one column per structure, local spectra summed); "
                                   "otherwise extxyz with KEY, KEY_std and KEY_grid (an existing KEY kept as KEY_reference).")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("input", metavar="INPUT", help="structures (ASE file, DeePMD system or XANES folder)")
    p.add_argument("--split", help="XANES folders: only this split")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.add_argument("--baseline-db", metavar="DB", help="--baseline-method models: the label database (default MODEL.baseline.db)")
    p.add_argument("--baseline-workers", type=int, default=0, metavar="N", help="--baseline-method models: labeling processes")
    p.set_defaults(func=cmd_predict_spectrum, reads=("model", "input"), writes={"output": "file", "baseline_db": "database"})


def _register_compare(sub) -> None:
    p = sub.add_parser("compare", help="compare two sets of spectra (RMSE, Pearson, Tanimoto, ...)",
                       description="Metrics between spectra A and B, pair by pair: RMSE, relative integrated error, Pearson r, "
                                   "cosine similarity, peak-position error, binned-fingerprint Tanimoto similarity (Kuban & Draxl), "
                                   "and with --max-shift the shift-aligned RMSE. A and B: spectrum tables (grid column + spectra), "
                                   "folders of them, XANES folders, or structure files with --key (e.g. the output of "
                                   "predict-spectrum: --key dos --key-b dos_reference).")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--key", help="spectrum label in structure files")
    p.add_argument("--key-b", help="label in B if different from --key")
    _grid_args(p)
    p.add_argument("--max-shift", type=float, help="also report the RMSE after the best rigid shift within this range (grid units)")
    p.add_argument("--peaks", type=int, default=3, help="most prominent reference peaks used for the peak-position error (default 3)")
    p.add_argument("--bins", type=int, default=64, help="fingerprint energy bins (default 64)")
    p.add_argument("--levels", type=int, default=32, help="fingerprint height levels (default 32)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--csv", metavar="CSV", help="write per-pair metrics")
    p.add_argument("--plot", metavar="PNG", help="overlay the worst pairs")
    p.set_defaults(func=cmd_compare, reads=("a", "b", "grid"), writes={"csv": "file", "plot": "file"})

    p = sub.add_parser("pca", help="PCA and clustering of a set of spectra, with a plot",
                       description="Principal components of SPECTRA (any source accepted by `psilearn compare`), k-means clusters of the "
                                   "leading scores, and a PNG with the score map, the components and the cluster means.")
    p.add_argument("spectra", metavar="SPECTRA")
    p.add_argument("--key", help="spectrum label in structure files")
    _grid_args(p)
    p.add_argument("--n-components", default="10", help="components kept: a number, or a variance fraction in (0, 1) (default 10)")
    p.add_argument("--clusters", default="auto", help="number of k-means clusters, or auto (best silhouette for 2..8)")
    p.add_argument("--cluster-dims", type=int, default=3, help="PC scores used for clustering (default 3)")
    p.add_argument("--normalize", action="store_true", help="scale each spectrum to a maximum of 1 first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--csv", metavar="CSV", help="write scores and cluster labels")
    p.add_argument("-o", "--output", metavar="PNG", help="plot (default: none)")
    p.set_defaults(func=cmd_pca, reads=("spectra", "grid"), writes={"csv": "file", "output": "file"})


def register(sub) -> None:
    _register_fit(sub)
    _register_compare(sub)
