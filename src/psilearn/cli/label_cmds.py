"""`psilearn label`, `psilearn db status|export` and `psilearn sample`.

Labels are written in atomic units (stated in the database metadata and in every written frame).
Input problems raise ``ValueError``/``FileNotFoundError``, which the CLI prints as one line.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_label(subparsers)
    _register_db(subparsers)
    _register_sample(subparsers)


# ---- label ---------------------------------------------------------------------------------------
def _register_label(sub) -> None:
    from psilearn.label.xtb_methods import XTB_METHODS

    p = sub.add_parser(
        "label",
        help="compute first-principles labels (PySCF or GFN2-xTB) for structures, resumably",
        description=(
            "Label every structure of INPUT (any ASE-readable file; 'file.xyz@0:10' selects frames; "
            "or a DeePMD set directory) "
            "with PySCF (--method XC/BASIS, e.g. pbe0/def2-svp, hf/sto-3g; add /df for density "
            "fitting) or tblite (--method gfn2). Results go to an ASE SQLite database as they "
            "arrive; re-running skips finished work. Charge and multiplicity come from each "
            "structure's info (charge=, multiplicity=). Labels are in atomic units."
        ),
    )
    p.add_argument("input", help="structures: any ASE-readable file (extxyz, xyz, ASE db, traj, ...), optionally with @slice, or a DeePMD set directory")
    p.add_argument("--method", required=True, help=f"XC/BASIS[/df] for PySCF, or an xTB method ({' / '.join(XTB_METHODS)})")
    p.add_argument("--observables", default="energy",
                   help="comma list of energy,forces,dipole,quadrupole,polarizability,charges,"
                        "orbitals,shielding,apt,density,hamiltonian,efg,spin,hfc,gtensor,jcoupling (default: energy)")
    p.add_argument("--db", default="labels.db", help="ASE SQLite label database (default labels.db)")
    p.add_argument("-o", "--output", help="extxyz file with the labelled input structures")
    p.add_argument("--workers", type=int, default=1, help="local Dask worker processes (0: no Dask)")
    p.add_argument("--threads-per-worker", type=int, default=1)
    p.add_argument("--scheduler", help="address of a running Dask scheduler (e.g. tcp://host:8786)")
    p.add_argument("--charge", type=int, help="charge for structures without info['charge']")
    p.add_argument("--multiplicity", type=int, help="multiplicity for structures without one")
    p.add_argument("--grid-level", type=int, help="DFT grid level (PySCF, default 3)")
    p.add_argument("--polarizability-mode", choices=["analytic", "finite_field", "both"],
                   help="CPHF (finite-field fallback), finite field only, or both as cross-check")
    p.add_argument("--max-cycle", type=int, help="SCF iterations per retry rung (PySCF)")
    p.add_argument("--aux-basis", help="auxiliary basis of the density labels (PySCF name; default def2-universal-jkfit)")
    p.add_argument("--density-metric", choices=["coulomb", "overlap"],
                   help="metric of the density fit (default coulomb, as in RI-J)")
    p.add_argument("--jcoupling-cutoff", type=float,
                   help="jcoupling: couple atom pairs within this distance, Angstrom (default 4.0)")
    p.add_argument("--kmesh", help="crystals (PySCF): k-point mesh N1,N2,N3 (default: each lattice vector times N_i >= --kpoint-length)")
    p.add_argument("--kpoint-length", type=float, help="crystals (PySCF): the k-mesh's supercell length, Angstrom (default 7.0)")
    p.add_argument("--retry-failed", action="store_true", help="recompute stored failures")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_label, reads=("input",), writes={"db": "database", "output": "file"})


def _kmesh(text: str | None) -> tuple[int, ...] | None:
    """--kmesh N1,N2,N3 as integers; how many and their range the labeler checks."""
    if text is None:
        return None
    try:
        return tuple(int(n) for n in text.split(","))
    except ValueError:
        raise ValueError(f"--kmesh takes three integers >= 1 like 2,2,2, got {text!r}") from None


def cmd_label(args: argparse.Namespace) -> int:
    from psilearn.data import read_structures, write_structures
    from psilearn.label.base import parse_observables
    from psilearn.label.campaign import labelled_output, run_campaign
    from psilearn.label.registry import make_labeler
    from psilearn.label.xtb_methods import is_xtb_method

    if args.workers < 0 or args.threads_per_worker < 1:
        raise ValueError("--workers must be >= 0 and --threads-per-worker >= 1")
    frames = read_structures(args.input)
    for atoms in frames:
        if args.charge is not None:
            atoms.info.setdefault("charge", args.charge)
        if args.multiplicity is not None:
            atoms.info.setdefault("multiplicity", args.multiplicity)
    options = {"grid_level": args.grid_level, "polarizability_mode": args.polarizability_mode,
               "max_cycle": args.max_cycle, "density_aux_basis": args.aux_basis,
               "density_metric": args.density_metric, "jcoupling_cutoff": args.jcoupling_cutoff,
               "kmesh": _kmesh(args.kmesh), "kpoint_length": args.kpoint_length}
    flags = {"density_aux_basis": "--aux-basis", "density_metric": "--density-metric"}
    if is_xtb_method(args.method):
        for name in list(options):
            if options.pop(name) is not None:
                raise ValueError(f"{flags.get(name, '--' + name.replace('_', '-'))} applies to PySCF methods only")
    else:
        observables = parse_observables(args.observables)
        for name, flag in flags.items():
            if options[name] is not None and "density" not in observables:
                raise ValueError(f"{flag} applies to --observables density only")
        if args.jcoupling_cutoff is not None and "jcoupling" not in observables:
            raise ValueError("--jcoupling-cutoff applies to --observables jcoupling only")
    labeler = make_labeler(args.method, args.observables, **options)
    summary = run_campaign(frames, labeler, args.db, workers=args.workers,
                           threads_per_worker=args.threads_per_worker, scheduler=args.scheduler,
                           retry_failed=args.retry_failed, progress=not args.no_progress)
    print(summary.report())
    if args.output:
        labelled, replaced = labelled_output(frames, summary, args.db)
        if replaced:
            print(f"psilearn label: warning: the input already had {', '.join(replaced)}; replaced by the {labeler.name} labels, "
                  f"the input's values are kept as {', '.join(k + '_input' for k in replaced)}", file=sys.stderr)
        write_structures(args.output, labelled, format="extxyz")
        print(f"wrote {len(labelled)} labelled structures to {args.output} (atomic units)")
    return 1 if summary.failures else 0


# ---- db --------------------------------------------------------------------------------------------
def _register_db(sub) -> None:
    p = sub.add_parser("db", help="inspect or export a label database")
    dsub = p.add_subparsers(dest="db_command", metavar="{status,export}")
    s = dsub.add_parser("status", help="labels per method, failures with reasons")
    s.add_argument("db")
    s.set_defaults(func=cmd_db_status)
    e = dsub.add_parser("export", help="write labelled structures to extxyz")
    e.add_argument("db")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--method-hash", help="only this method (hash or unique prefix)")
    e.add_argument("--include-failed", action="store_true", help="also write failed structures")
    e.set_defaults(func=cmd_db_export, reads=("db",), writes={"output": "file"})
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def _open_store(path: str):
    from psilearn.label.store import LabelStore

    return LabelStore(path, create=False)  # reading: nothing is written to the file


def cmd_db_status(args: argparse.Namespace) -> int:
    st = _open_store(args.db).status()
    print(f"{st['path']}: {st['units_note']}")
    if not st["methods"]:
        print("  (empty)")
    for mhash, m in st["methods"].items():
        t = f", {m['mean_seconds']:.2f} s/label" if m["mean_seconds"] is not None else ""
        print(f"  {m['name']} [{mhash[:12]}]: {m['ok']} ok, {m['failed']} failed{t}")
    for f in st["failures"]:
        print(f"  FAILED row {f['id']} [{(f['structure_hash'] or '?')[:12]}] {f['stage']}: {f['reason']}")
    return 0


def cmd_db_export(args: argparse.Namespace) -> int:
    store = _open_store(args.db)
    mhash = None
    if args.method_hash:
        known = [m for m in store.status()["methods"] if m.startswith(args.method_hash)]
        if len(known) != 1:
            raise ValueError(f"--method-hash {args.method_hash!r} matches {len(known)} methods")
        mhash = known[0]
    n = store.export(args.output, mhash=mhash, include_failed=args.include_failed)
    print(f"wrote {n} structures to {args.output} (atomic units)")
    return 0


# ---- sample ----------------------------------------------------------------------------------------
def _register_sample(sub) -> None:
    p = sub.add_parser(
        "sample",
        help="generate structures: RDKit conformers, GFN2-xTB Langevin MD, rattling, normal modes",
        description=(
            "Start from INPUT (any ASE-readable file) or --smiles (RDKit conformers), then "
            "optionally sample with --mode md (GFN2-xTB Langevin), rattle (Gaussian displacements) "
            "or normal-modes (harmonic Boltzmann sampling). Positions in Angstrom."
        ),
    )
    p.add_argument("input", nargs="?", help="starting structures (omit with --smiles)")
    p.add_argument("--smiles", action="append", help="SMILES string (repeatable)")
    p.add_argument("--conformers", type=int, default=1, help="RDKit conformers per SMILES")
    p.add_argument("--mode", choices=["none", "md", "rattle", "normal-modes"], default="none")
    p.add_argument("--temperature", type=float, default=300.0, help="K (md, normal-modes)")
    p.add_argument("--steps", type=int, default=1000, help="MD steps")
    p.add_argument("--stride", type=int, default=10, help="keep every STRIDE-th MD step")
    p.add_argument("--timestep", type=float, default=0.5, help="MD time step, fs")
    p.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs")
    p.add_argument("-n", "--n-samples", type=int, default=10, help="samples per structure (rattle, normal-modes)")
    p.add_argument("--stdev", type=float, default=0.05, help="rattle displacement, A")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True, help="extxyz output")
    p.set_defaults(func=cmd_sample, reads=("input",), writes={"output": "file"})


def cmd_sample(args: argparse.Namespace) -> int:
    from psilearn.data import read_structures, write_structures
    from psilearn.label import sampling

    if bool(args.input) == bool(args.smiles):
        raise ValueError("give either an INPUT file or --smiles, not both/neither")
    if args.smiles:
        frames = []
        for smi in args.smiles:
            frames += sampling.conformers_from_smiles(smi, args.conformers, seed=args.seed)
    else:
        frames = read_structures(args.input)
    if args.mode == "md":
        frames = sampling.sample_many(frames, "md", temperature=args.temperature, steps=args.steps,
                                      stride=args.stride, timestep_fs=args.timestep,
                                      friction_per_fs=args.friction, seed=args.seed)
    elif args.mode == "rattle":
        frames = sampling.sample_many(frames, "rattle", n=args.n_samples, stdev=args.stdev, seed=args.seed)
    elif args.mode == "normal-modes":
        frames = sampling.sample_many(frames, "normal-modes", n=args.n_samples,
                                      temperature=args.temperature, seed=args.seed)
    write_structures(args.output, frames, format="extxyz")
    print(f"wrote {len(frames)} structures to {args.output}")
    return 0
