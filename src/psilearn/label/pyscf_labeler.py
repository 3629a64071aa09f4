"""PySCF labeler: HF or any DFT functional, any basis PySCF knows, optional density fitting.

Charge and spin multiplicity come from ``atoms.info['charge']`` / ``atoms.info['multiplicity']``
(multiplicity defaults to 1 for even, 2 for odd electron counts; open shells use UHF/UKS).
All labels are in atomic units; see :data:`psilearn.label.base.UNITS` for keys and shapes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from psilearn.data.periodicity import is_molecule
from psilearn.label.base import LabelError, configure_threads, parse_observables
from psilearn.label.hashing import code_version, method_hash
from psilearn.label.jcoupling import DEFAULT_CUTOFF
from psilearn.label.orbitals import DOSGrid, orbital_labels
from psilearn.label.periodic import DEFAULT_EXP_TO_DISCARD, DEFAULT_KPOINT_LENGTH
from psilearn.label.response import atomic_polar_tensors, cphf_polarizability, finite_field_polarizability
from psilearn.label.validate import build_quietly, check_electrons, check_geometry, check_periodicity
from psilearn.targets.ao_basis import DEFAULT_AUX_BASIS, basis_has_ecps, check_aux_basis, check_metric, ecp_table

#: Bumped whenever the meaning of a stored label changes (part of the method hash).
LABEL_SCHEMA = 1

_HF_NAMES = {"hf", "rhf", "uhf", "scf"}

#: The SCF retry ladder, in order. Each rung starts from a fresh SCF object.
SCF_LADDER: tuple[tuple[str, dict[str, Any]], ...] = (
    ("default", {}),
    ("level_shift", {"level_shift": 0.5}),
    ("damping", {"damp": 0.5, "diis_start_cycle": 10}),
    ("newton", {}),
)


@dataclass
class PySCFLabeler:
    """Label structures with PySCF.

    Parameters
    ----------
    xc: ``'hf'`` or any libxc/XCFun functional name PySCF accepts (``'pbe0'``, ``'b3lyp'``, ...).
    basis: any basis name PySCF knows (``'sto-3g'``, ``'def2-svp'``, ``'aug-cc-pvdz'``, ...).
    observables: subset of :data:`psilearn.label.base.OBSERVABLES`.
    density_fit: use density fitting (RI-J/K) with ``auxbasis`` (default: PySCF's choice).
    grid_level: DFT grid level (also used for Hirshfeld integration with HF).
    conv_tol: SCF energy convergence (Ha). max_cycle: SCF iterations per ladder rung.
    polarizability_mode: ``'analytic'`` (CPHF, finite field if CPHF fails), ``'finite_field'``,
        or ``'both'`` (CPHF stored, finite field computed as cross-check: ``alpha_ff_rel_diff``).
    field_step: finite-field step (a.u. of field strength). apt_step: displacement (Bohr).
    dos: energy grid and broadening for the DOS (Hartree).
    density_aux_basis, density_metric: auxiliary basis (a PySCF name) and metric (``coulomb`` or
        ``overlap``) of the ``density`` labels (:mod:`psilearn.label.density`).
    hamiltonian_conv_tol_grad: SCF orbital-gradient convergence when ``hamiltonian`` is labelled.
    jcoupling_cutoff: pair distance cutoff (Angstrom) of ``jcoupling`` (:mod:`psilearn.label.jcoupling`).
    kmesh, kpoint_length, exp_to_discard: crystals only (:mod:`psilearn.label.periodic`): the k-mesh,
        or the length (Angstrom) the Born-von Karman supercell must reach; primitives more diffuse
        than exp_to_discard (Bohr^-2) are dropped.
    threads: BLAS/OpenMP threads inside one label (use 1 and parallelise over processes).
    """

    xc: str = "hf"
    basis: str = "def2-svp"
    observables: tuple[str, ...] = ("energy",)
    density_fit: bool = False
    auxbasis: str | None = None
    grid_level: int = 3
    conv_tol: float = 1e-10
    max_cycle: int = 100
    polarizability_mode: str = "analytic"
    field_step: float = 1e-3
    apt_step: float = 1e-3
    dos: DOSGrid = field(default_factory=DOSGrid)
    density_aux_basis: str = DEFAULT_AUX_BASIS
    density_metric: str = "coulomb"
    hamiltonian_conv_tol_grad: float = 1e-8
    jcoupling_cutoff: float = DEFAULT_CUTOFF
    kmesh: tuple[int, int, int] | None = None
    kpoint_length: float = DEFAULT_KPOINT_LENGTH
    exp_to_discard: float = DEFAULT_EXP_TO_DISCARD
    threads: int = 1
    max_memory_mb: int = 2000

    def __post_init__(self) -> None:
        self.observables = parse_observables(self.observables)
        self.xc = self.xc.strip().lower()
        self.basis = self.basis.strip().lower()
        if self.polarizability_mode not in ("analytic", "finite_field", "both"):
            raise ValueError(
                "polarizability_mode must be 'analytic', 'finite_field' or 'both', "
                f"got {self.polarizability_mode!r}"
            )
        if isinstance(self.dos, dict):
            self.dos = DOSGrid(**self.dos)
        self.density_aux_basis = check_aux_basis(self.density_aux_basis)  # unknown names fail here
        self.density_metric = check_metric(self.density_metric)
        if not self.jcoupling_cutoff > 0:
            raise ValueError(f"jcoupling_cutoff must be > 0 Angstrom, got {self.jcoupling_cutoff}")
        self.jcoupling_cutoff = float(self.jcoupling_cutoff)
        if self.kmesh is not None:
            self.kmesh = tuple(int(n) for n in self.kmesh)  # type: ignore[assignment]
            if len(self.kmesh) != 3 or min(self.kmesh) < 1:
                raise ValueError(f"kmesh must be three integers >= 1, got {self.kmesh}")
        if not self.kpoint_length > 0 or not self.exp_to_discard >= 0:
            raise ValueError(f"kpoint_length must be > 0 Angstrom and exp_to_discard >= 0, got {self.kpoint_length}, {self.exp_to_discard}")

    # ---- identity ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return f"{self.xc}/{self.basis}" + ("/df" if self.density_fit else "")

    @property
    def is_hf(self) -> bool:
        return self.xc in _HF_NAMES

    def spec(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("threads")
        d.pop("max_memory_mb")
        d["dos"] = self.dos.as_dict()
        d["observables"] = sorted(self.observables)
        if "density" not in self.observables:
            d.pop("density_aux_basis")
            d.pop("density_metric")
        if self.is_hf and "density" not in self.observables:  # the density fit's errors use a grid
            d.pop("grid_level")
        if "hamiltonian" not in self.observables:
            d.pop("hamiltonian_conv_tol_grad")
        if "jcoupling" not in self.observables:
            d.pop("jcoupling_cutoff")
        if "polarizability" not in self.observables:
            d.pop("polarizability_mode")
            d.pop("field_step")
        elif self.polarizability_mode != "analytic":  # finite-field alpha is now stored symmetrised: a new
            d["alpha"] = "symmetrised"  # hash (CPHF-only stores, mode analytic, keep theirs)
        if "apt" not in self.observables:
            d.pop("apt_step")
        if "orbitals" not in self.observables:
            d.pop("dos")
        if basis_has_ecps(self.basis):  # labels made with the basis's ECPs: a new hash, so that stores labelled
            d["ecp"] = "basis"  # before (all Z electrons of heavy atoms in a valence-only basis) are never reused
        # crystal options: in the hash only when changed, so molecular hashes stay as they were
        for name, default in (("kmesh", None), ("kpoint_length", DEFAULT_KPOINT_LENGTH), ("exp_to_discard", DEFAULT_EXP_TO_DISCARD)):
            if d[name] == default:
                d.pop(name)
            elif name == "kmesh":
                d[name] = list(d[name])
        d.update(
            code="pyscf",
            schema=LABEL_SCHEMA,
            versions={
                "pyscf": code_version("pyscf"),
                "pyscf-properties": code_version("pyscf-properties"),
            },
        )
        return d

    def method_hash(self) -> str:
        return method_hash(self.spec())

    # ---- building blocks ---------------------------------------------------------------------
    def build_mol(self, atoms: Atoms):
        """A built ``pyscf.gto.Mole`` (Angstrom input); raises :class:`LabelError` on bad input."""
        check_geometry(atoms)
        charge, mult, _ = check_electrons(atoms)
        from pyscf import gto

        mol = gto.Mole()
        mol.atom = [(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)]
        mol.unit = "Angstrom"
        mol.basis = self.basis
        # the ECPs that go with the basis (def2: Rb onwards); without them PySCF would put all Z
        # electrons into a basis made for the valence electrons only
        mol.ecp = ecp_table(self.basis, atoms.get_chemical_symbols())
        mol.charge = charge
        mol.spin = mult - 1
        mol.verbose = 0
        mol.max_memory = self.max_memory_mb
        build_quietly(mol, self.basis, "molecule")
        return mol

    def make_scf(self, mol):
        """An unconverged SCF object for ``mol`` (a molecule, or a crystal's ``pyscf.pbc`` cell)
        configured from this labeler."""
        from pyscf import dft, scf

        if hasattr(mol, "lattice_vectors"):
            from psilearn.label.periodic import make_periodic_scf

            return make_periodic_scf(self, mol)
        open_shell = mol.spin != 0
        if self.is_hf:
            mf = scf.UHF(mol) if open_shell else scf.RHF(mol)
        else:
            mf = dft.UKS(mol) if open_shell else dft.RKS(mol)
            mf.xc = self.xc
            mf.grids.level = self.grid_level
        if self.density_fit:
            mf = mf.density_fit(auxbasis=self.auxbasis)
        mf.conv_tol = self.conv_tol
        if "hamiltonian" in self.observables:  # F itself is the label: converge the orbital gradient
            mf.conv_tol_grad = self.hamiltonian_conv_tol_grad
        mf.max_cycle = self.max_cycle
        mf.verbose = 0
        return mf

    def run_scf(self, mol):
        """Converge the SCF, walking :data:`SCF_LADDER` until one rung converges.

        Returns ``(mf, rung_name)``; raises :class:`LabelError` (stage ``'scf'``) listing every
        attempt when all fail.
        """
        attempts: list[str] = []
        dm_last = None
        for rung, options in SCF_LADDER:
            try:
                mf = self.make_scf(mol)
                if rung == "newton":
                    newton = mf.newton()
                    newton.max_cycle = self.max_cycle
                    newton.kernel(dm0=dm_last)
                    mf = newton
                else:
                    for key, value in options.items():
                        setattr(mf, key, value)
                    mf.kernel(dm0=dm_last)
                if mf.converged:
                    if rung != "default":  # polish with a plain solver (no shift/damping)
                        plain = self.make_scf(mol)
                        plain.kernel(dm0=mf.make_rdm1())
                        if plain.converged:
                            mf = plain
                    return mf, rung
                attempts.append(f"{rung}: not converged in {self.max_cycle} cycles (E={mf.e_tot:.6f})")
            except Exception as exc:  # numerical failure inside PySCF: try the next rung
                attempts.append(f"{rung}: {type(exc).__name__}: {exc}")
        raise LabelError("SCF failed after " + "; ".join(attempts), stage="scf")

    # ---- observables -------------------------------------------------------------------------
    def polarizability_cphf(self, mf) -> np.ndarray:
        """Static polarizability (Bohr^3), (3, 3), analytic CPHF/CPKS (:mod:`psilearn.label.response`)."""
        return cphf_polarizability(mf)

    def polarizability_finite_field(self, mf) -> tuple[np.ndarray, float]:
        """Static polarizability (Bohr^3), (3, 3), by central differences of the dipole in uniform fields, symmetrised,
        and the asymmetry removed (Bohr^3); 6 extra SCFs (:mod:`psilearn.label.response`)."""
        return finite_field_polarizability(self, mf)

    def atomic_polar_tensors(self, mol, mf) -> np.ndarray:
        """APT (e), (n_atoms, 3, 3), apt[k, a, b] = d mu_a / d R_{k,b} (:mod:`psilearn.label.response`)."""
        return atomic_polar_tensors(self, mol, mf)

    def grids(self, mol, mf):
        """The SCF's integration grid (built), or a level-``grid_level`` grid for HF."""
        grids = getattr(mf, "grids", None)
        if grids is None:
            from pyscf.dft import gen_grid

            grids = gen_grid.Grids(mol)
            grids.level = self.grid_level
        if grids.coords is None:
            grids.build()
        return grids

    def hirshfeld(self, mol, mf) -> np.ndarray:
        from psilearn.label.hirshfeld import hirshfeld_charges

        return hirshfeld_charges(mol, mf.make_rdm1(), self.grids(mol, mf))

    # ---- the protocol ------------------------------------------------------------------------
    def label(self, atoms: Atoms) -> Atoms:
        """Labelled copy of ``atoms`` (keys in :data:`psilearn.label.base.UNITS`)."""
        configure_threads(self.threads)
        from pyscf import lib

        from psilearn.label.density import core_electrons, density_auxmol, density_labels
        from psilearn.label.hamiltonian import check_hamiltonian_mol, hamiltonian_labels
        from psilearn.label.multipoles import dipole_moment, mulliken_charges, quadrupole_moment
        from psilearn.label.projection import pyscf_projection_labels
        from psilearn.targets.density import CORE_KEY

        lib.num_threads(self.threads)
        t0 = time.perf_counter()
        atoms = check_periodicity(atoms, self.name, periodic_ok=True)
        if not is_molecule(atoms):
            return self._label_crystal(atoms, t0)
        mol = self.build_mol(atoms)
        auxmol = density_auxmol(mol, self.density_aux_basis) if "density" in self.observables else None
        if "hamiltonian" in self.observables:
            check_hamiltonian_mol(mol, self.basis)
        if "jcoupling" in self.observables:  # refuse before the SCF: open shell, ECP, no pair
            from psilearn.label.jcoupling import check_jcoupling_mol

            check_jcoupling_mol(mol, self.jcoupling_cutoff)
        mf, rung = self.run_scf(mol)
        out = atoms.copy()
        out.calc = None
        info, arrays = out.info, out.arrays
        info["charge"] = int(mol.charge)
        info["multiplicity"] = int(mol.spin) + 1
        info["scf_strategy"] = rung
        dm = mf.make_rdm1()
        obs = self.observables
        if "energy" in obs:
            info["total_energy"] = float(mf.e_tot)
        if "forces" in obs:
            try:
                g = mf.nuc_grad_method()
                g.verbose = 0
                arrays["atomic_forces"] = -np.asarray(g.kernel(), dtype=float)
            except Exception as exc:
                raise LabelError(f"gradient failed: {type(exc).__name__}: {exc}", "forces") from None
        if "dipole" in obs:
            info["dipole_moment"] = dipole_moment(mol, dm)
        if "quadrupole" in obs:
            info["quadrupole_moment"] = quadrupole_moment(mol, dm).reshape(9)
        if "polarizability" in obs:
            info.update(self._polarizability(mf))
        if "charges" in obs:
            arrays["mulliken_charges"] = mulliken_charges(mol, dm, mf.get_ovlp())
            arrays["hirshfeld_charges"] = self.hirshfeld(mol, mf)
        ham = hamiltonian_labels(mol, mf, self.basis) if "hamiltonian" in obs else {}
        if "orbitals" in obs:  # with hamiltonian: the eigenvalues of the stored F (one set of energies)
            info.update(orbital_labels(ham.get("orbital_energies", mf.mo_energy), mf.mo_occ, self.dos))
            arrays.update(pyscf_projection_labels(info, mol, mf, ham, self.dos))
        info.update(ham)
        if "shielding" in obs:
            from psilearn.label.nmr import shielding_tensors

            arrays["shielding"] = shielding_tensors(mf).reshape(len(atoms), 9)
        if "apt" in obs:
            arrays["apt"] = self.atomic_polar_tensors(mol, mf).reshape(len(atoms), 9)
        if "density" in obs:
            info.update(density_labels(mol, dm, auxmol, self.density_aux_basis, self.density_metric,
                                       self.grids(mol, mf)))
            arrays[CORE_KEY] = core_electrons(mol)
        if any(o in obs for o in ("efg", "spin", "hfc", "gtensor")):
            from psilearn.label.magnetic import magnetic_labels

            mag_info, mag_arrays = magnetic_labels(mf, obs, self.grids(mol, mf) if "spin" in obs else None)
            info.update(mag_info)
            arrays.update(mag_arrays)
        if "jcoupling" in obs:
            from psilearn.label.jcoupling import jcoupling_labels

            info.update(jcoupling_labels(mf, self.jcoupling_cutoff))
        info["label_seconds"] = time.perf_counter() - t0
        return out

    def _label_crystal(self, atoms: Atoms, t0: float) -> Atoms:
        """Labelled copy of a crystal (:mod:`psilearn.label.periodic`)."""
        from psilearn.label.periodic import build_cell, check_crystal, crystal_labels

        check_crystal(atoms, self.observables, self.name)
        check_geometry(atoms)
        charge, mult, _ = check_electrons(atoms)
        mf, rung = self.run_scf(build_cell(self, atoms, charge, mult - 1))
        out = atoms.copy()
        out.calc = None
        info, arrays = crystal_labels(self, mf)
        out.info.update(info, charge=charge, multiplicity=mult, scf_strategy=rung)
        out.arrays.update(arrays)
        out.info["label_seconds"] = time.perf_counter() - t0
        return out

    def _polarizability(self, mf) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.polarizability_mode == "finite_field":
            alpha, out["alpha_fd_asymmetry"] = self.polarizability_finite_field(mf)
            out["alpha"] = alpha.reshape(9)
            out["alpha_method"] = "finite_field"
            return out
        try:
            alpha = self.polarizability_cphf(mf)
            out["alpha_method"] = "cphf"
        except LabelError:
            raise
        except Exception as exc:  # CPHF unavailable/failed: finite field is the fallback
            alpha, out["alpha_fd_asymmetry"] = self.polarizability_finite_field(mf)
            out["alpha_method"] = f"finite_field (CPHF failed: {type(exc).__name__})"
            out["alpha"] = alpha.reshape(9)
            return out
        out["alpha"] = alpha.reshape(9)
        if self.polarizability_mode == "both":
            ff, out["alpha_fd_asymmetry"] = self.polarizability_finite_field(mf)
            out["alpha_ff"] = ff.reshape(9)
            out["alpha_ff_rel_diff"] = float(np.abs(alpha - ff).max() / np.abs(alpha).max())
        return out
