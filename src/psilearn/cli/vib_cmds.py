"""`psilearn md | spectrum ir|raman`: trajectories and the vibrational spectra of their predicted
(or stored) dipoles and polarizabilities. The work is done by :func:`psilearn.label.sampling.md_trajectory`
and :func:`psilearn.observe.trajectory.trajectory_spectrum`; these commands parse, call and print.
"""

from __future__ import annotations

import os
import sys
import time


# ---- md ---------------------------------------------------------------------------------------------
def cmd_md(args) -> int:
    from psilearn.data import read_structures, write_structures
    from psilearn.label.sampling import md_trajectory
    from psilearn.label.xtb_methods import XTB_METHODS, tblite_name, xtb_method

    method = xtb_method(args.calculator)
    if method is None:
        raise ValueError(f"unknown calculator {args.calculator!r}; available: {', '.join(XTB_METHODS)} (tblite)")
    frames = read_structures(args.structure)
    atoms = frames[-1]
    if args.charge is not None:
        atoms.info["charge"] = args.charge
    if args.multiplicity is not None:
        atoms.info["multiplicity"] = args.multiplicity
    if args.steps < 1 or args.stride < 1 or args.equilibration < 0:  # before the header line: one-line errors
        raise ValueError("--steps and --stride must be >= 1, --equilibration >= 0")
    t0 = time.perf_counter()
    print(f"{tblite_name(method)} Langevin MD of {atoms.get_chemical_formula()} at {args.temperature:g} K: "
          f"{args.equilibration} equilibration + {args.steps} steps of {args.timestep:g} fs, friction {args.friction:g}/fs", file=sys.stderr)
    traj = md_trajectory(atoms, args.steps, method=method, temperature=args.temperature, timestep_fs=args.timestep,
                         stride=args.stride, friction_per_fs=args.friction, equilibration=args.equilibration, seed=args.seed,
                         progress=not args.quiet)
    write_structures(args.output, traj)
    dt = time.perf_counter() - t0
    print(f"wrote {len(traj)} frames, {args.stride * args.timestep:g} fs apart, to {args.output} ({dt:.1f} s)")
    return 0


# ---- spectrum ir / raman -------------------------------------------------------------------------------
def cmd_spectrum(args) -> int:
    from psilearn.data.outputs import check_outputs
    from psilearn.observe.plots import plot_vibrational
    from psilearn.observe.trajectory import trajectory_spectrum

    png = args.png or (os.path.splitext(args.output)[0] + ".png")
    check_outputs({"-o": (args.output, "file"), "--png (default: OUTPUT with .png)": (png, "file")}, [args.trajectory, args.model])
    spec = trajectory_spectrum(args.spectrum_kind, args.trajectory, model=args.model or None, key=args.key or None,
                               timestep_fs=args.timestep, batch=args.batch, correlation_fs=args.correlation,
                               window=args.window, zero_padding=args.zero_padding, qcf=args.qcf,
                               temperature_k=args.temperature, max_cm1=args.max_cm1)
    spec.to_csv(args.output)
    title = {"ir": "IR", "raman": "Raman"}[args.spectrum_kind]
    plot_vibrational(spec, png, title=f"{title}: {args.trajectory}")
    from psilearn.observe.vibrational import BAND_CUT_CM1

    first = next(iter(spec.columns))
    bands = spec.strongest_bands(first, n_bands=6)
    listed = ", ".join(f"{p:.0f} ({h:.2f})" for p, h in bands) or "none"
    print(f"wrote {args.output} and {png}; strongest {first} bands (cm^-1, intensity as in {args.output}; "
          f"bands below {BAND_CUT_CM1:g} cm^-1 not listed): {listed}")
    return 0


# ---- registration --------------------------------------------------------------------------------
def _register_md(sub) -> None:
    from psilearn.label.xtb_methods import DEFAULT_XTB, XTB_METHODS

    p = sub.add_parser("md", help="molecular dynamics trajectory (GFN2-xTB Langevin) for vibrational spectra",
                       description="Langevin MD with tblite's GFN2-xTB (or GFN1-xTB), from src/psilearn/label/sampling.py. Writes every "
                                   "STRIDE-th step to an extxyz trajectory with md_step and md_timestep_fs recorded, so that "
                                   "`psilearn spectrum` knows the time between frames. Use a small friction for spectra.")
    p.add_argument("structure", metavar="STRUCTURE", help="starting structure (ASE-readable; the last frame is used)")
    p.add_argument("--calculator", default=DEFAULT_XTB, help=f"xTB method: {' or '.join(XTB_METHODS)} (default {DEFAULT_XTB})")
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
    p.set_defaults(func=cmd_md, reads=("structure",), writes={"output": "file"})


def _vib_args(p) -> None:
    p.add_argument("trajectory", metavar="TRAJ", help="trajectory (ASE-readable, e.g. from `psilearn md`)")
    p.add_argument("--model", metavar="MODEL", help="psilearn model predicting the property along TRAJ")
    p.add_argument("--key", help="use labels stored in the trajectory (info[KEY]) instead of a model")
    p.add_argument("--timestep", type=float, metavar="FS",
                   help="time between frames in fs, for trajectories that do not record it (`psilearn md` records md_step and "
                        "md_timestep_fs: the interval is read from TRAJ, and a different --timestep is an error)")
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
    ir.set_defaults(func=cmd_spectrum, reads=("trajectory", "model"), writes={"output": "file", "png": "file"})
    ra = ssub.add_parser("raman", help="isotropic/anisotropic (and VV/VH) Raman from a polarizability model (target 'ij=ji')")
    _vib_args(ra)
    ra.set_defaults(func=cmd_spectrum, reads=("trajectory", "model"), writes={"output": "file", "png": "file"})
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def register(sub) -> None:
    _register_md(sub)
    _register_spectrum(sub)
