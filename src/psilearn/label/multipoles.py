"""Electric multipoles and Mulliken charges from a PySCF density matrix (atomic units, explicit origin)."""

from __future__ import annotations

import numpy as np


def centre_of_mass_bohr(mol) -> np.ndarray:
    """Centre of mass (Bohr), shape (3,), with isotope-averaged masses."""
    masses = mol.atom_mass_list(isotope_avg=True)
    return masses @ mol.atom_coords() / masses.sum()


def _total_dm(dm: np.ndarray) -> np.ndarray:
    dm = np.asarray(dm)
    return dm[0] + dm[1] if dm.ndim == 3 else dm


def mulliken_charges(mol, dm: np.ndarray, overlap: np.ndarray | None = None) -> np.ndarray:
    """Mulliken charges (e), shape (n_atoms,): Z_A - sum_{mu in A} (D S)_{mu mu} (PySCF's ``mulliken_pop``;
    ``dm`` restricted (n_ao, n_ao) or the (2, n_ao, n_ao) spin pair, ``overlap`` default ``mol.intor('int1e_ovlp')``)."""
    from pyscf import scf

    s = mol.intor_symmetric("int1e_ovlp") if overlap is None else overlap
    return np.asarray(scf.hf.mulliken_pop(mol, _total_dm(dm), s, verbose=0)[1], dtype=float)


def dipole_moment(mol, dm: np.ndarray, origin: np.ndarray | None = None) -> np.ndarray:
    """Dipole moment (e*Bohr), shape (3,), about ``origin`` (Bohr; default: centre of mass).

    For a neutral molecule the result does not depend on the origin.
    """
    origin = centre_of_mass_bohr(mol) if origin is None else np.asarray(origin, dtype=float)
    dm = _total_dm(dm)
    with mol.with_common_orig(origin):
        r = mol.intor_symmetric("int1e_r", comp=3)
    electronic = -np.einsum("xij,ji->x", r, dm).real
    nuclear = mol.atom_charges() @ (mol.atom_coords() - origin)
    return nuclear + electronic


def quadrupole_moment(mol, dm: np.ndarray, origin: np.ndarray | None = None) -> np.ndarray:
    """Traceless (Buckingham) quadrupole Theta_ab = 1/2 sum q (3 r_a r_b - r^2 delta_ab), in
    e*Bohr^2, shape (3, 3), about ``origin`` (Bohr; default: centre of mass)."""
    origin = centre_of_mass_bohr(mol) if origin is None else np.asarray(origin, dtype=float)
    dm = _total_dm(dm)
    with mol.with_common_orig(origin):
        rr = mol.intor_symmetric("int1e_rr", comp=9).reshape(3, 3, mol.nao, mol.nao)
    second = -np.einsum("abij,ji->ab", rr, dm).real
    rel = mol.atom_coords() - origin
    second += np.einsum("k,ka,kb->ab", mol.atom_charges().astype(float), rel, rel)
    return 0.5 * (3.0 * second - np.trace(second) * np.eye(3))
