"""Hirshfeld charges from free-atom densities on a molecular integration grid (PySCF).

The promolecule is built from spherically averaged, fractional-occupation Hartree-Fock densities
of the neutral free atoms in the same basis (``pyscf.scf.atom_hf.get_atm_nrhf``, the densities
PySCF uses for its ``'atom'`` initial guess). The molecular density may come from any HF/DFT
calculation. Charges are in e and sum to the total charge up to grid error.
"""

from __future__ import annotations

import numpy as np


def free_atom_density_matrices(mol) -> dict[str, np.ndarray]:
    """Spherically averaged free-atom density matrices, keyed by the atom symbols of ``mol``
    (shape (nao_atom, nao_atom), in the atom's own basis)."""
    from pyscf.scf import atom_hf

    out: dict[str, np.ndarray] = {}
    for symbol, (_, _, mo_coeff, mo_occ) in atom_hf.get_atm_nrhf(mol).items():
        out[symbol] = (mo_coeff * mo_occ) @ mo_coeff.T
    return out


def _atom_mol(mol, ia: int):
    """A one-atom ``gto.Mole`` for atom ``ia`` of ``mol`` with the same basis/ECP."""
    from pyscf import gto

    symbol = mol.atom_symbol(ia)
    atm = gto.Mole()
    atm.atom = [(symbol, mol.atom_coord(ia))]
    atm.unit = "Bohr"
    atm.basis = {symbol: mol._basis[symbol]}
    if mol._ecp and symbol in mol._ecp:
        atm.ecp = {symbol: mol._ecp[symbol]}
    atm.spin = None  # let PySCF pick the minimal spin parity; the density matrix is given
    atm.verbose = 0
    atm.build()
    return atm


def hirshfeld_charges(mol, dm: np.ndarray, grids, block: int = 20000) -> np.ndarray:
    """Hirshfeld partial charges (e), shape (n_atoms,).

    Parameters
    ----------
    mol: pyscf ``Mole``.
    dm: total density matrix in the AO basis (nao, nao); for open shells pass alpha + beta.
    grids: a built ``pyscf.dft.gen_grid.Grids`` for ``mol`` (the DFT grid, or a fresh one for HF).
    """
    dm = np.asarray(dm)
    if dm.ndim == 3:
        dm = dm[0] + dm[1]
    return mol.atom_charges().astype(float) - hirshfeld_populations(mol, dm, grids, block)


def promolecule(mol) -> list[tuple[object, np.ndarray]]:
    """The free atoms of ``mol``: per atom, its one-atom Mole (same basis) and spherically averaged
    free-atom density matrix, for :func:`hirshfeld_shares`."""
    free = free_atom_density_matrices(mol)
    return [(_atom_mol(mol, ia), free[mol.atom_symbol(ia)]) for ia in range(mol.natm)]


def hirshfeld_shares(free_atoms, coords: np.ndarray) -> np.ndarray:
    """Hirshfeld weights w_A(r) = rho_A^free(r) / sum_B rho_B^free(r), shape (n_atoms, n_points), at
    ``coords`` (Bohr) for the :func:`promolecule` ``free_atoms`` (0 where the promolecule vanishes)."""
    from pyscf.dft import numint

    rho_free = np.array([numint.eval_rho(a, numint.eval_ao(a, coords), d) for a, d in free_atoms])
    rho_free = np.clip(rho_free, 0.0, None)
    total = rho_free.sum(axis=0)
    return np.divide(rho_free, total, out=np.zeros_like(rho_free), where=total > 1e-30)


def hirshfeld_populations(mol, dm: np.ndarray, grids, block: int = 20000) -> np.ndarray:
    """Hirshfeld populations (e), shape (n_atoms,), of the density of the 2-D AO matrix ``dm``
    (the total density, or the spin density alpha - beta), shared by the free-atom weights."""
    from pyscf.dft import numint

    free_atoms = promolecule(mol)
    pops = np.zeros(mol.natm)
    coords, weights = grids.coords, grids.weights
    for start in range(0, len(weights), block):
        c = coords[start : start + block]
        w = weights[start : start + block]
        rho = numint.eval_rho(mol, numint.eval_ao(mol, c), dm)
        pops += hirshfeld_shares(free_atoms, c) @ (rho * w)
    return pops
