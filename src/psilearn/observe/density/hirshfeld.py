"""Hirshfeld charges of a fitted density: rho_fit integrated on a PySCF DFT grid with free-atom weights.

q_A = Z_A - int w_A(r) rho_fit(r) dr, w_A = rho_A^free / sum_B rho_B^free, in e. With effective core
potentials Z_A is Z minus the ECP's core electrons, and the free atoms carry the same ECPs (the
promolecule basis must have them: def2 bases do, from Rb on). The promolecule is
the labeler's (:mod:`psilearn.label.hirshfeld`: spherically averaged fractional-occupation HF free
atoms in an orbital basis, default def2-SVP; use the labelling basis to match the labeler's
``hirshfeld_charges``). The charges sum to the structure's charge up to the fit's electron-count
error (``fitted_electrons - n_electrons``) and the grid error.
"""

from __future__ import annotations

import warnings

import numpy as np

from psilearn.errors import DataError
from psilearn.observe.density.structure import FittedDensity, density_values, fitted_density

DEFAULT_PROMOLECULE_BASIS = "def2-svp"


def _orbital_mol(density: FittedDensity, basis: str):
    from pyscf.lib.exceptions import BasisNotFoundError

    from psilearn.targets.ao_basis import check_basis, ecp_core_electrons

    mol = density.auxmol.copy()
    mol.basis = check_basis(basis)
    symbols = density.atoms.get_chemical_symbols()
    want = {s: int(n) for s, n in zip(symbols, density.core_electrons)}
    have = {s: ecp_core_electrons(mol.basis, s) for s in want}
    wrong = sorted(s for s in want if want[s] != have[s])
    if wrong:  # the free atoms must hold the electrons the density holds
        raise DataError(f"{density.atoms.get_chemical_formula()}: the density's ECP core electrons "
                        f"({', '.join(f'{s} {want[s]}' for s in wrong)}) differ from those of promolecule basis {mol.basis!r} "
                        f"({', '.join(f'{s} {have[s]}' for s in wrong)}): choose a basis with the same ECPs")
    mol.ecp = {s: mol.basis for s in want if want[s]}
    mol.charge, mol.spin = density.charge, density.multiplicity - 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mol.build(False, False)
    except (BasisNotFoundError, KeyError, RuntimeError) as exc:
        raise DataError(f"{density.atoms.get_chemical_formula()}: cannot build the promolecule in basis {basis!r}: "
                        f"{str(exc).splitlines()[0]}") from None
    return mol


def hirshfeld_of(density: FittedDensity, basis: str = DEFAULT_PROMOLECULE_BASIS, grid_level: int = 3,
                 block: int = 20000, cov: np.ndarray | None = None):
    """Hirshfeld charges (e), shape (n_atoms,), of a checked :class:`FittedDensity`, on a level-``grid_level``
    PySCF (Becke) grid, with free atoms in the orbital ``basis``. With the coefficients' covariance
    ``cov`` (n_aux, n_aux; e^2) returns (charges, std) instead: q is affine in c, q = Z - H c with
    H_AP = int w_A phi_P (on the same grid), so Sigma_q = H Sigma_c H^T."""
    from pyscf.dft import gen_grid, numint

    from psilearn.label.hirshfeld import hirshfeld_shares, promolecule

    mol = _orbital_mol(density, basis)
    grids = gen_grid.Grids(mol)
    grids.level = grid_level
    grids.build()
    free_atoms = promolecule(mol)
    pops = np.zeros(mol.natm)
    jac = None if cov is None else np.zeros((mol.natm, density.auxmol.nao))
    for p0 in range(0, len(grids.weights), block):
        pts, w = grids.coords[p0 : p0 + block], grids.weights[p0 : p0 + block]
        shares = hirshfeld_shares(free_atoms, pts)
        if jac is None:
            rho = density_values(density.auxmol, density.coefficients, pts, block)
            pops += shares @ (rho * w)
        else:
            h = (shares * w) @ numint.eval_ao(density.auxmol, pts)  # (n_atoms, n_aux)
            jac += h
            pops += h @ density.coefficients
    q = density.nuclear_charges - pops
    if jac is None:
        return q
    var = np.einsum("ap,pq,aq->a", jac, np.asarray(cov, dtype=float), jac)
    return q, np.sqrt(np.clip(var, 0.0, None))


def hirshfeld_charges(atoms, coefficients, aux_basis: str, charge: int | None = None,
                      basis: str = DEFAULT_PROMOLECULE_BASIS, grid_level: int = 3) -> np.ndarray:
    """Hirshfeld charges (e), shape (n_atoms,), of the fitted density (see the module doc). Checks as
    :func:`psilearn.observe.density.structure.fitted_density`."""
    return hirshfeld_of(fitted_density(atoms, coefficients, aux_basis, charge), basis, grid_level)
