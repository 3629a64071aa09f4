#!/usr/bin/env python
"""Generate the small labelled data set shipped in ``psilearn/demo_data``.

What it does
------------
1. **Sampling.** For each molecule (water, ammonia, methanol, formaldehyde, built with
   ``ase.build.molecule``) run one Langevin MD trajectory with GFN2-xTB forces (tblite's ASE
   calculator): Maxwell-Boltzmann start at ``--temperature`` (500 K), ``--timestep`` 0.5 fs,
   friction ``--friction`` 0.02 fs^-1, ``--equilibration`` 2000 steps (1 ps) discarded, then one
   frame every ``--stride`` 200 steps (100 fs) until ``--per-molecule`` frames are collected.
   (Measured on GFN2 trajectories: at a 20 fs stride water's bend keeps the dipole-norm
   autocorrelation at ~0.8; at 100 fs with this friction, autocorrelations of the interatomic
   distances, dipole norm and energy are mostly below ~0.3.) Frames whose bond graph differs
   from the starting structure (a bond broken or formed; bonded = closer than 1.3 x the sum of
   ASE's covalent radii) are dropped and replaced by the next one. Each kept frame is centred
   on its centre of mass, given a uniformly random orientation (so the set does not carry the
   orientation of the ``ase.build`` template) and its positions are rounded to 1e-8 A, the
   precision extxyz writes, so the labels belong exactly to the stored geometry.
2. **Labelling.** Each frame is labelled with restricted Kohn-Sham DFT in PySCF
   (PBE0/def2-SVPD, DFT grid level ``--grid-level``, default 3):

   ``energy``          total energy, Hartree
   ``dipole``          dipole moment vector, atomic units (e * bohr), 3 numbers
   ``polarizability``  static dipole polarizability from analytic coupled-perturbed KS (CPHF),
                       atomic units (bohr^3), 9 numbers, row-major 3x3

   plus ``charge`` = 0, ``multiplicity`` = 1 and bookkeeping keys (``molecule``, ``md_step``).
3. **Checks.** A frame is skipped (and reported) if the SCF did not converge, the CPHF
   residual is above ``CPHF_MAX_RESIDUAL``, any label is not finite, or the CPHF tensor,
   computed *without* symmetrisation, is asymmetric by more than 1e-6 relative
   (max|a - a^T| / max|a|). Accepted tensors are then symmetrised exactly: (a + a^T) / 2.
4. **Output.** An extended-XYZ file (``ase.io.write(..., format="extxyz")``), positions in
   Angstrom, labels in ``atoms.info``; frames ordered by molecule then MD step.

Reproducibility: molecule ``k`` (its index in ``MOLECULES``) uses ``seed + k`` (``--seed``,
default 20250); ``numpy.random.SeedSequence(seed + k).spawn(2)`` gives two independent
generators, one for the MD (initial velocities and Langevin noise), one for the orientations.
MD is deterministic for a given seed, tblite version and thread count; labelling does not use
random numbers.

Threads: ``OMP_NUM_THREADS=1`` and ``OPENBLAS_CORETYPE=Haswell`` are set before NumPy/PySCF
are imported (one thread is fastest for molecules this small; the OpenBLAS shipped with the
PySCF wheel does not detect this CPU otherwise). Parallelism comes from ``--workers``
processes.

Usage (from the repository root)::

    python scripts/make_demo_data.py --out src/psilearn/demo_data/molecules.xyz \
        --per-molecule 75 --workers 1

Requires pyscf and tblite (the ``label`` extra), ase, numpy and tqdm.
"""

from __future__ import annotations

import os

# Must happen before numpy / pyscf / tblite are imported (they read these at load time).
os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

MOLECULES = ("H2O", "NH3", "CH3OH", "H2CO")  # ase.build.molecule names
MOLECULE_LABELS = {"H2O": "water", "NH3": "ammonia", "CH3OH": "methanol", "H2CO": "formaldehyde"}

XC = "PBE0"
BASIS = "def2-svpd"
SCF_CONV_TOL = 1e-10  # Hartree
SCF_MAX_CYCLE = 100
CPHF_TOL = 1e-10  # pyscf krylov tolerance
CPHF_MAX_CYCLE = 60
CPHF_MAX_RESIDUAL = 1e-5  # max_x ||residual_x|| / ||rhs_x|| of the CPHF equations
SYMMETRY_RTOL = 1e-6

BOND_MULT = 1.3  # bond if distance < BOND_MULT * (r_cov,i + r_cov,j)
POSITION_DECIMALS = 8  # extxyz writes positions with %16.8f: label exactly what is written


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def _bond_graph(atoms) -> set[tuple[int, int]]:
    """Set of bonded pairs (i < j): distance < BOND_MULT * (sum of covalent radii).

    ``skin=0`` matters: ASE's NeighborList adds its skin (0.3 A by default) to *each* radius,
    which would count e.g. methanol's C...H(O) at 1.85 A as a bond.
    """
    from ase.neighborlist import NeighborList, natural_cutoffs

    nl = NeighborList(
        natural_cutoffs(atoms, mult=BOND_MULT), skin=0.0, self_interaction=False, bothways=False
    )
    nl.update(atoms)
    pairs = set()
    for i in range(len(atoms)):
        for j in nl.get_neighbors(i)[0]:
            pairs.add((min(i, int(j)), max(i, int(j))))
    return pairs


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly distributed proper rotation matrix (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def sample_molecule(
    name: str,
    n_frames: int,
    seed: int,
    temperature: float,
    timestep_fs: float,
    friction_per_fs: float,
    n_equil: int,
    stride: int,
) -> tuple[list, int]:
    """GFN2-xTB Langevin MD for one molecule; return (frames, number of rejected frames)."""
    from ase import units
    from ase.build import molecule
    from ase.constraints import FixCom
    from ase.md import velocitydistribution as vd
    from ase.md.langevin import Langevin
    from tblite.ase import TBLite

    md_rng, rot_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    atoms = molecule(name)
    reference_bonds = _bond_graph(atoms)
    atoms.calc = TBLite(method="GFN2-xTB", charge=0, multiplicity=1, verbosity=0)
    # thermalize_momenta (ASE >= 3.29) replaces MaxwellBoltzmannDistribution
    thermalize = getattr(vd, "thermalize_momenta", None) or vd.MaxwellBoltzmannDistribution
    thermalize(atoms, temperature_K=temperature, rng=md_rng)
    vd.Stationary(atoms)
    vd.ZeroRotation(atoms)
    atoms.set_constraint(FixCom())  # instead of Langevin's deprecated fixcm=True
    dyn = Langevin(
        atoms,
        timestep=timestep_fs * units.fs,
        temperature_K=temperature,
        friction=friction_per_fs / units.fs,
        fixcm=False,
        rng=md_rng,
    )
    dyn.run(n_equil)

    frames, rejected, step = [], 0, n_equil
    max_attempts = 10 * n_frames
    while len(frames) < n_frames:
        if rejected > max_attempts:
            raise RuntimeError(f"{name}: too many frames with a changed bond graph")
        dyn.run(stride)
        step += stride
        if _bond_graph(atoms) != reference_bonds:
            rejected += 1
            continue
        frame = atoms.copy()
        frame.calc = None
        frame.set_constraint()
        frame.arrays.pop("momenta", None)  # velocities are not part of the data set
        pos = frame.get_positions() - frame.get_center_of_mass()
        pos = pos @ _random_rotation(rot_rng).T
        frame.set_positions(np.round(pos, POSITION_DECIMALS))
        frame.info = {"molecule": MOLECULE_LABELS[name], "md_step": step}
        frames.append(frame)
    return frames, rejected


# --------------------------------------------------------------------------------------------
# Labelling
# --------------------------------------------------------------------------------------------


@dataclass
class Task:
    index: int
    molecule: str
    symbols: list[str]
    positions: np.ndarray  # Angstrom


def _cphf_polarizability(mf) -> tuple[np.ndarray, float]:
    """Static polarizability (bohr^3) from analytic CPHF/CPKS, *not* symmetrised.

    Solves (e_a - e_i) U^x_ai + <a|x|i> + v[U^x]_ai = 0 for each Cartesian direction x (closed
    shell, field-independent basis) and returns alpha_xy = -4 sum_ai <a|x|i> U^y_ai together
    with the largest relative residual of the linear equations. At convergence alpha is
    symmetric; its asymmetry is therefore a check of the solution.
    """
    from pyscf.scf import cphf

    mol = mf.mol
    mo_energy, mo_coeff, mo_occ = mf.mo_energy, mf.mo_coeff, mf.mo_occ
    occ, vir = mo_occ > 0, mo_occ == 0
    orbo, orbv = mo_coeff[:, occ], mo_coeff[:, vir]
    nocc, nvir = orbo.shape[1], orbv.shape[1]

    charges = mol.atom_charges()
    origin = charges @ mol.atom_coords() / charges.sum()  # irrelevant for neutral molecules
    with mol.with_common_orig(origin):
        ao_r = mol.intor_symmetric("int1e_r", comp=3)
    h1 = np.einsum("xpq,pa,qi->xai", ao_r, orbv, orbo)

    vresp = mf.gen_response(hermi=1)  # Coulomb + exact exchange + XC kernel response

    def induced(u):
        u = u.reshape(-1, nvir, nocc)
        dm1 = np.einsum("xai,pa,qi->xpq", u, orbv, orbo)
        dm1 = (dm1 + dm1.transpose(0, 2, 1)) * 2.0  # symmetric, doubly occupied
        return np.einsum("xpq,pa,qi->xai", vresp(dm1), orbv, orbo)

    u, _ = cphf.solve(induced, mo_energy, mo_occ, h1, None, CPHF_MAX_CYCLE, CPHF_TOL)
    u = u.reshape(3, nvir, nocc)

    delta = mo_energy[vir][:, None] - mo_energy[occ][None, :]
    residual = delta * u + h1 + induced(u)
    rel_res = float(
        max(np.linalg.norm(residual[x]) / np.linalg.norm(h1[x]) for x in range(3))
    )
    alpha = -4.0 * np.einsum("xai,yai->xy", h1, u)
    return alpha, rel_res


def label_frame(task: Task, grid_level: int) -> dict:
    """PBE0/def2-SVPD energy, dipole and CPHF polarizability of one frame (or a failure)."""
    import warnings

    t0 = time.perf_counter()
    try:
        from pyscf import dft, gto

        mol = gto.M(
            atom=[(s, tuple(p)) for s, p in zip(task.symbols, task.positions)],
            unit="Angstrom",
            basis=BASIS,
            charge=0,
            spin=0,
            verbose=0,
        )
        mf = dft.RKS(mol, xc=XC)
        mf.grids.level = grid_level
        mf.conv_tol = SCF_CONV_TOL
        mf.max_cycle = SCF_MAX_CYCLE
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            energy = float(mf.kernel())
        if not mf.converged:
            return _failure(task, "SCF not converged", t0)
        dipole = np.asarray(mf.dip_moment(unit="AU", verbose=0), dtype=float)
        alpha, rel_res = _cphf_polarizability(mf)
    except Exception as exc:  # report and skip, never kill the whole run
        return _failure(task, f"{type(exc).__name__}: {exc}", t0)

    if not (np.isfinite(energy) and np.all(np.isfinite(dipole)) and np.all(np.isfinite(alpha))):
        return _failure(task, "non-finite label", t0)
    if rel_res > CPHF_MAX_RESIDUAL:
        return _failure(task, f"CPHF residual {rel_res:.2e} > {CPHF_MAX_RESIDUAL:.0e}", t0)
    asym = float(np.max(np.abs(alpha - alpha.T)) / np.max(np.abs(alpha)))
    if asym > SYMMETRY_RTOL:
        return _failure(task, f"polarizability asymmetry {asym:.2e} > {SYMMETRY_RTOL:.0e}", t0)
    alpha = 0.5 * (alpha + alpha.T)  # exactly symmetric after the check
    return {
        "index": task.index,
        "ok": True,
        "energy": energy,
        "dipole": dipole,
        "polarizability": alpha.reshape(9),
        "asymmetry": asym,
        "cphf_residual": rel_res,
        "seconds": time.perf_counter() - t0,
    }


def _failure(task: Task, reason: str, t0: float) -> dict:
    return {
        "index": task.index,
        "ok": False,
        "reason": f"frame {task.index} ({task.molecule}): {reason}",
        "seconds": time.perf_counter() - t0,
    }


def _label_star(args):
    return label_frame(*args)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output extxyz file")
    p.add_argument("--per-molecule", type=int, default=75, help="frames per molecule")
    p.add_argument("--workers", type=int, default=1, help="labelling processes (1 thread each)")
    p.add_argument("--seed", type=int, default=20250, help="base seed (molecule k uses seed+k)")
    p.add_argument("--temperature", type=float, default=500.0, help="MD temperature, K")
    p.add_argument("--timestep", type=float, default=0.5, help="MD time step, fs")
    p.add_argument("--friction", type=float, default=0.02, help="Langevin friction, 1/fs")
    p.add_argument("--equilibration", type=int, default=2000, help="MD steps discarded")
    p.add_argument("--stride", type=int, default=200, help="MD steps between kept frames")
    p.add_argument("--grid-level", type=int, default=3, help="PySCF DFT grid level")
    p.add_argument(
        "--molecules",
        nargs="+",
        default=list(MOLECULES),
        choices=list(MOLECULES),
        help="subset of molecules (ase.build names)",
    )
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import ase.io
    from tqdm import tqdm

    t_start = time.perf_counter()

    # 1. sampling (cheap: ~ms per GFN2 step), sequential and seeded per molecule
    frames = []
    for name in args.molecules:
        k = MOLECULES.index(name)
        t0 = time.perf_counter()
        mol_frames, rejected = sample_molecule(
            name,
            args.per_molecule,
            seed=args.seed + k,
            temperature=args.temperature,
            timestep_fs=args.timestep,
            friction_per_fs=args.friction,
            n_equil=args.equilibration,
            stride=args.stride,
        )
        print(
            f"sampled {len(mol_frames)} frames of {MOLECULE_LABELS[name]} "
            f"(seed {args.seed + k}, {rejected} rejected, {time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        frames.extend(mol_frames)

    # 2. labelling in a process pool
    tasks = [
        (Task(i, a.info["molecule"], a.get_chemical_symbols(), a.get_positions()), args.grid_level)
        for i, a in enumerate(frames)
    ]
    results = {}
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(processes=args.workers) as pool:
        for res in tqdm(
            pool.imap_unordered(_label_star, tasks, chunksize=1),
            total=len(tasks),
            desc="labelling",
            unit="frame",
            mininterval=5.0,
            file=sys.stderr,
        ):
            results[res["index"]] = res

    # 3. collect, report, write
    kept, failures = [], []
    per_mol_time: dict[str, list[float]] = {}
    for i, atoms in enumerate(frames):
        res = results[i]
        per_mol_time.setdefault(atoms.info["molecule"], []).append(res["seconds"])
        if not res["ok"]:
            failures.append(res["reason"])
            continue
        atoms.info.update(
            {
                "energy": res["energy"],
                "dipole": res["dipole"],
                "polarizability": res["polarizability"],
                "charge": 0,
                "multiplicity": 1,
            }
        )
        kept.append(atoms)

    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    ase.io.write(args.out, kept, format="extxyz")

    print("\nper-molecule summary (labelling seconds per frame, dipole norm / e bohr, "
          "isotropic alpha / bohr^3):")
    for name in args.molecules:
        label = MOLECULE_LABELS[name]
        sel = [a for a in kept if a.info["molecule"] == label]
        times = per_mol_time.get(label, [0.0])
        line = f"  {label:13s} kept {len(sel):3d}  time {np.mean(times):6.2f} s/frame"
        if sel:
            mu = np.array([np.linalg.norm(a.info["dipole"]) for a in sel])
            iso = np.array([np.trace(a.info["polarizability"].reshape(3, 3)) / 3 for a in sel])
            line += (
                f"  |mu| {mu.min():.4f}-{mu.max():.4f}"
                f"  alpha_iso {iso.min():.3f}-{iso.max():.3f}"
            )
        print(line)
    if kept:
        worst_asym = max(results[i]["asymmetry"] for i in results if results[i]["ok"])
        worst_res = max(results[i]["cphf_residual"] for i in results if results[i]["ok"])
        print(f"largest raw polarizability asymmetry {worst_asym:.1e}, "
              f"largest CPHF residual {worst_res:.1e}")
    print(f"failures: {len(failures)}")
    for reason in failures:
        print("  " + reason)
    print(f"wrote {len(kept)} frames to {args.out} "
          f"({os.path.getsize(args.out) / 1e6:.2f} MB) in {time.perf_counter() - t_start:.0f} s")
    return 0 if kept else 1


if __name__ == "__main__":
    sys.exit(main())
