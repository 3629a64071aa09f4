"""Symmetry-adapted kernels between atomic environments, summed (or averaged) over structures.

For a channel of degree l the kernel between environments i and j is the (2l+1) x (2l+1) block

    k_l(i, j) = k_0(i, j)**(zeta - 1) * X_l(i) X_l(j)^T,   k_0(i, j) = x_0(i) . x_0(j)

with X_l the normalised lambda-SOAP block of i (2l+1, Q) and x_0 its invariant SOAP vector
(Grisafi et al., PRL 120, 036002 (2018)). Environments of different central elements do not
interact. k_l(Ri, Rj) = D(R) k_l(i, j) D(R)^T, which makes every prediction exactly equivariant.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from psilearn.features import AtomFeatures

_CHUNK = 2048  # atoms per chunk when building kernels (bounds memory)


def scalar_power(k0: np.ndarray, zeta: float) -> np.ndarray:
    """k0**(zeta-1). Integer powers of a linear kernel stay positive definite for any sign; a
    fractional power needs k0 >= 0, so only then negative overlaps are clipped."""
    if float(zeta).is_integer():
        return k0 ** int(zeta - 1)
    return np.clip(k0, 0.0, None) ** (zeta - 1)


def _aggregation(feats: AtomFeatures, per: str, pool: str) -> sp.csr_matrix:
    """Sparse (n_samples, n_atoms) matrix mapping atom contributions to samples."""
    n_atoms = len(feats.numbers)
    if per == "atom":
        return sp.identity(n_atoms, format="csr")
    counts = np.bincount(feats.structure, minlength=feats.n_structures).astype(float)
    w = np.ones(n_atoms) if pool == "sum" else 1.0 / counts[feats.structure]
    return sp.csr_matrix((w, (feats.structure, np.arange(n_atoms))), shape=(feats.n_structures, n_atoms))


def sparse_kernel(
    feats: AtomFeatures,
    sparse: dict[tuple[int, int], dict[int, np.ndarray]],
    channel: tuple[int, int],
    zeta: float,
    per: str,
    pool: str,
) -> np.ndarray:
    """Kernel between samples and sparse environments for ``channel`` (l, sigma), shape
    (n_samples * (2l+1), M * (2l+1)) with M = all sparse environments, species in sorted order."""
    l = channel[0]
    d = 2 * l + 1
    agg = _aggregation(feats, per, pool)
    species = sorted(sparse[channel])
    sizes = [len(sparse[channel][z]) for z in species]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    out = np.zeros((agg.shape[0], d, offsets[-1], d))
    for k, z in enumerate(species):
        atoms = feats.index[z]
        if len(atoms) == 0 or sizes[k] == 0:
            continue
        xs = sparse[channel][z]  # (M_z, d, Q)
        x0s = sparse[(0, 1)][z][:, 0, :]  # (M_z, Q0)
        q = xs.shape[2]
        if q == 0:  # no features of this symmetry (e.g. pseudo-scalars of lambda-SOAP): kernel is 0
            continue
        xs_t = xs.reshape(-1, q).T  # (Q, M_z*d)
        for start in range(0, len(atoms), _CHUNK):
            rows = atoms[start : start + _CHUNK]
            pos = slice(start, start + len(rows))
            x = feats.blocks[channel][z][pos]  # (n, d, Q)
            lin = (x.reshape(-1, q) @ xs_t).reshape(len(rows), d, sizes[k], d)
            if zeta != 1:
                k0 = feats.blocks[(0, 1)][z][pos][:, 0, :] @ x0s.T  # (n, M_z)
                lin *= scalar_power(k0, zeta)[:, None, :, None]
            block = agg[:, rows] @ lin.reshape(len(rows), -1)
            out[:, :, offsets[k] : offsets[k + 1], :] += np.asarray(block).reshape(agg.shape[0], d, sizes[k], d)
    return out.reshape(agg.shape[0] * d, offsets[-1] * d)


def sparse_sparse_kernel(sparse: dict[tuple[int, int], dict[int, np.ndarray]], channel: tuple[int, int], zeta: float) -> list[np.ndarray]:
    """K_MM between sparse environments as its diagonal blocks (one per element, sorted), each
    (M_Z*(2l+1), M_Z*(2l+1)); environments of different elements do not interact."""
    l = channel[0]
    d = 2 * l + 1
    blocks = []
    for z in sorted(sparse[channel]):
        xs = sparse[channel][z]
        m, _, q = xs.shape
        if q == 0:
            blocks.append(np.zeros((m * d, m * d)))
            continue
        lin = (xs.reshape(-1, q) @ xs.reshape(-1, q).T).reshape(m, d, m, d)
        if zeta != 1:
            x0 = sparse[(0, 1)][z][:, 0, :]
            lin *= scalar_power(x0 @ x0.T, zeta)[:, None, :, None]
        blocks.append(lin.reshape(m * d, m * d))
    return blocks


def self_kernel(feats: AtomFeatures, channel: tuple[int, int], zeta: float, per: str, pool: str) -> np.ndarray:
    """Prior covariance k(A, A) of each sample with itself, (n_samples, 2l+1, 2l+1)."""
    l = channel[0]
    d = 2 * l + 1
    if per == "atom":
        out = np.zeros((len(feats.numbers), d, d))
        for z, atoms in feats.index.items():
            x = feats.blocks[channel][z]
            out[atoms] = np.einsum("naq,nbq->nab", x, x)  # k_0(i, i) = 1 for normalised SOAP
        return out
    out = np.zeros((feats.n_structures, d, d))
    counts = np.bincount(feats.structure, minlength=feats.n_structures)
    for z, atoms in feats.index.items():
        if len(atoms) == 0:
            continue
        x, x0 = feats.blocks[channel][z], feats.blocks[(0, 1)][z][:, 0, :]
        s = feats.structure[atoms]
        bounds = np.concatenate([[0], np.cumsum(np.bincount(s, minlength=feats.n_structures))])
        for a in np.flatnonzero(np.diff(bounds)):
            xa = x[bounds[a] : bounds[a + 1]]
            lin = np.einsum("iaq,jbq->iajb", xa, xa)
            if zeta != 1:
                k0 = x0[bounds[a] : bounds[a + 1]] @ x0[bounds[a] : bounds[a + 1]].T
                lin *= scalar_power(k0, zeta)[:, None, :, None]
            out[a] += lin.sum(axis=(0, 2))
    if pool == "mean":
        out /= (counts**2)[:, None, None]
    return out


def contracted_weights(sparse: dict, channel: tuple[int, int], zeta: float, coef: np.ndarray) -> dict[int, np.ndarray]:
    """For zeta in {1, 2} the mean prediction sum_m k(i, m) c_m is a linear (zeta=1) or bilinear
    (zeta=2) form in atom i's features, so the sparse sum can be done once:
    zeta=1: W[q] = sum_m sum_b X_m[b, q] c_m[b];  zeta=2: W[p, q] = sum_m x0_m[p] sum_b X_m[b, q] c_m[b].
    Returns {Z: W}; see :func:`contracted_mean`."""
    l = channel[0]
    d = 2 * l + 1
    out, start = {}, 0
    for z in sorted(sparse[channel]):
        xs = sparse[channel][z]  # (M, d, Q)
        m = len(xs)
        c = coef[start * d : (start + m) * d].reshape(m, d)
        start += m
        v = np.einsum("mbq,mb->mq", xs, c)  # (M, Q)
        out[z] = v.sum(0) if zeta == 1 else sparse[(0, 1)][z][:, 0, :].T @ v  # (Q,) or (Q0, Q)
    return out


def contracted_mean(feats: AtomFeatures, channel: tuple[int, int], zeta: float, weights: dict, per: str, pool: str) -> np.ndarray:
    """Mean prediction (n_samples, 2l+1) from :func:`contracted_weights`, without forming the kernel."""
    l = channel[0]
    d = 2 * l + 1
    n_atoms = len(feats.numbers)
    atom_out = np.zeros((n_atoms, d))
    for z, atoms in feats.index.items():
        if len(atoms) == 0 or z not in weights:
            continue
        x = feats.blocks[channel][z]
        if x.shape[2] == 0:
            continue
        w = weights[z]
        n, q = len(atoms), x.shape[2]
        if zeta == 1:
            atom_out[atoms] = (x.reshape(-1, q) @ w).reshape(n, d)
        else:  # 2-D products so that numpy hands them to BLAS
            a = (x.reshape(-1, q) @ w.T).reshape(n, d, -1)
            atom_out[atoms] = np.einsum("nmp,np->nm", a, feats.blocks[(0, 1)][z][:, 0, :])
    return np.asarray(_aggregation(feats, per, pool) @ atom_out)
