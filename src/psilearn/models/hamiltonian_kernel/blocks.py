"""Sparse SA-GPR of one block type of an AO Hamiltonian (an element on-site, or an ordered element pair).

Every centre (atom i on-site, or ordered pair i -> j) carries the coupled irreps of its block F_ij
(:meth:`psilearn.targets.HamiltonianTarget.couple`). The irreps of one degree and parity (L, p) form
one kernel channel with the SA-GPR kernel of :mod:`psilearn.models._kernel.kernels`,

    k_L(A, B) = (x0_A . x0_B)**(zeta - 1) X_A X_B^T        ((2L+1) x (2L+1) per pair of centres),

on the centres' lambda-SOAP blocks (:mod:`psilearn.features.pair_soap`); each irrep occurrence
(a pair of radial functions a, b coupled to L) is one output column of that channel, fitted as its
own sparse GP on the shared basis (its own noise and amplitude; :class:`~psilearn.models._kernel.gpr.SparseGP`).
The normal equations are accumulated ``batch_rows`` kernel rows at a time
by QR of the whitened kernel rows (:meth:`~psilearn.models._kernel.gpr.SparseGP.from_triangular`), so the
n x M kernel is never formed and no digit is lost to the normal equations.
Invariant (L = 0, even) columns are centred on their training mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import qr

from psilearn.data.memory import check_allocation
from psilearn.features.lsoap import sigma_for
from psilearn.features.pair_soap import BlockKey, PairSoap
from psilearn.models._kernel.gpr import SparseGP, fixed_regularization, whitening
from psilearn.models._kernel.kernels import scalar_power
from psilearn.models._kernel.sparse import auto_sparse_size, select_sparse

MEMORY_HINT = "model.n_sparse, model.batch_rows, soap.max_radial/max_angular or the number of training structures"


@dataclass
class Channel:
    """One (L, parity) channel of a block type: ``starts`` of its columns in the block's irreps vector,
    ``coef`` (M (2L+1), n_columns) weights on the sparse kernel columns, ``mean`` (n_columns,),
    ``reg`` and ``s2`` (n_columns,) the noise/prior ratio and the prior amplitude chosen per column."""

    L: int
    parity: int
    starts: np.ndarray
    coef: np.ndarray
    mean: np.ndarray
    reg: np.ndarray
    s2: np.ndarray

    @property
    def sigma(self) -> int:
        return sigma_for(self.L, self.parity)


@dataclass
class BlockTypeFit:
    """The fitted GPR of one block type: its sparse centres' expansion coefficients (M, C) and channels."""

    key: BlockKey
    size: int  # length of the block's irreps vector
    sparse: np.ndarray
    channels: list[Channel] = field(default_factory=list)
    n_train: int = 0
    #: the least, over the training centres, of the largest invariant similarity x0 . x0_m to a sparse
    #: centre (1: identical): a new centre below it lies outside the training range (:func:`max_similarity`)
    coverage: float = -1.0


def max_similarity(x0: np.ndarray, x0m: np.ndarray, chunk: int = 2000) -> np.ndarray:
    """(n,) the largest invariant similarity x0 . x0_m of each centre (rows of ``x0``, unit norm) to the sparse centres ``x0m``."""
    return np.concatenate([(x0[s : s + chunk] @ x0m.T).max(axis=1) for s in range(0, len(x0), chunk)]) if len(x0) else np.zeros(0)


def channel_columns(layout) -> dict[tuple[int, int], np.ndarray]:
    """{(L, parity): start offsets of the irreps of that degree and parity} of a pair layout."""
    out: dict[tuple[int, int], list[int]] = {}
    for b in layout:
        out.setdefault((b.L, b.p), []).append(b.start)
    return {k: np.array(v, dtype=int) for k, v in sorted(out.items())}


def kernel(xa: np.ndarray, x0a: np.ndarray, xb: np.ndarray, x0b: np.ndarray, zeta: float) -> np.ndarray:
    """SA-GPR kernel (na (2L+1), nb (2L+1)) between blocks ``xa`` (na, 2L+1, Q) and ``xb`` with their
    invariant vectors ``x0a`` (na, Q0), ``x0b`` (nb, Q0)."""
    na, d, q = xa.shape
    nb = xb.shape[0]
    k = (xa.reshape(na * d, q) @ xb.reshape(nb * d, q).T).reshape(na, d, nb, d)
    k *= scalar_power(x0a @ x0b.T, zeta)[:, None, :, None]
    return k.reshape(na * d, nb * d)


def _columns(values: np.ndarray, starts: np.ndarray, d: int) -> np.ndarray:
    """(n d, n_columns) targets of a channel from the centres' irreps vectors (n, size)."""
    y = np.stack([values[:, s : s + d] for s in starts], axis=-1)  # (n, d, k)
    return y.reshape(len(values) * d, len(starts))


def fit_block_type(soap: PairSoap, key: BlockKey, coefficients: np.ndarray, values: np.ndarray, layout, options) -> BlockTypeFit:
    """Fit the block type ``key`` on its training centres: ``coefficients`` (n, C) (PairSoap),
    ``values`` (n, size) the coupled irreps of their blocks (Hartree)."""
    n = len(coefficients)
    m = auto_sparse_size(n) if options.n_sparse is None else min(n, int(options.n_sparse))
    check_allocation(8.0 * n * soap.soap.width(0, 1), f"invariant features of {n} centres of block type {key}", MEMORY_HINT)
    x0 = np.concatenate([soap.blocks(coefficients[s : s + 2000], [(0, 1)])[(0, 1)][:, 0, :] for s in range(0, n, 2000)])
    chosen = select_sparse(x0, m, options.sparse_method)
    fit = BlockTypeFit(key, int(values.shape[1]), coefficients[chosen].copy(), n_train=n)
    fit.coverage = float(max_similarity(x0, x0[chosen]).min())
    cols = channel_columns(layout)
    sparse_blocks = soap.blocks(fit.sparse, [(L, sigma_for(L, p)) for L, p in cols])
    x0m = x0[chosen]
    reg = fixed_regularization(options.regularization)
    for (L, p), starts in cols.items():
        d = 2 * L + 1
        xm = sparse_blocks[(L, sigma_for(L, p))]
        kmm = kernel(xm, x0m, xm, x0m, options.zeta)
        check_allocation(8.0 * (3 * kmm.size + options.batch_rows * kmm.shape[1]), f"the kernel of channel L={L} of block type {key}",
                         MEMORY_HINT)
        mean = values[:, starts].mean(axis=0) if (L, p) == (0, 1) else np.zeros(len(starts))
        g = whitening([kmm], kmm.shape[0])
        r_aug, yy, rows = None, np.zeros(len(starts)), 0
        step = max(1, options.batch_rows // d)
        for s in range(0, n, step):
            xb = soap.blocks(coefficients[s : s + step], [(L, sigma_for(L, p))])[(L, sigma_for(L, p))]
            y = _columns(values[s : s + step], starts, d) - mean[None, :]
            stacked = np.hstack([kernel(xb, x0[s : s + step], xm, x0m, options.zeta) @ g, y])
            # QR batch after batch (never B^T B, which would halve the digits; SparseGP.from_triangular)
            r_aug = qr(stacked if r_aug is None else np.vstack([r_aug, stacked]), mode="r", overwrite_a=True)[0]
            yy += np.sum(y**2, axis=0)
            rows += len(y)
        gp, us = SparseGP.from_triangular(r_aug[:, : g.shape[1]], g)
        a = us.T @ r_aug[:, g.shape[1] :]
        col = [gp.fit_sums(a[:, j], float(yy[j]), rows, reg) for j in range(len(starts))]
        fit.channels.append(Channel(L, p, starts, np.stack([c.coef for c in col], axis=1), mean,
                                    np.array([c.reg for c in col]), np.array([c.s2 for c in col])))
    return fit


def predict_block_type(soap: PairSoap, fit: BlockTypeFit, coefficients: np.ndarray, zeta: float, batch_rows: int,
                       cache: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(n, size) coupled irreps of the blocks of centres given by their ``coefficients`` (n, C), and (n,)
    each centre's :func:`max_similarity` to the sparse centres. ``cache`` keeps the sparse centres'
    blocks between calls (they are rebuilt from coefficients)."""
    cache = {} if cache is None else cache
    chans = [(c.L, c.sigma) for c in fit.channels]
    if "blocks" not in cache:
        cache["blocks"] = soap.blocks(fit.sparse, chans)
    x0m = cache["blocks"][(0, 1)][:, 0, :]
    out = np.zeros((len(coefficients), fit.size))
    similarity = np.zeros(len(coefficients))
    step = max(1, batch_rows // max(2 * c.L + 1 for c in fit.channels))  # kernel rows per batch of the widest channel
    for s in range(0, len(coefficients), step):
        part = coefficients[s : s + step]
        blocks = soap.blocks(part, chans)
        x0 = blocks[(0, 1)][:, 0, :]
        similarity[s : s + len(part)] = max_similarity(x0, x0m)
        for c in fit.channels:
            d = 2 * c.L + 1
            y = kernel(blocks[(c.L, c.sigma)], x0, cache["blocks"][(c.L, c.sigma)], x0m, zeta) @ c.coef + c.mean[None, :]
            y = y.reshape(len(part), d, len(c.starts))
            for j, st in enumerate(c.starts):
                out[s : s + len(part), st : st + d] = y[:, :, j]
    return out, similarity
