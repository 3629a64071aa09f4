"""The checked inputs of every observable derived from an AO Hamiltonian: the molecule, its PySCF
Mole in the orbital basis, the overlap and the Fock/Kohn-Sham matrix F.

F is (n_ao, n_ao) in Hartree (or flat, n_ao^2 row-major, as the ``hamiltonian`` label) in PySCF's AO
order for ``mol_of(atoms, basis)``, the order of the labels (:mod:`psilearn.label.hamiltonian`).
Positions are in Angstrom as in the ASE Atoms; PySCF works in Bohr. Molecules and closed shells only.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.data.electronic_state import with_charge
from psilearn.data.periodicity import is_molecule, periodicity_applied
from psilearn.errors import DataError


def mol_of(atoms: Atoms, basis: str, charge: int | None = None):
    """The built ``pyscf.gto.Mole`` of ``atoms`` (Angstrom) in the orbital basis ``basis``, exactly as
    the labeler builds it (:meth:`psilearn.label.pyscf_labeler.PySCFLabeler.build_mol`: charge and
    multiplicity from ``atoms.info``, ``charge`` (e) overriding it), hence in the labels' AO order.

    DataError (one line, naming the formula) for a periodic cell, an impossible charge/multiplicity,
    an unknown basis or an element without functions in it."""
    from psilearn.label.pyscf_labeler import PySCFLabeler
    from psilearn.observe.scf_guess import labeler_mol

    if not isinstance(atoms, Atoms):
        raise DataError(f"expected an ase.Atoms, got {type(atoms).__name__}")
    atoms = with_charge(periodicity_applied(atoms), charge)
    if not is_molecule(atoms):
        raise DataError(f"{atoms.get_chemical_formula()}: observables derived from a Hamiltonian are for molecules only, but "
                        "this structure is periodic (pbc with a cell); set pbc=\"F F F\" to treat it as an isolated molecule")
    return labeler_mol(PySCFLabeler(basis=str(basis)), atoms)


def overlap_matrix(atoms: Atoms, basis: str) -> np.ndarray:
    """The AO overlap S (dimensionless), (n_ao, n_ao), PySCF's ``int1e_ovlp`` in the labels' AO order
    (the ``overlap`` label of ``psilearn label --observables hamiltonian``)."""
    return np.asarray(mol_of(atoms, basis).intor_symmetric("int1e_ovlp"), dtype=np.float64)


def closed_shell_electrons(mol, formula: str) -> int:
    """The electron count of a closed-shell ``mol``; DataError (one line, starting with ``formula``)
    for an odd count or a multiplicity > 1."""
    n, mult = int(mol.nelectron), int(mol.spin) + 1
    if n % 2 or mult != 1:
        raise DataError(f"{formula}: {n} electrons, multiplicity {mult}: "
                        "observables from a Hamiltonian need a closed shell (an even electron count, multiplicity 1; "
                        "open shells would need F_alpha and F_beta)")
    return n


def checked_fock(fock, n_ao: int, basis: str = "") -> np.ndarray:
    """F (Hartree) as a symmetric (n_ao, n_ao) float64 array, (F + F^T) / 2 of the input (flat
    n_ao^2 row-major or square); DataError (one line) for a size that does not match the structure
    in ``basis`` or non-finite entries."""
    try:
        f = np.asarray(fock, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("the Hamiltonian is not numeric") from None
    if f.size != n_ao * n_ao:
        side = int(round(np.sqrt(f.size)))
        shape = f"{side}x{side}" if side * side == f.size else f"{f.size} entries"
        raise DataError(f"the Hamiltonian is {shape}, but this structure has {n_ao} atomic orbitals"
                        f"{f' in basis {basis!r}' if basis else ''} (a Hamiltonian of another structure or basis?)")
    f = f.reshape(n_ao, n_ao)
    if not np.all(np.isfinite(f)):
        raise DataError("the Hamiltonian has non-finite entries")
    return 0.5 * (f + f.T)


def aufbau(fock: np.ndarray, overlap: np.ndarray, n_electrons: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(orbital energies (n_ao,) Hartree ascending, MO coefficients C (n_ao, n_ao) with C^T S C = 1,
    occupations (n_ao,): 2 for the lowest n_electrons / 2, else 0) of ``scipy.linalg.eigh(F, S)``."""
    import scipy.linalg

    energies, coeff = scipy.linalg.eigh(fock, overlap)
    occ = np.zeros(len(energies))
    if n_electrons // 2 > len(energies):
        raise DataError(f"{n_electrons} electrons do not fit in {len(energies)} orbitals")
    occ[: n_electrons // 2] = 2.0
    return energies, coeff, occ


def density_matrix(coeff: np.ndarray, occ: np.ndarray) -> np.ndarray:
    """D = C diag(occ) C^T (electrons), (n_ao, n_ao): PySCF's ``make_rdm1`` layout (Tr(D S) = N)."""
    return (coeff * occ) @ coeff.T
