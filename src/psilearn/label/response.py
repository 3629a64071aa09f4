"""Response properties by analytic CPHF/CPKS (pyscf-properties) and by finite differences of the
dipole (uniform fields, nuclear displacements), for :class:`psilearn.label.pyscf_labeler.PySCFLabeler`
(``lab``: its SCF settings ``conv_tol``, ``field_step``, ``apt_step`` and ``make_scf``)."""

from __future__ import annotations

import warnings

import numpy as np

from psilearn.label.base import LabelError


def cphf_polarizability(mf) -> np.ndarray:
    """Static polarizability (Bohr^3), shape (3, 3), analytic CPHF/CPKS (pyscf-properties)."""
    from pyscf import dft, scf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unrestricted = isinstance(mf, scf.uhf.UHF)
        if isinstance(mf, dft.rks.KohnShamDFT):
            if unrestricted:
                from pyscf.prop.polarizability.uks import Polarizability
            else:
                from pyscf.prop.polarizability.rks import Polarizability
        elif unrestricted:
            from pyscf.prop.polarizability.uhf import Polarizability
        else:
            from pyscf.prop.polarizability.rhf import Polarizability
        pol = Polarizability(mf)
        pol.verbose = 0
        pol.conv_tol = 1e-9
        alpha = np.asarray(pol.polarizability(), dtype=float)
    if not np.all(np.isfinite(alpha)):
        raise RuntimeError("CPHF polarizability is not finite")
    return alpha


def field_dipole(lab, mol, field: np.ndarray, dm0, origin: np.ndarray) -> np.ndarray:
    """Dipole (e*Bohr) about ``origin`` of an SCF in the uniform field ``field`` (a.u.)."""
    from psilearn.label.multipoles import dipole_moment

    mf = lab.make_scf(mol)
    hcore = mf.get_hcore()
    with mol.with_common_orig(origin):
        r = mol.intor_symmetric("int1e_r", comp=3)
    perturbed = hcore + np.einsum("x,xij->ij", field, r)
    mf.get_hcore = lambda *args, **kwargs: perturbed
    mf.conv_tol = min(lab.conv_tol, 1e-11)
    mf.kernel(dm0=dm0)
    if not mf.converged:
        raise LabelError(f"SCF in finite field {field.tolist()} did not converge", "polarizability")
    return dipole_moment(mol, mf.make_rdm1(), origin)


def finite_field_polarizability(lab, mf) -> tuple[np.ndarray, float]:
    """Static polarizability (Bohr^3), shape (3, 3), by central differences of the dipole in uniform
    fields +-``field_step`` (6 extra SCFs), symmetrised, and the asymmetry removed (Bohr^3;
    :func:`psilearn.label.base.finite_field_polarizability`)."""
    from psilearn.label.base import finite_field_polarizability as central_differences
    from psilearn.label.multipoles import centre_of_mass_bohr

    mol = mf.mol
    origin = centre_of_mass_bohr(mol)
    dm0 = mf.make_rdm1()
    return central_differences(lambda f: field_dipole(lab, mol, f, dm0, origin), lab.field_step)


def atomic_polar_tensors(lab, mol, mf) -> np.ndarray:
    """APT (e), shape (n_atoms, 3, 3), apt[k, a, b] = d mu_a / d R_{k,b}, by central
    differences of the dipole (fixed origin) over +-``apt_step`` Bohr displacements."""
    from psilearn.label.multipoles import centre_of_mass_bohr, dipole_moment

    origin = centre_of_mass_bohr(mol)
    coords = mol.atom_coords()
    dm0 = mf.make_rdm1()
    apt = np.zeros((mol.natm, 3, 3))
    for k in range(mol.natm):
        for b in range(3):
            mus = []
            for sign in (1.0, -1.0):
                c = coords.copy()
                c[k, b] += sign * lab.apt_step
                m = mol.set_geom_(c, unit="Bohr", inplace=False)
                mfd = lab.make_scf(m)
                mfd.conv_tol = min(lab.conv_tol, 1e-11)
                mfd.kernel(dm0=dm0)
                if not mfd.converged:
                    raise LabelError(f"SCF for APT displacement of atom {k} did not converge", "apt")
                mus.append(dipole_moment(m, mfd.make_rdm1(), origin))
            apt[k, :, b] = (mus[0] - mus[1]) / (2.0 * lab.apt_step)
    return apt
