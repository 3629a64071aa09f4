"""`psilearn density SOURCE IN -o OUT.xyz`: observables derived from fitted electron densities.

SOURCE is a density model (its predictions are used) or the word ``labels`` (the density labels
stored in IN). The work is done by :mod:`psilearn.observe.density`; this module parses, calls and prints.
"""

from __future__ import annotations

import argparse
import sys


def _source(args, frames):
    """(coefficients, aux bases, covariances or None, ECP core electrons per frame or None: as labelled)."""
    from psilearn.observe.density.derive import label_densities, model_densities

    if args.source == "labels":
        return (*label_densities(frames), None, None)
    from psilearn.models import load

    model = load(args.source)
    coefficients, bases, cov = model_densities(model, frames, with_cov=True)
    core_of = getattr(model.target, "core_of", None)
    return coefficients, bases, cov, None if core_of is None else [core_of(a) for a in frames]


def _esp_points(path):
    from psilearn.observe.density.esp import read_points

    return None if path is None else read_points(path)


def _scales(text: str) -> tuple[float, ...]:
    try:
        out = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not out or min(out) <= 0:
        raise argparse.ArgumentTypeError(f"scales must be positive, got {text!r}")
    return out


def _row(r: dict) -> str:
    cells = [f"{r['index']:>5}", f"{r['formula']:<12}", f"{r['electrons']:>9.4f}/{r['n_electrons']:<4}"]
    if "dipole_debye" in r:
        cells.append(f"{r['dipole_debye']:>8.4f}")
    if "dipole_std_debye" in r:
        cells.append(f"{r['dipole_std_debye']:>9.4f}")
    if "surface_points" in r:
        cells.append(f"{r['surface_points']:>8}")
    if "cube_electrons" in r:
        cells.append(f"{r['cube_electrons']:>10.4f}")
    if "hirshfeld_sum" in r:
        cells.append(f"{r['hirshfeld_sum']:>+9.4f}")
    if "scf_guess" in r:
        cells.append(f"{r['scf_guess']:>5} {r['scf_default']:>7}" + ("" if r["scf_converged"] else "  NOT CONVERGED"))
    return " ".join(cells)


def _header(r: dict) -> str:
    cells = ["    #", f"{'formula':<12}", f"{'electrons':>9}/N   "]
    cells += ["|mu| (D)"] if "dipole_debye" in r else []
    cells += ["std|mu|(D)"] if "dipole_std_debye" in r else []
    cells += ["surf pts"] if "surface_points" in r else []
    cells += ["cube e    "] if "cube_electrons" in r else []
    cells += ["sum q_H  "] if "hirshfeld_sum" in r else []
    cells += ["guess default (SCF cycles)"] if "scf_guess" in r else []
    return " ".join(cells)


def print_summary(rows: list[dict], args) -> None:
    if not rows:
        return
    print(_header(rows[0]))
    for r in rows:
        print(_row(r))
    if "scf_guess" in rows[0]:
        guess, default = sum(r["scf_guess"] for r in rows), sum(r["scf_default"] for r in rows)
        de = max(abs(r["scf_de"]) for r in rows)
        t_guess, t_default = sum(r["scf_seconds_guess"] for r in rows), sum(r["scf_seconds_default"] for r in rows)
        print(f"SCF {args.scf_guess} (conv_tol {args.conv_tol:g}): {guess} cycles from the fitted-density guess vs "
              f"{default} from PySCF's default guess: {default - guess} saved ({100 * (default - guess) / max(default, 1):.0f} %); "
              f"wall time {t_guess:.1f} s (guess built from the density included) vs {t_default:.1f} s; "
              f"max |E_guess - E_default| {de:.1e} Ha")


def cmd_density(args) -> int:
    from psilearn.data import read_structures, write_structures
    from psilearn.observe.density.derive import DeriveOptions, derive_all

    options = DeriveOptions(multipoles=args.multipoles, esp_points=_esp_points(args.esp), esp_grid=args.esp_grid,
                            esp_surface=args.esp_surface, surface_scales=tuple(args.surface_scales), surface_density=args.surface_density,
                            cube_dir=args.cube, spacing=args.spacing, margin=args.margin, hirshfeld=args.hirshfeld,
                            hirshfeld_basis=args.hirshfeld_basis, scf_method=args.scf_guess, scf_conv_tol=args.conv_tol,
                            source=args.source)
    frames = read_structures(args.data)
    coefficients, bases, cov, cores = _source(args, frames)
    out, rows = derive_all(frames, coefficients, bases, options, progress=not args.quiet, covariances=cov, core_electrons=cores)
    write_structures(args.output, out)
    print_summary(rows, args)
    extra = f"; cube files in {args.cube}" if args.cube else ""
    print(f"wrote {len(out)} structures with the derived values to {args.output}{extra} "
          "(units: docs/density.md, 'Deriving observables')", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("density", help="dipoles, quadrupoles, ESP, cube files, Hirshfeld charges and SCF guesses from "
                                       "fitted electron densities",
                       description="Derive observables from density-fitting coefficients: those a density MODEL predicts "
                                   "for IN, or (SOURCE 'labels') the density labels stored in IN (psilearn label "
                                   "--observables density). Writes IN's structures with the derived values to OUT "
                                   "(density_dipole e*Bohr and density_quadrupole e*Bohr^2 about the centre of mass, "
                                   "density_esp Hartree/e (--esp-surface: density_esp_surface on Merz-Kollman points), and for a model fitted with "
                                   "density.uncertainty their std (density_dipole_std, density_esp_std), "
                                   "density_hirshfeld_charges e per atom, density_scf_cycles_*) and "
                                   "prints a table. Molecules only.")
    p.add_argument("source", metavar="SOURCE", help="a density model file, or 'labels' for the density labels in IN")
    p.add_argument("data", metavar="IN", help="structures (ASE-readable, @slice allowed)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.xyz", help="extxyz with the derived values")
    p.add_argument("--multipoles", action=argparse.BooleanOptionalAction, default=True,
                   help="dipole and traceless quadrupole of nuclei + density (default on)")
    p.add_argument("--esp", metavar="POINTS.xyz",
                     help="ESP (Hartree/e) at the positions (Angstrom) of POINTS.xyz: one frame for all structures or one per structure")
    p.add_argument("--esp-surface", action="store_true",
                   help="ESP (Hartree/e) on Merz-Kollman points: spheres of --surface-scales x the van der Waals radii (ase.data.vdw_radii), "
                        "points inside another atom's sphere dropped; stored as density_esp_surface_points (Angstrom) and density_esp_surface")
    p.add_argument("--surface-scales", type=_scales, default=(1.4, 1.6, 1.8, 2.0), metavar="K1,K2,...",
                   help="multiples of the vdW radii for --esp-surface (default 1.4,1.6,1.8,2.0)")
    p.add_argument("--surface-density", type=float, default=1.0, metavar="PER_A2",
                   help="--esp-surface points per Angstrom^2 of each sphere (default 1)")
    p.add_argument("--esp-grid", action="store_true", help="also write ESP cube files (Hartree/e) next to the density cubes (needs --cube)")
    p.add_argument("--cube", metavar="DIR", help="write one Gaussian cube file of rho (e/Bohr^3) per structure into DIR")
    p.add_argument("--spacing", type=float, default=0.2, help="cube grid spacing, Angstrom (default 0.2)")
    p.add_argument("--margin", type=float, default=4.0, help="cube box margin around the atoms, Angstrom (default 4)")
    p.add_argument("--hirshfeld", action="store_true", help="Hirshfeld charges of the density (e, per atom)")
    p.add_argument("--hirshfeld-basis", default="def2-svp", metavar="BASIS",
                   help="orbital basis of the free atoms of the promolecule (default def2-svp; use the labelling basis)")
    p.add_argument("--scf-guess", metavar="XC/BASIS",
                   help="run this PySCF SCF from the density's Fock matrix and from PySCF's default guess; report the cycles")
    p.add_argument("--conv-tol", type=float, default=1e-9, help="SCF energy convergence for --scf-guess, Hartree (default 1e-9)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.set_defaults(func=cmd_density, reads=("source", "data", "esp"), writes={"output": "file", "cube": "directory"})
