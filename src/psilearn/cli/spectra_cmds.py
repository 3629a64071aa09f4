"""`psilearn fit-spectrum | predict-spectrum | compare | pca | md | spectrum ir|raman`.

Spectra are functions on a recorded grid (DOS, XANES, ...); vibrational spectra come from time
series of predicted dipoles/polarizabilities along a trajectory. Input problems raise ValueError /
FileNotFoundError, which `psilearn` prints as one line (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np

SPECTRUM_HELP = """A spectrum target is a function on a grid: per structure (--per structure, atomic
contributions pooled by --pool), per atom (--per atom: local spectra such as a projected DOS;
predictions can be summed to the structure), or absorber-centred (--absorber Fe: only the Fe
environment describes the structure, e.g. Fe K-edge XANES). The grid comes from the data
(info[KEY_grid], the labeler's KEY_emin/_emax/_npts, or the spectrum files), or --grid; spectra on
another grid are interpolated with a warning (--on-grid-mismatch refuse to stop instead).
Losses: l2 (plain), shift (optimise one rigid shift per training structure: for an ill-defined
energy reference), align (move each spectrum so a stated feature, --align-feature, lines up)."""


# ---- helpers ---------------------------------------------------------------------------------------
def _spectrum_target(args, frames):
    from psilearn.data.spectra import GridWarning, data_grid, parse_grid
    from psilearn.targets import Target

    grid = parse_grid(args.grid) if args.grid else data_grid(frames, args.target)
    units = args.grid_units
    if grid is None:
        store = frames[0].info if args.per == "structure" else frames[0].arrays
        if args.target not in store:
            raise ValueError(f"no spectrum {args.target!r} (per {args.per}) in the training data")
        n = np.asarray(store[args.target]).shape[-1]
        warnings.warn(f"no grid recorded for {args.target!r}; using the point index 0..{n - 1} (give --grid to record energies)", GridWarning)
        grid, units = np.arange(n, dtype=float), units or "index"
    pool = args.pool or ("mean" if args.absorber else "sum")
    return Target(args.target, per=args.per, pool=pool, units=args.units, grid=grid, grid_units=units, absorber=args.absorber or "")


def _print_spectral(m: dict, units: str = "", grid_units: str = "") -> None:
    from psilearn.spectral.metrics import METRIC_INFO

    for k, v in m.items():
        name, unit, better = METRIC_INFO.get(k, (k, "", ""))
        unit = {"spectrum units": units, "grid units": grid_units}.get(unit, unit)
        print(f"  {name:<26}{v:>14.5g}  {('[' + unit + ']') if unit else ''}{'  (' + better + ' is better)' if better else ''}")


# ---- fit-spectrum / predict-spectrum ---------------------------------------------------------------
def cmd_fit_spectrum(args) -> int:
    from psilearn.config import load_config
    from psilearn.data.spectra import load_spectrum_dataset, read_structures_or_xanes
    from psilearn.models.registry import model_class

    config = load_config(args.config)
    model_class("spectrum").validate_config(config, source=args.config)  # before any data is read
    frames = read_structures_or_xanes(args.train, args.split, args.target)
    if args.from_orbitals is not None:
        from psilearn.data.spectra import dos_from_orbitals, parse_grid

        if not args.grid:
            raise ValueError("--from-orbitals needs --grid (energies in the units of the orbital energies, Hartree from psilearn label)")
        frames = dos_from_orbitals(frames, parse_grid(args.grid), args.from_orbitals, key=args.target, reference=args.dos_reference)
    target = _spectrum_target(args, frames)
    ds = load_spectrum_dataset(frames, target, on_mismatch=args.on_grid_mismatch)
    ds.name = args.train
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
    print(f"fitting {target.describe()} on {len(ds)} structures from {args.train}", file=sys.stderr)
    t0 = time.perf_counter()
    model = model_class("spectrum").build(target, config, seed=args.seed, progress=True).fit(ds)
    model.save(args.output)
    held = model.metadata["heldout_metrics"]
    print(f"fitted in {time.perf_counter() - t0:.1f} s ({model.metadata['n_columns']} output columns, loss {model.config.loss}); saved to {args.output}")
    if "train_shifts" in model.metadata:
        s = model.metadata["train_shifts"]
        print(f"training shifts: rms {s['rms']:.4g}, max |shift| {s['max_abs']:.4g} {s['units']}")
    print(f"held-out estimate ({held['method']}):")
    _print_spectral(held["spectral"], target.units, target.grid_units)
    return 0


def cmd_predict_spectrum(args) -> int:
    from psilearn.data.spectra import GRID_SUFFIX, read_structures_or_xanes, write_spectrum_table
    from psilearn.models import load

    model = load(args.model)
    t = model.target
    if not getattr(t, "is_spectrum", False):
        raise ValueError(f"{args.model}: not a spectrum model (target {t.describe()})")
    frames = read_structures_or_xanes(args.input, args.split, t.key)
    model.progress = True
    grid = np.asarray(t.grid)
    if args.output.lower().endswith((".csv", ".txt", ".dat")):
        values = model.predict_structures(frames)
        names = [str(a.info.get("name", f"structure_{i}")) for i, a in enumerate(frames)]
        write_spectrum_table(args.output, grid, values, names, grid_name=f"grid_{t.grid_units or 'units'}",
                             comments={"model": args.model, "target": t.describe()})
    else:
        from psilearn.data import write_structures

        pred = model.predict(frames)
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
        out = []
        for i, a in enumerate(frames):
            b = a.copy()
            b.calc = None
            store = b.info if t.per == "structure" else b.arrays
            sl = i if t.per == "structure" else slice(offsets[i], offsets[i + 1])
            if t.key in store:
                store[f"{t.key}_reference"] = store.pop(t.key)
            store[t.key] = pred.values[sl]
            store[f"{t.key}_std"] = pred.std[sl]
            b.info[t.key + GRID_SUFFIX] = grid
            out.append(b)
        write_structures(args.output, out)
    print(f"predicted {t.key} for {len(frames)} structures; wrote {args.output}")
    return 0


# ---- compare / pca ------------------------------------------------------------------------------
def cmd_compare(args) -> int:
    from psilearn.data.spectra import interpolate_spectra, load_spectra, parse_grid, same_grid
    from psilearn.spectral.fingerprint import FingerprintSpec
    from psilearn.spectral.metrics import compare_spectra

    grid = parse_grid(args.grid) if args.grid else None
    ga, ya, na = load_spectra(args.a, args.key, grid, args.split, args.on_grid_mismatch)
    gb, yb, nb = load_spectra(args.b, args.key_b or args.key, grid, args.split, args.on_grid_mismatch)
    if not same_grid(ga, gb):
        if args.on_grid_mismatch == "refuse":
            raise ValueError(f"{args.b} is on a different grid ({gb[0]:g}..{gb[-1]:g}, {len(gb)} points) than {args.a} "
                             f"({ga[0]:g}..{ga[-1]:g}, {len(ga)} points)")
        from psilearn.data.spectra import GridWarning

        warnings.warn(f"interpolating {args.b} onto the grid of {args.a}", GridWarning)
        yb = interpolate_spectra(yb, gb, ga, f"{args.b}: ")
    if len(yb) == 1 and len(ya) > 1:
        yb = np.repeat(yb, len(ya), axis=0)
        nb = nb * len(ya)
    if len(ya) != len(yb):
        raise ValueError(f"{args.a} has {len(ya)} spectra but {args.b} has {len(yb)} (compare pairs in order, or one against many)")
    fp = FingerprintSpec(n_bins=args.bins, n_levels=args.levels)
    res = compare_spectra(ga, ya, yb, n_peaks=args.peaks, fingerprint=fp, max_shift=args.max_shift)
    if args.json:
        print(json.dumps({"a": args.a, "b": args.b, "n_spectra": res["n_spectra"], "mean": res["mean"],
                          "per_spectrum": {k: v.tolist() for k, v in res["per_spectrum"].items()}, "names": na}))
    else:
        print(f"{args.a} vs {args.b}: {res['n_spectra']} spectrum pair(s) on {len(ga)} points ({ga[0]:g}..{ga[-1]:g})")
        print("mean over pairs:" if res["n_spectra"] > 1 else "metrics:")
        _print_spectral(res["mean"])
    if args.csv:
        keys = list(res["per_spectrum"])
        with open(args.csv, "w") as fh:
            fh.write(",".join(["name_a", "name_b", *keys]) + "\n")
            for i in range(res["n_spectra"]):
                fh.write(",".join([na[i], nb[i], *[f"{res['per_spectrum'][k][i]:.6g}" for k in keys]]) + "\n")
        print(f"per-pair metrics: {args.csv}")
    if args.plot:
        from psilearn.observe.plots import plot_comparison

        plot_comparison(ga, ya, yb, args.plot, names=(args.a, args.b), labels=na, scores=res["per_spectrum"]["pearson"])
        print(f"plot (worst pairs by Pearson r first): {args.plot}")
    return 0


def cmd_pca(args) -> int:
    from psilearn.data.spectra import load_spectra, parse_grid
    from psilearn.spectral.pca import choose_clusters, fit_pca, kmeans, silhouette
    from psilearn.observe.plots import plot_pca

    grid = parse_grid(args.grid) if args.grid else None
    g, y, names = load_spectra(args.spectra, args.key, grid, args.split, args.on_grid_mismatch)
    if args.normalize:
        y = y / np.maximum(np.abs(y).max(1, keepdims=True), 1e-300)
    n_comp = float(args.n_components) if float(args.n_components) < 1 else int(args.n_components)
    pca = fit_pca(y, n_comp)
    use = pca.scores[:, : max(1, min(args.cluster_dims, pca.scores.shape[1]))]
    if args.clusters == "auto":
        k, labels = choose_clusters(use, seed=args.seed)
    else:
        k = int(args.clusters)
        labels = kmeans(use, k, args.seed)
    cum = np.cumsum(pca.explained)
    print(f"{len(y)} spectra on {len(g)} points; {len(pca.components)} components explain {100 * cum[-1]:.2f}% of the variance")
    for i, (e, c) in enumerate(zip(pca.explained[:10], cum[:10])):
        print(f"  PC{i + 1}: {100 * e:7.3f}%  (cumulative {100 * c:7.3f}%)")
    sil = silhouette(use, labels)
    print(f"{k} cluster(s) by k-means on the first {use.shape[1]} PC scores (silhouette {sil:.3f}): sizes {np.bincount(labels).tolist()}")
    if args.csv:
        with open(args.csv, "w") as fh:
            fh.write(",".join(["name", "cluster", *[f"PC{i + 1}" for i in range(pca.scores.shape[1])]]) + "\n")
            for n, c, s in zip(names, labels, pca.scores):
                fh.write(",".join([n, str(c), *[f"{v:.6g}" for v in s]]) + "\n")
        print(f"scores and clusters: {args.csv}")
    if args.output:
        plot_pca(g, pca, labels, args.output)
        print(f"plot: {args.output}")
    return 0


# ---- md ---------------------------------------------------------------------------------------------
CALCULATORS = {"gfn2": "GFN2-xTB", "gfn2-xtb": "GFN2-xTB", "gfn1": "GFN1-xTB", "gfn1-xtb": "GFN1-xTB"}


def cmd_md(args) -> int:
    from psilearn.data import read_structures, write_structures
    from psilearn.label.sampling import md_sample

    calc = args.calculator.strip().lower()
    if calc not in CALCULATORS:
        raise ValueError(f"unknown calculator {args.calculator!r}; available: gfn2, gfn1 (tblite)")
    frames = read_structures(args.structure)
    atoms = frames[-1] if len(frames) > 1 else frames[0]
    if args.charge is not None:
        atoms.info["charge"] = args.charge
    if args.multiplicity is not None:
        atoms.info["multiplicity"] = args.multiplicity
    if args.steps < 1 or args.stride < 1 or args.equilibration < 0:
        raise ValueError("--steps and --stride must be >= 1, --equilibration >= 0")
    opts = dict(temperature=args.temperature, timestep_fs=args.timestep, friction_per_fs=args.friction, method=CALCULATORS[calc])
    t0 = time.perf_counter()
    print(f"{CALCULATORS[calc]} Langevin MD of {atoms.get_chemical_formula()} at {args.temperature:g} K: "
          f"{args.equilibration} equilibration + {args.steps} steps of {args.timestep:g} fs, friction {args.friction:g}/fs", file=sys.stderr)
    if args.equilibration:
        atoms = md_sample(atoms, steps=args.equilibration, stride=args.equilibration, seed=args.seed + 1, **opts)[-1]
    traj = md_sample(atoms, steps=args.steps, stride=args.stride, seed=args.seed, **opts)
    for f in traj:
        f.info["md_timestep_fs"] = float(args.timestep)
        f.info["md_calculator"] = calc
    write_structures(args.output, traj)
    dt = time.perf_counter() - t0
    print(f"wrote {len(traj)} frames, {args.stride * args.timestep:g} fs apart, to {args.output} ({dt:.1f} s)")
    return 0


# ---- spectrum ir / raman -------------------------------------------------------------------------------
def _frame_interval(frames, given: float | None) -> float:
    if given is not None:
        return float(given)
    try:
        steps = [int(f.info["md_step"]) for f in frames[:2]]
        return (steps[1] - steps[0]) * float(frames[0].info["md_timestep_fs"])
    except (KeyError, IndexError, ValueError):
        raise ValueError("give --timestep FS (time between frames); the trajectory does not record md_step/md_timestep_fs") from None


def _series(args, frames, tensor_ok: tuple[str, ...], what: str, size: int) -> tuple[np.ndarray, str]:
    """(n_frames, size) series from a model (--model) or stored labels (--key), and its units."""
    if bool(args.model) == bool(args.key):
        raise ValueError("give either --model MODEL (predict along the trajectory) or --key KEY (use stored labels)")
    if args.key:
        try:
            vals = np.array([np.asarray(f.info[args.key], dtype=float).reshape(-1) for f in frames])
        except KeyError:
            raise ValueError(f"trajectory frames have no info[{args.key!r}]") from None
        return vals, "as stored"
    from psilearn.models import load

    model = load(args.model)
    t = model.target
    if getattr(t, "is_spectrum", False) or t.tensor not in tensor_ok:
        raise ValueError(f"{args.model}: the model's target {t.describe()} is not a {what} (need tensor {' or '.join(tensor_ok)})")
    if t.parity != 1:
        raise ValueError(f"{args.model}: the target is axial (pseudo-tensor); a {what} is polar")
    model.progress = True
    batch = max(1, args.batch)
    out = []
    from tqdm.auto import tqdm

    for start in tqdm(range(0, len(frames), batch), desc=f"predicting {what}", unit="batch"):
        chunk = frames[start : start + batch]
        pred = model.predict(chunk, return_std=False).values
        if t.per == "atom":  # atomic contributions (e.g. Wannier-centre dipoles) summed per frame
            owner = np.repeat(np.arange(len(chunk)), [len(a) for a in chunk])
            summed = np.zeros((len(chunk), pred.shape[1]))
            np.add.at(summed, owner, pred)
            pred = summed
        out.append(pred)
    vals = np.concatenate(out)
    if vals.shape[1] != size:
        raise ValueError(f"{args.model}: predictions have {vals.shape[1]} components, a {what} needs {size}")
    return vals, t.units or "model units"


def _vib_options(args, dt):
    from psilearn.observe.vibrational import SpectrumOptions

    return SpectrumOptions(timestep_fs=dt, correlation_fs=args.correlation, window=args.window, zero_padding=args.zero_padding,
                           qcf=args.qcf, temperature_k=args.temperature, max_cm1=args.max_cm1)


def _write_vibrational(spec, args, title: str) -> None:
    from psilearn.observe.plots import plot_vibrational

    spec.to_csv(args.output)
    png = args.png or (args.output.rsplit(".", 1)[0] + ".png")
    plot_vibrational(spec, png, title=title)
    first = next(iter(spec.columns))
    peaks = spec.peak_positions(first, n_peaks=6)
    print(f"wrote {args.output} and {png}; strongest {first} bands (cm^-1): {', '.join(f'{p:.0f}' for p in peaks)}")


def cmd_spectrum_ir(args) -> int:
    from psilearn.data import read_structures
    from psilearn.observe.ir import ir_spectrum

    frames = read_structures(args.trajectory)
    dt = _frame_interval(frames, args.timestep)
    series, units = _series(args, frames, ("i",), "dipole", 3)
    spec = ir_spectrum(series, _vib_options(args, dt), units=units)
    spec.meta["source"] = args.model or f"info[{args.key}]"
    spec.meta["trajectory"] = args.trajectory
    _write_vibrational(spec, args, f"IR: {args.trajectory}")
    return 0


def cmd_spectrum_raman(args) -> int:
    from psilearn.data import read_structures
    from psilearn.observe.raman import raman_spectrum

    frames = read_structures(args.trajectory)
    dt = _frame_interval(frames, args.timestep)
    series, units = _series(args, frames, ("ij=ji", "ij"), "polarizability", 9)
    spec = raman_spectrum(series, _vib_options(args, dt), units=units)
    spec.meta["source"] = args.model or f"info[{args.key}]"
    spec.meta["trajectory"] = args.trajectory
    _write_vibrational(spec, args, f"Raman: {args.trajectory}")
    return 0


# ---- registration --------------------------------------------------------------------------------
def _grid_args(p, mismatch_help: str = "spectra on another grid: interpolate (warning, default) or refuse") -> None:
    p.add_argument("--grid", metavar="GRID", help="grid START:STOP:NUM (write --grid=-5:5:251 when START is negative), a comma list, or a file (default: recorded in the data)")
    p.add_argument("--on-grid-mismatch", choices=["interpolate", "refuse"], default="interpolate", help=mismatch_help)
    p.add_argument("--split", help="for XANES-style folders (xyz_SPLIT/ + xanes_SPLIT/): only this split, e.g. train")


def _register_fit(sub) -> None:
    p = sub.add_parser("fit-spectrum", help="fit a model of spectra (DOS, XANES) on a grid",
                       description="Fit a kernel model of a spectrum on invariant SOAP and save it (model kind 'spectrum').\n\n" + SPECTRUM_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("train", metavar="TRAIN", help="structures with spectra: extxyz/ASE file (@slice allowed), DeePMD system, or an XANES folder of xyz + spectrum files")
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
    m.add_argument("--pca", type=float, help="learn PCA scores: a number of components, or a variance fraction in (0, 1)")
    m.add_argument("--elements", metavar="LIST", help="extra descriptor elements, e.g. B,Se: structures to predict may contain "
                                                    "them as neighbours even if no training structure does")
    m.add_argument("--config", metavar="YAML", help="options file with 'soap:' and 'model:' sections (SpectrumConfig)")
    m.add_argument("--seed", type=int, default=None, help="random seed (CV folds); wins over model.seed in --config; default 0")
    p.add_argument("-o", "--output", required=True, metavar="MODEL")
    p.set_defaults(func=cmd_fit_spectrum)

    p = sub.add_parser("predict-spectrum", help="predict spectra with a spectrum model",
                       description="Predict spectra for structures. OUT.csv: a table (grid + one column per structure, local spectra summed); "
                                   "otherwise extxyz with KEY, KEY_std and KEY_grid (an existing KEY kept as KEY_reference).")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("input", metavar="INPUT", help="structures (ASE file, DeePMD system or XANES folder)")
    p.add_argument("--split", help="XANES folders: only this split")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.set_defaults(func=cmd_predict_spectrum)


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
    p.set_defaults(func=cmd_compare)

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
    p.set_defaults(func=cmd_pca)


def _register_md(sub) -> None:
    p = sub.add_parser("md", help="molecular dynamics trajectory (GFN2-xTB Langevin) for vibrational spectra",
                       description="Langevin MD with tblite's GFN2-xTB (or GFN1-xTB), from src/psilearn/label/sampling.py. Writes every "
                                   "STRIDE-th step to an extxyz trajectory with md_step and md_timestep_fs recorded, so that "
                                   "`psilearn spectrum` knows the time between frames. Use a small friction for spectra.")
    p.add_argument("structure", metavar="STRUCTURE", help="starting structure (ASE-readable; the last frame is used)")
    p.add_argument("--calculator", default="gfn2", help="gfn2 (default) or gfn1")
    p.add_argument("--temperature", type=float, default=300.0, help="K (default 300)")
    p.add_argument("--steps", type=int, required=True, help="MD steps after equilibration")
    p.add_argument("--equilibration", type=int, default=0, help="steps run first and discarded (default 0)")
    p.add_argument("--timestep", type=float, default=0.5, help="MD time step, fs (default 0.5)")
    p.add_argument("--stride", type=int, default=1, help="write every STRIDE-th step (default 1)")
    p.add_argument("--friction", type=float, default=0.001, help="Langevin friction, 1/fs (default 0.001: weak, keeps bands sharp)")
    p.add_argument("--charge", type=int)
    p.add_argument("--multiplicity", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True, metavar="TRAJ.xyz")
    p.set_defaults(func=cmd_md)


def _vib_args(p) -> None:
    p.add_argument("trajectory", metavar="TRAJ", help="trajectory (ASE-readable, e.g. from `psilearn md`)")
    p.add_argument("--model", metavar="MODEL", help="psilearn model predicting the property along TRAJ")
    p.add_argument("--key", help="use labels stored in the trajectory (info[KEY]) instead of a model")
    p.add_argument("--timestep", type=float, metavar="FS", help="time between frames in fs (default: from md_step/md_timestep_fs in TRAJ)")
    p.add_argument("--correlation", type=float, metavar="FS", help="correlation length in fs (default half the trajectory)")
    p.add_argument("--window", choices=["hann", "blackman", "gaussian", "welch", "none"], default="hann")
    p.add_argument("--zero-padding", type=int, default=4, help="pad the correlation to this many times its length (default 4)")
    p.add_argument("--qcf", choices=["harmonic", "standard", "schofield", "none"], default="harmonic", help="quantum correction factor (default harmonic)")
    p.add_argument("--temperature", type=float, default=300.0, help="K, for the quantum correction (default 300)")
    p.add_argument("--max-cm1", type=float, default=4500.0, help="highest wavenumber written (default 4500)")
    p.add_argument("--batch", type=int, default=200, help="frames per prediction batch")
    p.add_argument("-o", "--output", required=True, metavar="CSV")
    p.add_argument("--png", help="plot path (default: OUTPUT with .png)")


def _register_spectrum(sub) -> None:
    p = sub.add_parser("spectrum", help="IR or Raman spectrum from ML dipoles/polarizabilities along a trajectory",
                       description="Vibrational spectra from time series: the derivative autocorrelation (all time origins), a window, "
                                   "zero padding, a cosine transform and a quantum correction factor. Wavenumbers in cm^-1, intensities "
                                   "in arbitrary units. CSV + PNG out.")
    ssub = p.add_subparsers(dest="spectrum_kind", metavar="{ir,raman}")
    ir = ssub.add_parser("ir", help="IR absorption from a dipole model (target: vector 'i')")
    _vib_args(ir)
    ir.set_defaults(func=cmd_spectrum_ir)
    ra = ssub.add_parser("raman", help="isotropic/anisotropic (and VV/VH) Raman from a polarizability model (target 'ij=ji')")
    _vib_args(ra)
    ra.set_defaults(func=cmd_spectrum_raman)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def register(sub) -> None:
    _register_fit(sub)
    _register_compare(sub)
    _register_md(sub)
    _register_spectrum(sub)
