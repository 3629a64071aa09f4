"""Hamiltonian labels: the converged Fock/Kohn-Sham matrix and the overlap in PySCF's AO order.

F = ``mf.get_fock()`` at the converged density matrix (no level shift, damping or DIIS), S =
``mf.get_ovlp()``, both Hartree / dimensionless, n_ao x n_ao flattened row-major. The stored
``orbital_energies`` are the eigenvalues of the stored F with S (``scipy.linalg.eigh(F, S)``), so the
file is self-consistent; they differ from PySCF's ``mf.mo_energy`` (the eigenvalues of the previous
iteration's F) by the SCF convergence (<= 1e-8 Ha with the labeler's orbital-gradient tolerance
1e-8 for hamiltonian labels, ``hamiltonian_conv_tol_grad``). ``mo_occ`` is PySCF's.
Restricted (closed-shell) SCFs only; structures above :data:`MAX_AO` functions are refused.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from psilearn.label.base import LabelError
from psilearn.targets.ao_basis import auxmol_shells
from psilearn.targets.density import format_shells

#: Largest basis labelled: two n_ao^2 float64 matrices per structure (64 MB at 2000) in memory and in
#: the database; extxyz exports move matrices above 300 x 300 to an npz beside the file
#: (:mod:`psilearn.data.sidecar`).
MAX_AO = 2000


def check_hamiltonian_mol(mol, basis: str) -> None:
    """LabelError (stage 'hamiltonian', one line) before any SCF for a molecule the labels cannot hold."""
    if mol.nao > MAX_AO:
        raise LabelError(f"hamiltonian labels hold at most {MAX_AO} atomic orbitals; this structure has "
                         f"{mol.nao} in {basis} (use a smaller basis or molecule)", "hamiltonian")
    if mol.spin != 0:
        raise LabelError("hamiltonian labels need a closed-shell (restricted) SCF; this structure has "
                         f"multiplicity {mol.spin + 1}", "hamiltonian")
    if mol.cart:
        raise LabelError("hamiltonian labels need spherical (not Cartesian) basis functions", "hamiltonian")


def hamiltonian_labels(mol, mf, basis: str) -> dict:
    """The ``hamiltonian`` labels of one converged restricted SCF (see :data:`psilearn.label.base.UNITS`)."""
    fock = np.asarray(mf.get_fock(), dtype=np.float64)
    overlap = np.asarray(mf.get_ovlp(), dtype=np.float64)
    if fock.ndim != 2:
        raise LabelError("hamiltonian labels need a restricted SCF", "hamiltonian")
    fock = 0.5 * (fock + fock.T)
    energies = scipy.linalg.eigh(fock, overlap, eigvals_only=True)
    return {
        "hamiltonian": fock.reshape(-1),
        "overlap": overlap.reshape(-1),
        "orbital_energies": energies,
        "mo_occ": np.asarray(mf.mo_occ, dtype=np.float64),
        "hamiltonian_basis": basis,
        "hamiltonian_shells": format_shells(auxmol_shells(mol)),
    }
