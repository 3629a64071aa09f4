"""Observables of one closed-shell molecule from its AO Hamiltonian F (predicted or labelled).

One generalised eigensolve ``scipy.linalg.eigh(F, S)`` (S from PySCF, :func:`overlap_matrix`) gives
the orbital energies and coefficients; aufbau occupation (2 electrons in each of the lowest N/2
orbitals) gives the density matrix D = C occ C^T (PySCF's ``make_rdm1`` layout), and from D the
Mulliken charges and the dipole moment in the labeler's conventions (:mod:`psilearn.label.multipoles`:
nuclei plus electrons, origin at the centre of mass, e*Bohr). With the labelled F the orbital energies
are the ``orbital_energies`` label and D, the charges and the dipole are the SCF's to its convergence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from psilearn.observe.hamiltonian.structure import aufbau, checked_fock, closed_shell_electrons, density_matrix, mol_of


@dataclass
class HamiltonianObservables:
    """What one Hamiltonian gives (atomic units).

    ``orbital_energies`` (n_ao,) Hartree ascending; ``mo_coeff`` (n_ao, n_ao), column k the orbital of
    ``orbital_energies[k]`` (C^T S C = 1); ``mo_occ`` (n_ao,) electrons per orbital (2 or 0);
    ``homo``, ``lumo``, ``gap`` Hartree (``lumo``/``gap`` NaN without virtual orbitals);
    ``density_matrix`` (n_ao, n_ao) electrons, D = C occ C^T; ``mulliken_charges`` (n_atoms,) e,
    summing to ``charge``; ``dipole`` (3,) e*Bohr, nuclei plus electrons about the centre of mass
    (the ``dipole_moment`` label's convention); ``n_electrons``, ``charge`` (e) and ``basis``."""

    orbital_energies: np.ndarray
    mo_coeff: np.ndarray
    mo_occ: np.ndarray
    homo: float
    lumo: float
    gap: float
    density_matrix: np.ndarray
    mulliken_charges: np.ndarray
    dipole: np.ndarray
    n_electrons: int
    charge: int
    basis: str


def derive(atoms: Atoms, fock, basis: str, charge: int | None = None) -> HamiltonianObservables:
    """The observables of ``atoms`` (Angstrom) with the AO Hamiltonian ``fock`` (Hartree; (n_ao, n_ao)
    or flat n_ao^2 row-major, PySCF's AO order in ``basis``; symmetrised). ``charge`` (e) overrides
    ``atoms.info['charge']`` (default 0). DataError (one line) for a periodic cell, an unknown basis,
    an element without functions in it, an F of the wrong size or with non-finite entries, or an open
    shell (odd electron count or multiplicity > 1)."""
    from psilearn.label.multipoles import dipole_moment, mulliken_charges
    from psilearn.label.orbitals import frontier

    mol = mol_of(atoms, basis, charge)
    n_el = closed_shell_electrons(mol, atoms.get_chemical_formula())
    f = checked_fock(fock, mol.nao, basis)
    s = mol.intor_symmetric("int1e_ovlp")
    energies, coeff, occ = aufbau(f, s, n_el)
    dm = density_matrix(coeff, occ)
    homo, lumo, gap = frontier(energies, occ > 0)
    return HamiltonianObservables(energies, coeff, occ, homo, lumo, gap, dm, mulliken_charges(mol, dm, s),
                                  dipole_moment(mol, dm), n_el, int(mol.charge), str(mol.basis))
