"""Electrostatic potential of the nuclei plus a fitted density at given points.

V(r) = sum_A Z_A / |r - R_A| (Z_A minus ECP core electrons) - sum_P c_P int phi_P(r') / |r - r'| dr', in Hartree/e (atomic units
of potential; :data:`VOLT_PER_AU` converts to volts). The electronic part is PySCF's two-centre
Coulomb integral (``int2c2e``) between the aux functions and unit point charges at the points
(``gto.fakemol_for_charges``: Gaussians of exponent 1e16 Bohr^-2), in blocks of points.
Points are given in Angstrom; a point on a nucleus (closer than :data:`MIN_DISTANCE`) is refused.
"""

from __future__ import annotations

import numpy as np
from ase import units

from psilearn.errors import DataError
from psilearn.observe.density.structure import FittedDensity, fitted_density

#: 1 Hartree/e in volts (ASE's CODATA constants).
VOLT_PER_AU = units.Hartree
#: Points closer than this to a nucleus (Angstrom) are refused: the nuclear potential diverges there.
MIN_DISTANCE = 1e-3
_BLOCK = 2000


def esp_of(density: FittedDensity, points_angstrom, cov: np.ndarray | None = None):
    """The ESP (Hartree/e), shape (n_points,), of a checked :class:`FittedDensity` at ``points_angstrom`` (n, 3).
    With the coefficients' covariance ``cov`` (n_aux, n_aux; e^2) returns (esp, std) instead: V is
    linear in c (V = V_nuc - G c, G the int2c2e rows), so var V_k = G_k Sigma_c G_k^T."""
    from pyscf import gto

    pts = np.asarray(points_angstrom, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 3 or not np.all(np.isfinite(pts)):
        raise DataError(f"ESP points must be a finite (n, 3) array in Angstrom, got shape {pts.shape}")
    dist = np.linalg.norm(pts[:, None, :] - density.atoms.positions[None, :, :], axis=-1)
    if dist.size and dist.min() < MIN_DISTANCE:
        k, i = np.unravel_index(np.argmin(dist), dist.shape)
        raise DataError(f"ESP point {k} is on atom {i} ({density.atoms[i].symbol}, {dist[k, i]:.2g} A away): "
                        "the potential of a nucleus diverges there")
    bohr = pts / units.Bohr
    mol = density.auxmol
    nuclear_r = mol.atom_coords()
    out = np.empty(len(bohr))
    var = None if cov is None else np.empty(len(bohr))
    for p0 in range(0, len(bohr), _BLOCK):
        block = bohr[p0 : p0 + _BLOCK]
        fake = gto.fakemol_for_charges(block)
        g = gto.intor_cross("int2c2e", mol, fake).T  # (n_block, n_aux)
        r = np.linalg.norm(block[:, None, :] - nuclear_r[None, :, :], axis=-1)
        out[p0 : p0 + _BLOCK] = (density.nuclear_charges / r).sum(axis=1) - g @ density.coefficients
        if var is not None:
            var[p0 : p0 + _BLOCK] = np.einsum("kp,pq,kq->k", g, cov, g)
    return out if var is None else (out, np.sqrt(np.clip(var, 0.0, None)))


def electrostatic_potential(atoms, coefficients, aux_basis: str, points_angstrom, charge: int | None = None) -> np.ndarray:
    """ESP of the nuclei plus the fitted density, Hartree/e, shape (n_points,), at ``points_angstrom``
    (n, 3, Angstrom); multiply by :data:`VOLT_PER_AU` for volts. Checks as
    :func:`psilearn.observe.density.structure.fitted_density`."""
    return esp_of(fitted_density(atoms, coefficients, aux_basis, charge), points_angstrom)


def read_points(path) -> list[np.ndarray]:
    """ESP points (Angstrom) from an ASE-readable file: the positions of each frame (any element
    symbol, e.g. X dummies; not checked as structures). DataError for an unreadable or empty file."""
    import ase.io

    try:
        frames = ase.io.read(path, index=":")
    except OSError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot read ESP points ({type(exc).__name__}: {' '.join(str(exc).split())})") from None
    if not frames or any(len(a) == 0 for a in frames):
        raise DataError(f"{path}: no ESP points (a frame without positions)")
    return [a.positions.copy() for a in frames]
