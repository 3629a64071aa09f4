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

from psilearn.physics.params import COULOMB


def ewald_parameters(cell: np.ndarray, n_atoms: int, gamma_max: float, accuracy: float = 1e-10) -> tuple[float, float, float]:
    """(alpha [1/A], real-space cutoff [A], reciprocal cutoff [1/A]) for a relative accuracy.

    The real-space cutoff is the larger of 8 A and the range of the Gaussian term
    erfc(r / (sqrt(2) gamma_max)); alpha = sqrt(-ln accuracy) / r_cut, k_cut = 2 alpha sqrt(-ln accuracy).
    (With numpy, reciprocal sums are cheap, so short real-space cutoffs are the fast choice.)"""
    s = np.sqrt(-np.log(accuracy))
    r_cut = max(8.0, s * np.sqrt(2.0) * gamma_max)
    alpha = s / r_cut
    return float(alpha), float(r_cut), float(2.0 * alpha * s)


def _real_space(pos: np.ndarray, cell: np.ndarray, gamma: np.ndarray, alpha: float, r_cut: float) -> np.ndarray:
    """sum_n' [erfc(alpha r) - erfc(r / (sqrt(2) gamma_ij))] / r over images r = |r_j - r_i + n| < r_cut
    (n = 0 excluded for i = j), shape (n, n)."""
    frac = np.linalg.solve(cell.T, pos.T).T
    wrapped = (frac - np.floor(frac)) @ cell  # all atoms inside the cell: bounded image range
    diff = wrapped[None, :, :] - wrapped[:, None, :]  # r_j - r_i
    volume = abs(np.linalg.det(cell))
    spacing = [volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)]
    m = [int(np.ceil(r_cut / h)) + 1 for h in spacing]
    grid = np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in m], indexing="ij"), -1).reshape(-1, 3)
    shifts = grid @ cell
    reach = r_cut + np.linalg.norm(cell.sum(0)) + max(np.linalg.norm(c) for c in cell)
    shifts = shifts[np.linalg.norm(shifts, axis=1) <= reach]
    b = 1.0 / (np.sqrt(2.0) * gamma)
    n = len(pos)
    out = np.zeros((n, n))
    for shift in shifts:
        d = np.linalg.norm(diff + shift, axis=-1)
        mask = d < r_cut
        if not np.any(shift):
            mask[np.diag_indices(n)] = False
        if not mask.any():
            continue
        dm = d[mask]
        out[mask] += (erfc(alpha * dm) - erfc(b[mask] * dm)) / dm
    return out


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
    pos = np.asarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    n = len(pos)
    volume = abs(np.linalg.det(cell))
    if volume < 1e-8:
        raise ValueError("periodic structure with a degenerate cell")
    gamma = np.sqrt(sigma[:, None] ** 2 + sigma[None, :] ** 2)
    if alpha is None:
        alpha, r_auto, k_auto = ewald_parameters(cell, n, float(gamma.max()), accuracy)
    else:
        s = np.sqrt(-np.log(accuracy))
        alpha = float(alpha)
        r_auto, k_auto = max(s / alpha, s * np.sqrt(2.0) * float(gamma.max())), 2.0 * alpha * s
    r_cut = r_auto if r_cut is None else float(r_cut)
    k_cut = k_auto if k_cut is None else float(k_cut)

    # real space: all pairs (and self-images) within r_cut
    c = _real_space(pos, cell, gamma, alpha, r_cut)

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
