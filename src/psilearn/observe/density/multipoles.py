"""Dipole and traceless quadrupole of the nuclei plus a fitted density (atomic units, explicit origin).

The conventions are the labeler's (:mod:`psilearn.label.multipoles`, keys ``dipole_moment`` and
``quadrupole_moment``): origin at the centre of mass (isotope-averaged masses), electrons negative,
mu = sum_A Z_A (R_A - O) (Z_A minus the electrons of its ECP, if any) - int rho(r) (r - O) dr in e*Bohr, and the traceless (Buckingham)
Theta_ab = 1/2 sum q (3 r_a r_b - r^2 delta_ab) in e*Bohr^2. The fit's electron count is not
exactly N, so (as for ``density_fit_dipole_error``) the result depends slightly on the origin.

The moments int phi_P, int (r - O)_a phi_P and int (r - O)_a (r - O)_b phi_P are PySCF's own one-
electron integrals (``int1e_ovlp``, ``int1e_r``, ``int1e_rr``) between the aux functions and one
constant s function (exponent 0), i.e. exact closed forms.
"""

from __future__ import annotations

import numpy as np

from psilearn.observe.density.structure import FittedDensity, fitted_density

#: 1 e*Bohr in Debye (CODATA 2018: a0 = 0.529177210903 A, 1 D = 0.20819434 e*A).
DEBYE_PER_AU = 2.541746473


def _constant_function(origin_bohr: np.ndarray):
    """A fake Mole of one s function equal to 1 everywhere (exponent 0), centred at ``origin_bohr``."""
    from pyscf import gto

    fake = gto.fakemol_for_charges(np.asarray(origin_bohr, dtype=float).reshape(1, 3), expnt=1.0)
    fake._env[fake._bas[0, gto.PTR_EXP]] = 0.0
    fake._env[fake._bas[0, gto.PTR_COEFF]] = 2.0 * np.sqrt(np.pi)  # libcint's s factor is 1/(2 sqrt(pi))
    return fake


def aux_multipole_integrals(auxmol, origin_bohr) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(int phi_P (n,), int (r-O)_a phi_P (3, n), int (r-O)_a (r-O)_b phi_P (3, 3, n)), Bohr, about ``origin_bohr``."""
    from pyscf import gto

    origin = np.asarray(origin_bohr, dtype=float)
    fake = _constant_function(origin)
    with auxmol.with_common_orig(origin):
        charge = gto.intor_cross("int1e_ovlp", auxmol, fake)[:, 0]
        first = gto.intor_cross("int1e_r", auxmol, fake, comp=3)[:, :, 0]
        second = gto.intor_cross("int1e_rr", auxmol, fake, comp=9)[:, :, 0].reshape(3, 3, -1)
    return charge, first, second


def centre_of_mass_bohr(density: FittedDensity) -> np.ndarray:
    from psilearn.label.multipoles import centre_of_mass_bohr as com

    return com(density.auxmol)


def _moments(density: FittedDensity, origin_bohr):
    origin = centre_of_mass_bohr(density) if origin_bohr is None else np.asarray(origin_bohr, dtype=float)
    mol = density.auxmol
    _, first, second = aux_multipole_integrals(mol, origin)
    z = density.nuclear_charges  # Z - ECP core electrons: the charges that go with the density
    rel = mol.atom_coords() - origin
    dipole = z @ rel - first @ density.coefficients
    second_total = np.einsum("k,ka,kb->ab", z, rel, rel) - second @ density.coefficients
    return dipole, second_total


def dipole(atoms, coefficients, aux_basis: str, charge: int | None = None, origin_bohr=None) -> np.ndarray:
    """Dipole moment (e*Bohr), shape (3,), of the nuclei plus the fitted density, about the centre of
    mass (or ``origin_bohr``, Bohr): the convention of the ``dipole_moment`` label. ``atoms`` in
    Angstrom; see :func:`psilearn.observe.density.structure.fitted_density` for the checks."""
    return _moments(fitted_density(atoms, coefficients, aux_basis, charge), origin_bohr)[0]


def quadrupole(atoms, coefficients, aux_basis: str, charge: int | None = None, origin_bohr=None) -> np.ndarray:
    """Traceless (Buckingham) quadrupole Theta_ab = 1/2 sum q (3 r_a r_b - r^2 delta_ab) (e*Bohr^2),
    shape (3, 3), of the nuclei plus the fitted density about the centre of mass (or ``origin_bohr``):
    the convention of the ``quadrupole_moment`` label."""
    return traceless(_moments(fitted_density(atoms, coefficients, aux_basis, charge), origin_bohr)[1])


def multipoles(density: FittedDensity, origin_bohr=None) -> tuple[np.ndarray, np.ndarray]:
    """(dipole (3,) e*Bohr, traceless quadrupole (3, 3) e*Bohr^2) of a checked :class:`FittedDensity`."""
    mu, second = _moments(density, origin_bohr)
    return mu, traceless(second)


def traceless(second: np.ndarray) -> np.ndarray:
    """Theta = 1/2 (3 M - tr(M) 1) of a second moment M_ab = sum q r_a r_b."""
    return 0.5 * (3.0 * second - np.trace(second) * np.eye(3))


def dipole_covariance(density: FittedDensity, cov: np.ndarray, origin_bohr=None) -> np.ndarray:
    """Covariance (3, 3), (e*Bohr)^2, of the dipole given the coefficients' covariance ``cov``
    (n_aux, n_aux; e^2): mu is linear in c (mu = const - M1 c, M1 the first moments), so
    Sigma_mu = M1 Sigma_c M1^T. With an electron-count-conserving covariance (q^T Sigma q = 0) it
    does not depend on the origin."""
    origin = centre_of_mass_bohr(density) if origin_bohr is None else np.asarray(origin_bohr, dtype=float)
    _, first, _ = aux_multipole_integrals(density.auxmol, origin)
    out = first @ np.asarray(cov, dtype=float) @ first.T
    return 0.5 * (out + out.T)


def quadrupole_covariance(density: FittedDensity, cov: np.ndarray, origin_bohr=None) -> np.ndarray:
    """Covariance (9, 9), (e*Bohr^2)^2, of the traceless quadrupole (row-major components) given the
    coefficients' covariance ``cov`` (e^2): Theta = const - 1/2 (3 M2 - tr(M2) 1) c is linear in c."""
    origin = centre_of_mass_bohr(density) if origin_bohr is None else np.asarray(origin_bohr, dtype=float)
    _, _, second = aux_multipole_integrals(density.auxmol, origin)
    jac = 0.5 * (3.0 * second - np.trace(second)[None, None, :] * np.eye(3)[:, :, None]).reshape(9, -1)
    out = jac @ np.asarray(cov, dtype=float) @ jac.T
    return 0.5 * (out + out.T)


def debye(dipole_au) -> np.ndarray:
    """A dipole in e*Bohr converted to Debye."""
    return np.asarray(dipole_au, dtype=float) * DEBYE_PER_AU
