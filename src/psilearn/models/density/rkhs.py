"""Sparse environments, lambda-SOAP kernels and the RKHS projection of the density model.

For an element Z and degree l, with M = M_{Z,l} sparse environments X_m (2l+1, Q) of the
(l, sigma=+1) lambda-SOAP channel, the kernel between an atom i and environment m is the
(2l+1) x (2l+1) block k^l(i, m) = X_i X_m^T (x0_i . x0_m)^(zeta-1) (x0: the invariant channel).
K_MM = V diag(e) V^T (eigenvalues below ``eigen_tol`` x the largest dropped, at most
``max_features`` kept) gives the projector P = V e^(-1/2) (M(2l+1), D) and the atom's RKHS features
Phi_i = K(i, M) P, shape (2l+1, D). Under a rotation R (with or without inversion) X_i -> D^l(R) X_i
(parity (-1)^l for sigma = +1), so Phi_i -> D^l(R) Phi_i, and every prediction Phi_i w is
exactly equivariant like a density coefficient of degree l.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psilearn.data.splits import farthest_point_order
from psilearn.features import LambdaSoap
from psilearn.models._kernel.kernels import scalar_power


def channel(l: int) -> tuple[int, int]:
    """The lambda-SOAP channel of a density coefficient of degree l (parity (-1)^l: sigma = +1)."""
    return (l, 1)


def fps_order(x0: np.ndarray, n: int) -> np.ndarray:
    """Farthest-point order (up to ``n``) of the invariant features ``x0`` (n_atoms, Q0) of one
    element, starting from the environment farthest from the mean. The invariant channel is used
    because distances between l > 0 blocks depend on each environment's orientation; a prefix of
    the order gives the sparse set of every l (so M_{Z,l} <= M_Z share environments)."""
    if len(x0) == 0:
        return np.zeros(0, dtype=int)
    first = int(np.argmax(np.linalg.norm(x0 - x0.mean(0), axis=1)))
    return farthest_point_order(x0, first, n)


def atom_kernel(x: np.ndarray, x0: np.ndarray, xs: np.ndarray, x0s: np.ndarray, zeta: float) -> np.ndarray:
    """k^l between atoms (n, 2l+1, Q) and environments (M, 2l+1, Q): (n, 2l+1, M, 2l+1); ``x0``
    (n, Q0) and ``x0s`` (M, Q0) the invariant features for the scalar power."""
    n, d, q = x.shape
    m = len(xs)
    if q == 0 or n == 0 or m == 0:
        return np.zeros((n, d, m, d))
    lin = (x.reshape(-1, q) @ xs.reshape(-1, q).T).reshape(n, d, m, d)
    if zeta != 1:
        lin *= scalar_power(x0 @ x0s.T, zeta)[:, None, :, None]
    return lin


def projector(kmm: np.ndarray, eigen_tol: float, max_features: int) -> np.ndarray:
    """P = V e^(-1/2) over the retained eigenpairs of K_MM (largest first): (M(2l+1), D)."""
    kmm = 0.5 * (kmm + kmm.T)
    e, v = np.linalg.eigh(kmm)
    order = np.argsort(e)[::-1]
    e, v = e[order], v[:, order]
    top = e[0] if len(e) else 0.0
    keep = e > eigen_tol * top if top > 0 else np.zeros(len(e), bool)
    if max_features:
        keep &= np.arange(len(e)) < max_features
    return v[:, keep] / np.sqrt(e[keep])


@dataclass
class SparseBasis:
    """Per element: the sparse environments' lambda-SOAP blocks; per (Z, l): the projector.

    ``blocks[(l, 1)][Z]`` (M_Z, 2l+1, Q) in farthest-point order (``(0, 1)`` always present);
    ``counts[(Z, l)]`` = M_{Z,l} (a prefix of that order); ``projectors[(Z, l)]`` (M_{Z,l}(2l+1), D)."""

    blocks: dict
    counts: dict
    projectors: dict
    zeta: float

    @classmethod
    def build(cls, soap: LambdaSoap, coefficients: dict, counts: dict, zeta: float, eigen_tol: float,
              max_features: int) -> "SparseBasis":
        """From the sparse environments' expansion coefficients {Z: (M_Z, C)} (rebuilt exactly the
        same way when a model file is loaded) and the counts {(Z, l): M_{Z,l}}."""
        ls = sorted({l for _, l in counts})
        blocks: dict = {}
        for z, c in coefficients.items():
            for ch, b in soap.from_coefficients(c, [channel(l) for l in ls]).items():
                blocks.setdefault(ch, {})[z] = b
        basis = cls(blocks, dict(counts), {}, zeta)
        for (z, l), m in sorted(counts.items()):
            xs, x0s = basis.sparse(z, l)
            k = atom_kernel(xs, x0s, xs, x0s, zeta).reshape(m * (2 * l + 1), m * (2 * l + 1))
            basis.projectors[(z, l)] = projector(k, eigen_tol, max_features)
        return basis

    def sparse(self, z: int, l: int) -> tuple[np.ndarray, np.ndarray]:
        """(X_M (M_{Z,l}, 2l+1, Q), x0_M (M_{Z,l}, Q0)) of the sparse environments of (Z, l)."""
        m = self.counts[(z, l)]
        return self.blocks[channel(l)][z][:m], self.blocks[(0, 1)][z][:m, 0, :]

    def width(self, z: int, l: int) -> int:
        """D_{Z,l}: RKHS features per atom component."""
        return self.projectors[(z, l)].shape[1]

    def features(self, feats, z: int, l: int, rows=None) -> np.ndarray:
        """Phi (n, 2l+1, D) of the atoms of element ``z`` in ``feats`` (AtomFeatures; ``rows``
        selects among that element's atoms)."""
        x = feats.blocks[channel(l)][z]
        x0 = feats.blocks[(0, 1)][z][:, 0, :]
        if rows is not None:
            x, x0 = x[rows], x0[rows]
        xs, x0s = self.sparse(z, l)
        if len(x) == 0:
            return np.zeros((0, 2 * l + 1, self.width(z, l)))
        k = atom_kernel(x, x0, xs, x0s, self.zeta)
        n, d = k.shape[:2]
        return (k.reshape(n * d, -1) @ self.projectors[(z, l)]).reshape(n, d, -1)
