"""The labeler protocol, label keys, units and the per-structure error type.

A labeler turns an ASE ``Atoms`` (positions in Angstrom, ``atoms.info["charge"]`` and
``atoms.info["multiplicity"]`` optional) into a labelled copy. All labels are in atomic units
(Hartree, Bohr, elementary charge) unless the key's unit below says otherwise; tensors are
flattened row-major (a 3x3 tensor is 9 numbers).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
from ase import Atoms

#: Observables a labeler may be asked for.
OBSERVABLES: tuple[str, ...] = (
    "energy",
    "forces",
    "dipole",
    "quadrupole",
    "polarizability",
    "charges",
    "orbitals",
    "shielding",
    "apt",
    "density",
    "hamiltonian",
    "efg",
    "spin",
    "hfc",
    "gtensor",
    "jcoupling",
)

#: Units of every key a labeler may write (``info`` keys are per structure, ``arrays`` per atom).
#: Keys deliberately avoid ASE's calculator property names (energy, forces, dipole, charges), which
#: ASE would otherwise move into a SinglePointCalculator and interpret in eV.
UNITS: dict[str, str] = {
    "total_energy": "Hartree",
    "atomic_forces": "Hartree/Bohr, shape (n_atoms, 3)",
    "dipole_moment": "e*Bohr, shape (3,), origin: centre of mass",
    "quadrupole_moment": "e*Bohr^2, traceless Buckingham, 9 numbers row-major, origin: centre of mass",
    "alpha": "Bohr^3 (a.u.), static dipole polarizability, 9 numbers row-major",
    "alpha_ff_rel_diff": "dimensionless, max|alpha_cphf - alpha_ff| / max|alpha_cphf|",
    "alpha_fd_asymmetry": "Bohr^3 (a.u.), max |alpha_ab - alpha_ba| / 2 of a finite-field alpha before it was symmetrised "
    "(its finite-difference noise)",
    "mulliken_charges": "e, shape (n_atoms,)",
    "hirshfeld_charges": "e, shape (n_atoms,)",
    "orbital_energies": "Hartree, ascending (restricted); _alpha/_beta for open shell; with hamiltonian: "
                        "the eigenvalues of the stored F with S",
    "homo": "Hartree",
    "lumo": "Hartree",
    "gap": "Hartree",
    "dos": "states/Hartree, Gaussian-broadened on the grid linspace(dos_emin, dos_emax, dos_npts)",
    "dos_emin": "Hartree",
    "dos_emax": "Hartree",
    "dos_sigma": "Hartree (Gaussian standard deviation)",
    "pdos": "states/Hartree, shape (n_atoms, pdos_npts): Löwdin-projected DOS per atom on the dos grid with its width; "
            "summed over the atoms it is dos",
    "pdos_emin": "Hartree",
    "pdos_emax": "Hartree",
    "pdos_sigma": "Hartree (Gaussian standard deviation)",
    "orbital_atom_weights": "dimensionless, shape (n_atoms, n_orbitals): Löwdin weight sum_{mu on A} ((S^1/2 C)_{mu i})^2 of "
                            "orbital i on atom A, >= 0, each orbital's sum 1, in the order of orbital_energies; _alpha/_beta for open shell",
    "shielding": "ppm, GIAO NMR shielding tensor per atom, 9 numbers row-major sigma[a,b]",
    "apt": "e (a.u.), atomic polar tensor per atom, apt[k, 3*a+b] = d mu_a / d R_{k,b}",
    "density_coefficients": "e: coefficients c_P of rho(r) = sum_P c_P phi_P(r) over PySCF's normalised functions of "
                            "make_auxmol(mol, density_aux_basis), in that order (atom, shell, PySCF's m order)",
    "density_aux_basis": "PySCF name of the auxiliary basis of density_coefficients",
    "density_metric": "'coulomb' (c = (P|Q)^-1 (P|rho)) or 'overlap' (c = <P|Q>^-1 <P|rho>)",
    "density_aux_shells": "per element, the degree l of each auxiliary radial function in order: 'H:0,0,1;O:...'",
    "density_core_electrons": "e, per atom: electrons replaced by the atom's effective core potential (0 without one); "
                              "the fitted density holds the others, and its nuclear charges are Z - core",
    "density_electrons": "e, integral of the fitted density, sum_P c_P int phi_P",
    "density_fit_l2": "dimensionless, sqrt(int (rho_fit - rho)^2 / int rho^2) on the integration grid",
    "density_fit_l1": "dimensionless, int |rho_fit - rho| / N_electrons on the integration grid",
    "density_fit_dipole_error": "e*Bohr, |dipole of nuclei + fitted density - SCF dipole|",
    "hamiltonian": "Hartree: converged Fock/Kohn-Sham matrix F in PySCF's AO order, n_ao x n_ao row-major",
    "overlap": "dimensionless: AO overlap matrix S in PySCF's AO order, n_ao x n_ao row-major",
    "mo_occ": "electrons per orbital (PySCF's mo_occ), in the order of orbital_energies",
    "hamiltonian_basis": "PySCF name of the orbital basis of hamiltonian and overlap",
    "hamiltonian_shells": "per element, the degree l of each AO radial function in PySCF's order: 'H:0,0,1;O:...'",
    "efg": "E_h/(e*Bohr^2) (a.u.), electric field gradient V_ij at each nucleus, symmetric traceless, 9 row-major",
    "efg_cq": "MHz, quadrupolar coupling constant e*Q*V_zz/h for the isotope in efg_isotopes (0 if none)",
    "efg_eta": "dimensionless, EFG asymmetry (V_xx - V_yy)/V_zz with |V_zz| >= |V_yy| >= |V_xx|",
    "efg_quadrupolar": "1 if the atom's element has the quadrupolar isotope used for efg_cq, else 0",
    "efg_isotopes": "element:isotope of efg_cq, e.g. 'N:14N;H:2H' (Q from Pyykko 2018)",
    "mulliken_spins": "e, Mulliken population of rho_alpha - rho_beta per atom (sums to 2S)",
    "hirshfeld_spins": "e, Hirshfeld population of rho_alpha - rho_beta per atom (sums to 2S)",
    "hfc": "MHz, hyperfine coupling tensor (Fermi contact + spin dipolar) per atom, 9 row-major",
    "hfc_iso": "MHz, isotropic hyperfine coupling a_iso = trace(hfc)/3 per atom",
    "hfc_isotopes": "element:isotope of hfc, e.g. 'C:13C;H:1H' (g_N from PySCF's nucprop)",
    "gtensor": "dimensionless, electronic g-tensor (GIAO) per structure, 9 row-major g[a,b]",
    "g_iso": "dimensionless, trace(gtensor)/3",
    "delta_g": "ppm, g-shift tensor (gtensor - g_e*1)*1e6, 9 row-major",
    "delta_g_iso": "ppm, trace(delta_g)/3",
    "jcoupling_pairs": "0-based atom indices of the P coupled pairs (i < j, lexicographic), 2P ints: flattened (P, 2)",
    "jcoupling": "Hz, indirect spin-spin coupling tensor J (DSO+PSO+FC+SD) per pair, 9P row-major: flattened (P, 3, 3), "
                 "J[a, b] with a the Cartesian index of atom i, b of atom j",
    "jcoupling_iso": "Hz, isotropic coupling trace(J)/3 per pair, shape (P,)",
    "jcoupling_isotopes": "element:isotope of jcoupling, e.g. 'C:13C;H:1H' (g_N from PySCF's nucprop)",
    "jcoupling_cutoff": "Angstrom, the distance cutoff of jcoupling_pairs",
    "positions": "Angstrom (ASE convention)",
}

#: Key(s) written for each observable.
OBSERVABLE_KEYS: dict[str, tuple[str, ...]] = {
    "energy": ("total_energy",),
    "forces": ("atomic_forces",),
    "dipole": ("dipole_moment",),
    "quadrupole": ("quadrupole_moment",),
    "polarizability": ("alpha",),
    "charges": ("mulliken_charges", "hirshfeld_charges"),
    "orbitals": ("orbital_energies", "homo", "lumo", "gap", "dos", "pdos", "orbital_atom_weights"),
    "shielding": ("shielding",),
    "apt": ("apt",),
    "density": ("density_coefficients", "density_aux_basis", "density_metric", "density_aux_shells", "density_core_electrons",
                "density_electrons", "density_fit_l2", "density_fit_l1", "density_fit_dipole_error"),
    "hamiltonian": ("hamiltonian", "overlap", "orbital_energies", "mo_occ", "hamiltonian_basis", "hamiltonian_shells"),
    "efg": ("efg", "efg_cq", "efg_eta", "efg_quadrupolar", "efg_isotopes"),
    "spin": ("mulliken_spins", "hirshfeld_spins"),
    "hfc": ("hfc", "hfc_iso", "hfc_isotopes"),
    "gtensor": ("gtensor", "g_iso", "delta_g", "delta_g_iso"),
    "jcoupling": ("jcoupling_pairs", "jcoupling", "jcoupling_iso", "jcoupling_isotopes", "jcoupling_cutoff"),
}


class LabelError(Exception):
    """A per-structure failure (bad input, SCF not converged, ...). ``stage`` says where."""

    def __init__(self, message: str, stage: str = "label") -> None:
        super().__init__(message)
        self.stage = stage


@runtime_checkable
class Labeler(Protocol):
    """What every labeler provides. Implementations must be picklable (they travel to workers)."""

    observables: tuple[str, ...]

    @property
    def name(self) -> str:
        """Short human-readable method name, e.g. ``'pbe0/def2-svp'`` or ``'gfn2'``."""

    def spec(self) -> dict[str, Any]:
        """JSON-serialisable description of everything that changes the numbers."""

    def method_hash(self) -> str:
        """Stable hash of :meth:`spec` (method, basis, options, observables, code versions)."""

    def label(self, atoms: Atoms) -> Atoms:
        """Return a labelled copy of ``atoms``; raise :class:`LabelError` on a per-structure
        failure."""


def parse_observables(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``'energy,dipole'`` -> ``('energy', 'dipole')``, validated, de-duplicated, in given order."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for raw in items:
        name = raw.strip().lower()
        if not name:
            continue
        if name not in OBSERVABLES:
            raise ValueError(f"unknown observable {name!r}; choose from {', '.join(OBSERVABLES)}")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("no observables requested")
    return tuple(out)


def configure_threads(threads: int = 1) -> None:
    """Set BLAS/OpenMP environment before PySCF is imported in a worker (see TOOLCHAIN.md).

    Setting these after pyscf's OpenBLAS is loaded has no effect on that process, so call this
    first thing in every worker process. Existing values are respected.
    """
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(threads))


def finite_field_polarizability(dipole: Callable[[np.ndarray], np.ndarray], step: float) -> tuple[np.ndarray, float]:
    """Static polarizability (Bohr^3), shape (3, 3), from ``dipole(F)`` (e*Bohr, the dipole in a uniform
    field F, a.u.) by central differences alpha[a, b] = (mu_a(+F_b) - mu_a(-F_b)) / 2F (6 field calculations).

    alpha = -d^2E/dF_a dF_b is symmetric; the differences are not, by SCF and truncation noise, so the
    symmetric part is returned (it is also the more accurate estimate), with the largest half-difference
    |alpha_ab - alpha_ba| / 2 that was removed (Bohr^3): a measure of the finite-difference error."""
    alpha = np.zeros((3, 3))
    for b in range(3):
        f = np.zeros(3)
        f[b] = step
        alpha[:, b] = (np.asarray(dipole(f), float) - np.asarray(dipole(-f), float)) / (2.0 * step)
    return 0.5 * (alpha + alpha.T), float(np.abs(alpha - alpha.T).max() / 2.0)
