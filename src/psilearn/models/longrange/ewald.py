"""Ewald summation of the Gaussian-charge Coulomb matrix in a periodic (3D) cell.

The periodic matrix is the lattice sum of the finite one (see :mod:`.coulomb`),

    C_ij = k_e sum_n' phi_ij(|r_j - r_i + n|),   phi_ij(r) = erf(r / (sqrt(2) gamma_ij)) / r,

over lattice vectors n (the n = 0, i = j term is the Gaussian self-energy k_e / (sigma_i sqrt(pi))),
so that E = 1/2 q^T C q (eV) is the electrostatic energy per cell. The sum converges only
conditionally; we use Ewald's splitting phi = erf(alpha r)/r + [erfc(alpha r) - erfc(r/(sqrt(2)
gamma))]/r, a real-space sum of the second (short-ranged) part and a reciprocal-space sum of the
first, which corresponds to *tin-foil* (conducting) boundary conditions. For a net charge
Q = sum q != 0 a uniform neutralising background is implied: the point-charge k = 0 term
-pi / (V alpha^2) is added to every C_ij. A constant added to every C_ij changes the energy by a
constant times Q^2 and leaves QEq charges unchanged, because the total charge is fixed.

Relation to a direct lattice sum: for a neutral cell with dipole M = sum q_i r_i, a direct sum
over images in growing spheres converges to E_Ewald + 2 pi |M|^2 / (3 V) (vacuum boundary; de
Leeuw, Perram and Smith, Proc. R. Soc. A 373, 27 (1980)); the tests check this.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfc

from psilearn.models.longrange.params import COULOMB


def ewald_parameters(cell: np.ndarray, n_atoms: int, gamma_max: float, accuracy: float = 1e-10) -> tuple[float, float, float]:
    """(alpha [1/A], real-space cutoff [A], reciprocal cutoff [1/A]) for a relative accuracy.

    alpha balances the real and reciprocal costs (alpha = sqrt(pi) (N / V^2)^(1/6)); the real
    cutoff also covers the Gaussian term erfc(r / (sqrt(2) gamma_max))."""
    volume = abs(np.linalg.det(cell))
    s = np.sqrt(-np.log(accuracy))
    alpha = np.sqrt(np.pi) * (max(n_atoms, 1) / volume**2) ** (1.0 / 6.0)
    r_cut = max(s / alpha, s * np.sqrt(2.0) * gamma_max)
    return float(alpha), float(r_cut), float(2.0 * alpha * s)


def _kvectors(cell: np.ndarray, k_cut: float) -> np.ndarray:
    """Reciprocal lattice vectors 0 < |k| <= k_cut, one of each +-k pair, shape (K, 3), 1/Angstrom."""
    recip = 2.0 * np.pi * np.linalg.inv(cell).T  # rows b_j with a_i . b_j = 2 pi delta_ij
    nmax = [int(np.ceil(k_cut * np.linalg.norm(a) / (2.0 * np.pi))) for a in cell]
    grids = np.meshgrid(*[np.arange(-m, m + 1) for m in nmax], indexing="ij")
    m = np.stack([g.ravel() for g in grids], axis=1)
    # half space: first non-zero integer component positive
    half = (m[:, 0] > 0) | ((m[:, 0] == 0) & (m[:, 1] > 0)) | ((m[:, 0] == 0) & (m[:, 1] == 0) & (m[:, 2] > 0))
    k = m[half] @ recip
    return k[np.einsum("kx,kx->k", k, k) <= k_cut**2]


def ewald_coulomb_matrix(positions: np.ndarray, cell: np.ndarray, sigma: np.ndarray, accuracy: float = 1e-10,
                         alpha: float | None = None, r_cut: float | None = None, k_cut: float | None = None) -> np.ndarray:
    """Periodic Gaussian-charge Coulomb matrix C (n, n), eV/e^2.

    ``positions`` (n, 3) and ``cell`` (3, 3, rows are lattice vectors) in Angstrom, ``sigma`` (n,)
    Gaussian widths in Angstrom. ``alpha``/``r_cut``/``k_cut`` override the automatic choice
    (:func:`ewald_parameters`); results do not depend on alpha beyond ``accuracy``."""
    from ase.neighborlist import primitive_neighbor_list

    pos = np.asarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    n = len(pos)
    volume = abs(np.linalg.det(cell))
    if volume < 1e-8:
        raise ValueError("periodic structure with a degenerate cell")
    gamma = np.sqrt(sigma[:, None] ** 2 + sigma[None, :] ** 2)
    a0, r0, k0 = ewald_parameters(cell, n, float(gamma.max()), accuracy)
    alpha = a0 if alpha is None else float(alpha)
    if r_cut is None or k_cut is None:
        s = np.sqrt(-np.log(accuracy))
        r_cut = max(s / alpha, s * np.sqrt(2.0) * float(gamma.max())) if r_cut is None else r_cut
        k_cut = 2.0 * alpha * s if k_cut is None else k_cut

    # real space: all pairs (and self-images) within r_cut
    i, j, d = primitive_neighbor_list("ijd", (True, True, True), cell, pos, r_cut, self_interaction=False)
    g = gamma[i, j]
    vals = (erfc(alpha * d) - erfc(d / (np.sqrt(2.0) * g))) / d
    c = np.zeros((n, n))
    np.add.at(c, (i, j), vals)

    # reciprocal space: (4 pi / V) sum_k exp(-k^2 / 4 alpha^2) / k^2 cos(k . (r_i - r_j)), +-k pairs
    k = _kvectors(cell, k_cut)
    if len(k):
        k2 = np.einsum("kx,kx->k", k, k)
        w = 2.0 * (4.0 * np.pi / volume) * np.exp(-k2 / (4.0 * alpha**2)) / k2
        phase = pos @ k.T  # (n, K)
        cs, sn = np.cos(phase), np.sin(phase)
        c += (cs * w) @ cs.T + (sn * w) @ sn.T

    # i = j: remove the n = 0 term erf(alpha r)/r -> 2 alpha / sqrt(pi) included in the
    # reciprocal sum, and add the Gaussian self-energy 1 / (sigma sqrt(pi))
    c[np.diag_indices(n)] += 1.0 / (sigma * np.sqrt(np.pi)) - 2.0 * alpha / np.sqrt(np.pi)
    # neutralising background (k = 0 term for point charges)
    c -= np.pi / (volume * alpha**2)
    c = 0.5 * (c + c.T)
    return COULOMB * c
