"""Coulomb interaction matrix of Gaussian charges in a finite (non-periodic) structure.

For atoms carrying spherical Gaussian charges of widths sigma_i (Angstrom),

    C_ij = k_e erf(r_ij / (sqrt(2) gamma_ij)) / r_ij,   gamma_ij = sqrt(sigma_i^2 + sigma_j^2)
    C_ii = k_e / (sigma_i sqrt(pi))                    (the self-energy, the r -> 0 limit)

so that the electrostatic energy of charges q (e) is E = 1/2 q^T C q in eV
(k_e = 14.3996 eV*Angstrom/e^2). C is positive definite: it is the Coulomb energy of a continuous
charge density.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from psilearn.physics.params import COULOMB


def gaussian_coulomb_matrix(positions: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """C (n, n) in eV/e^2 for ``positions`` (n, 3) in Angstrom and widths ``sigma`` (n,) in Angstrom."""
    pos = np.asarray(positions, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    r = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    gamma = np.sqrt(sigma[:, None] ** 2 + sigma[None, :] ** 2)
    off = ~np.eye(len(pos), dtype=bool)
    if np.any(r[off] < 1e-8):
        raise ValueError("two atoms at the same position: the QEq matrix is singular")
    c = np.empty_like(r)
    c[off] = erf(r[off] / (np.sqrt(2.0) * gamma[off])) / r[off]
    c[~off] = 1.0 / (sigma * np.sqrt(np.pi))
    return COULOMB * c
