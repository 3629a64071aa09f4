"""The Kohn-Sham (or approximate HF) Fock matrix of a fitted density, in an orbital basis.

F = h + J[rho_fit] + V_xc[rho_fit]: J_mn = sum_P (mn|P) c_P with PySCF's ``int3c2e``
(``df.incore.aux_e2``, blocked over aux shells), and V_xc from PySCF's numint (``eval_xc_eff``) on
rho_fit and, for GGAs, its gradient from ``eval_ao(auxmol, coords, deriv=1)``, on a PySCF grid (the
SCF's own, or a coarser one: a guess needs no fine grid, and the aux functions on the grid dominate
the cost). Exact exchange needs orbitals, which a density does not have: the exact-exchange fraction of
a hybrid (all of it for HF) is replaced by the same fraction of Slater (LDA) exchange. Meta-GGAs
need the kinetic-energy density and are refused.
"""

from __future__ import annotations

import numpy as np

from psilearn.errors import DataError

_BLOCK_BYTES = 200e6
_GRID_BLOCK = 4000


def coulomb_matrix(mol, auxmol, coefficients: np.ndarray) -> np.ndarray:
    """J_mn = sum_P (mn|P) c_P (Hartree), (nao, nao), blocked over auxiliary shells."""
    from pyscf import lib
    from pyscf.df import incore

    loc = auxmol.ao_loc_nr()
    npair = mol.nao * (mol.nao + 1) // 2
    step = max(1, int(_BLOCK_BYTES // max(npair * 8, 1)))
    packed = np.zeros(npair)
    b0 = 0
    while b0 < auxmol.nbas:
        b1 = b0 + 1
        while b1 < auxmol.nbas and loc[b1 + 1] - loc[b0] <= step:
            b1 += 1
        ints = incore.aux_e2(mol, auxmol, intor="int3c2e", aosym="s2ij", shls_slice=(0, mol.nbas, 0, mol.nbas, b0, b1))
        packed += ints @ coefficients[loc[b0] : loc[b1]]
        b0 = b1
    return lib.unpack_tril(packed)


def _xc_part(ni, xc: str, grids, mol, auxmol, coefficients) -> np.ndarray:
    """sum over the grid of the V_xc matrix of the semi-local functional ``xc`` at rho_fit."""
    xctype = ni._xc_type(xc)
    if xctype not in ("LDA", "GGA"):
        raise DataError(f"the SCF guess from a density supports LDA and GGA functionals (and hybrids of them); "
                        f"{xc!r} is a {xctype} (meta-GGAs need the kinetic-energy density)")
    deriv = 1 if xctype == "GGA" else 0
    vmat = np.zeros((mol.nao, mol.nao))
    for p0 in range(0, len(grids.weights), _GRID_BLOCK):
        pts, w = grids.coords[p0 : p0 + _GRID_BLOCK], grids.weights[p0 : p0 + _GRID_BLOCK]
        aux = ni.eval_ao(auxmol, pts, deriv=deriv)
        ao = ni.eval_ao(mol, pts, deriv=deriv)
        if deriv:
            rho = np.einsum("xgp,p->xg", aux, coefficients)
            vxc = ni.eval_xc_eff(xc, rho, deriv=1, xctype=xctype)[1]
            wv = vxc * w
            aow = ao[0] * (0.5 * wv[0])[:, None] + np.einsum("xg,xgm->gm", wv[1:4], ao[1:4])
            m = ao[0].T @ aow
            vmat += m + m.T
        else:
            rho = aux @ coefficients
            vxc = ni.eval_xc_eff(xc, rho, deriv=1, xctype=xctype)[1]
            vmat += ao.T @ (ao * (np.ravel(vxc[0]) * w)[:, None])
    return vmat


def xc_matrix(ni, xc: str, grids, mol, auxmol, coefficients: np.ndarray) -> np.ndarray:
    """V_xc[rho_fit] (Hartree), (nao, nao), for ``xc`` (a PySCF functional name, or 'hf'): the
    semi-local part of the functional plus its exact-exchange fraction as Slater exchange."""
    hf = xc.strip().lower() in ("hf", "rhf", "uhf", "scf")
    hyb = 1.0 if hf else ni.hybrid_coeff(xc)
    vmat = np.zeros((mol.nao, mol.nao))
    if not hf:
        vmat += _xc_part(ni, xc, grids, mol, auxmol, coefficients)
    if hyb:
        vmat += hyb * _xc_part(ni, "slater,", grids, mol, auxmol, coefficients)
    return vmat


def fitted_fock(mf, auxmol, coefficients: np.ndarray, xc: str, grid_level: int | None = None) -> np.ndarray:
    """F = h + J[rho_fit] + V_xc[rho_fit] (Hartree) in the AO basis of ``mf.mol``. V_xc is integrated
    on a fresh level-``grid_level`` grid, or on ``mf.grids`` (level 3 for HF) when None."""
    from pyscf.dft import gen_grid, numint

    mol = mf.mol
    grids = None if grid_level is not None else getattr(mf, "grids", None)
    if grids is None:
        grids = gen_grid.Grids(mol)
        grids.level = 3 if grid_level is None else grid_level
    if grids.coords is None:
        grids.build()
    ni = getattr(mf, "_numint", None) or numint.NumInt()
    return mf.get_hcore() + coulomb_matrix(mol, auxmol, coefficients) + xc_matrix(ni, xc, grids, mol, auxmol, coefficients)
