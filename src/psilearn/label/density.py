"""Density labels: the SCF density fitted in an auxiliary basis, and the fit's own error.

rho(r) ~ sum_P c_P phi_P(r) over the functions of ``pyscf.df.addons.make_auxmol(mol, aux_basis)``.
Coulomb metric (default, as in RI-J): c = J^-1 b with J_PQ = (P|Q) (``int2c2e``) and
b_P = (P|rho) = sum_mn (mn|P) D_mn (``int3c2e``); overlap metric: S_PQ = <P|Q> (``int1e_ovlp``),
b_P = <P|rho> (``int3c1e``). The integrals are PySCF's (``df.incore.aux_e2``, blocked over auxiliary
shells so memory stays bounded); only the symmetric positive-definite solve is written here.

The fit is checked against the SCF density on the integration grid: L2 relative error
sqrt(int (rho_fit - rho)^2 / int rho^2), L1 error int |rho_fit - rho| / N_el, and the dipole of the
fitted density (with the nuclei) against the SCF dipole. The electron count of the fit is
sum_P c_P int phi_P, with int phi_P and int r phi_P in closed form from the shell data (checked
against PySCF's ``ft_ao`` in the tests).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from psilearn.label.base import LabelError
from psilearn.targets.ao_basis import auxmol_shells, check_aux_basis, check_metric, make_auxmol
from psilearn.targets.density import format_shells

#: Memory for one block of three-centre integrals (bytes).
_BLOCK_BYTES = 200e6
_GRID_BLOCK = 4000


def total_dm(dm) -> np.ndarray:
    dm = np.asarray(dm)
    return dm[0] + dm[1] if dm.ndim == 3 else dm


def aux_moments(auxmol) -> tuple[np.ndarray, np.ndarray]:
    """``int phi_P dr`` (n_aux,) and ``int r phi_P dr`` (3, n_aux), Bohr, origin at 0.

    PySCF's functions are R(r) Y_lm with R = sum_k c_k r^l exp(-a_k r^2) (libcint's normalised
    coefficients: ``bas_ctr_coeff * gto_norm``) and unit-normalised real harmonics, so only s
    functions have a charge (sqrt(4 pi) int R r^2 dr) and only s (centre times charge) and p
    functions (sqrt(4 pi / 3) int R r^3 dr, components x, y, z) a first moment."""
    from pyscf import gto

    charge = np.zeros(auxmol.nao)
    first = np.zeros((3, auxmol.nao))
    loc = auxmol.ao_loc_nr()
    for ib in range(auxmol.nbas):
        l = auxmol.bas_angular(ib)
        if l > 1:
            continue
        a = auxmol.bas_exp(ib)
        coef = auxmol.bas_ctr_coeff(ib) * gto.gto_norm(l, a)[:, None]
        centre = auxmol.bas_coord(ib)
        for k in range(coef.shape[1]):
            p = loc[ib] + k * (2 * l + 1)
            if l == 0:
                charge[p] = np.sqrt(4 * np.pi) * coef[:, k] @ gto.gaussian_int(2, a)
                first[:, p] = centre * charge[p]
            else:
                first[:, p : p + 3] = np.eye(3) * np.sqrt(4 * np.pi / 3) * (coef[:, k] @ gto.gaussian_int(4, a))
    return charge, first


def _projections(mol, auxmol, dm: np.ndarray, intor: str) -> np.ndarray:
    """b_P = sum_mn (mn|P) D_mn for ``intor`` in int3c2e / int3c1e, blocked over auxiliary shells."""
    from pyscf import lib
    from pyscf.df import incore

    dm = (dm + dm.T) * 0.5
    packed = lib.pack_tril(dm * 2.0 - np.diag(np.diag(dm)))  # s2ij: each off-diagonal pair once
    loc = auxmol.ao_loc_nr()
    per_function = max(packed.size * 8, 1)
    step = max(1, int(_BLOCK_BYTES // per_function))
    out = np.empty(auxmol.nao)
    b0 = 0
    while b0 < auxmol.nbas:
        b1 = b0 + 1
        while b1 < auxmol.nbas and loc[b1 + 1] - loc[b0] <= step:
            b1 += 1
        ints = incore.aux_e2(mol, auxmol, intor=intor, aosym="s2ij", shls_slice=(0, mol.nbas, 0, mol.nbas, b0, b1))
        out[loc[b0] : loc[b1]] = packed @ ints
        b0 = b1
    return out


def core_electrons(mol) -> np.ndarray:
    """Electrons replaced by each atom's ECP, (n_atoms,) int (``mol.atom_nelec_core``; zeros without ECPs).
    ``mol.atom_charges()`` is Z minus these, and ``mol.nelectron`` counts only the others."""
    return np.array([mol.atom_nelec_core(i) for i in range(mol.natm)], dtype=int)


def fit_coefficients(mol, auxmol, dm, metric: str = "coulomb") -> np.ndarray:
    """Density-fitting coefficients (n_aux,) of the density matrix ``dm`` (total for open shells)."""
    metric = check_metric(metric)
    dm = total_dm(dm)
    if metric == "coulomb":
        b, m = _projections(mol, auxmol, dm, "int3c2e"), auxmol.intor("int2c2e")
    else:
        b, m = _projections(mol, auxmol, dm, "int3c1e"), auxmol.intor("int1e_ovlp")
    try:
        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(m), b)
    except np.linalg.LinAlgError:  # numerically semi-definite metric: least squares
        return scipy.linalg.lstsq(m, b, cond=1e-14)[0]


def fitted_dipole(mol, auxmol, coefficients: np.ndarray, origin: np.ndarray, charges=None) -> np.ndarray:
    """Dipole (e*Bohr) of the nuclei plus the fitted density -sum_P c_P phi_P, about ``origin`` (Bohr).
    The nuclear ``charges`` (e, per atom) default to ``mol.atom_charges()``: Z minus the ECP core electrons
    of a Mole built with ECPs (the labeler's), the full Z of one without."""
    charge, first = aux_moments(auxmol)
    electronic = -(first - np.outer(origin, charge)) @ coefficients
    z = mol.atom_charges() if charges is None else np.asarray(charges, dtype=float)
    return z @ (mol.atom_coords() - origin) + electronic


def grid_errors(mol, auxmol, dm, coefficients: np.ndarray, grids) -> tuple[float, float]:
    """(L2, L1) errors of the fitted density against the density matrix on ``grids`` (built):
    sqrt(int d^2 / int rho^2) and int |d| / N_el, d = rho_fit - rho."""
    from pyscf.dft import numint

    dm = total_dm(dm)
    sq = ref = absolute = 0.0
    for p0 in range(0, len(grids.weights), _GRID_BLOCK):
        pts, w = grids.coords[p0 : p0 + _GRID_BLOCK], grids.weights[p0 : p0 + _GRID_BLOCK]
        rho = numint.eval_rho(mol, numint.eval_ao(mol, pts), dm)
        diff = numint.eval_ao(auxmol, pts) @ coefficients - rho
        sq += w @ diff**2
        ref += w @ rho**2
        absolute += w @ np.abs(diff)
    return float(np.sqrt(sq / ref)), float(absolute / mol.nelectron)


def density_auxmol(mol, aux_basis: str):
    """The auxiliary Mole of ``mol``; LabelError (stage 'density', one line) for an unknown basis or
    an element without functions in it, raised before any SCF is run."""
    try:
        return make_auxmol(mol, check_aux_basis(aux_basis))
    except ValueError as exc:
        raise LabelError(str(exc), "density") from None


def density_labels(mol, dm, auxmol, aux_basis: str, metric: str, grids) -> dict:
    """The ``density`` labels of one structure (see :data:`psilearn.label.base.UNITS`); dipoles
    about the centre of mass, as the ``dipole`` label."""
    from psilearn.label.multipoles import centre_of_mass_bohr, dipole_moment

    c = fit_coefficients(mol, auxmol, dm, metric)
    charge, _ = aux_moments(auxmol)
    l2, l1 = grid_errors(mol, auxmol, dm, c, grids)
    origin = centre_of_mass_bohr(mol)
    dip = fitted_dipole(mol, auxmol, c, origin)
    scf_dipole = dipole_moment(mol, dm, origin)
    return {
        "density_coefficients": c,
        "density_aux_basis": check_aux_basis(aux_basis),
        "density_metric": check_metric(metric),
        "density_aux_shells": format_shells(auxmol_shells(auxmol)),
        "density_electrons": float(charge @ c),
        "density_fit_l2": l2,
        "density_fit_l1": l1,
        "density_fit_dipole_error": float(np.linalg.norm(dip - scf_dipole)),
    }


def structure_auxmol(atoms, aux_basis: str):
    """The auxiliary Mole of an ASE structure (Angstrom), without an SCF: the orbital basis of the
    intermediate Mole is the aux basis itself and its spin is set to the parity of the nuclear
    charge, neither of which enters the aux functions. DataError (one line) for an unknown basis or
    an element without functions in it."""
    import warnings

    from pyscf import gto

    symbols = atoms.get_chemical_symbols()
    name = check_aux_basis(aux_basis)
    mol = gto.Mole()
    mol.atom = [(s, tuple(p)) for s, p in zip(symbols, atoms.positions)]
    mol.unit, mol.basis, mol.verbose = "Angstrom", name, 0
    mol.spin = int(sum(atoms.numbers)) % 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mol.build()
    except Exception:  # noqa: BLE001 - a missing element: make_auxmol gives the one clear message
        mol = gto.M(atom=mol.atom, unit="Angstrom", basis="sto-3g", spin=mol.spin, verbose=0)
    return make_auxmol(mol, name)


def aux_metric(atoms, aux_basis: str, metric: str = "coulomb") -> tuple[np.ndarray, np.ndarray]:
    """(S, q) of a structure in the labeler's layout (PySCF's order): the fit's metric S_PQ,
    (P|Q) (``int2c2e``) for ``coulomb`` or <P|Q> (``int1e_ovlp``) for ``overlap``, and the
    aux-function charges q_P = int phi_P (closed form, :func:`aux_moments`). The loss of a density
    model and the exact electron-count constraint use them; sum_P q_P c_P is the electron count."""
    auxmol = structure_auxmol(atoms, aux_basis)
    s = auxmol.intor("int2c2e" if check_metric(metric) == "coulomb" else "int1e_ovlp")
    return 0.5 * (s + s.T), aux_moments(auxmol)[0]
