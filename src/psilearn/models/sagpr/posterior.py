"""The joint posterior of an SA-GPR model across structures, as low-rank factors.

:meth:`SAGPR.predict` gives each sample's own predictive covariance. Choosing which structures to
label so that the error falls on *other* structures (active learning towards a focus set) also needs
the covariance *between* samples: how much labelling A tells about B. In the model's whitened weight
space (see :mod:`psilearn.models._kernel.gpr`: features B = Phi G, weights u ~ N(0, s2 I)) the
posterior of u given the training data has covariance

    Sigma = s2 I - W diag(s2 - d) W^T,   W = G^T K_MM P (orthonormal columns: the directions the data saw),

so R = B Sigma^(1/2) = sqrt(s2) B - T diag(sqrt(s2) - sqrt(d)) W^T (T = Phi P) is a factor with
cov(f_a, f_b) = R_a R_b^T for the noise-free irreps of any two samples a, b: the projected-process
(Nystroem) part of the posterior, which is the part any label can reduce (the remainder
s2 (k - Q) lies outside the sparse points' span and no label of this model changes it).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.data.memory import check_allocation
from psilearn.features.compress import apply_projections
from psilearn.models._kernel.gpr import whitening_blocks
from psilearn.models._kernel.kernels import sparse_kernel, sparse_sparse_kernel

JOINT_HINT = "model.n_sparse, or fewer structures (a smaller active-learning pool or focus set)"


def posterior_factors(model, frames: list[Atoms]) -> list[tuple[np.ndarray, float]]:
    """One (R, sigma2) per irrep occurrence of ``model``'s target (in the order of its channels):
    R (n_samples, 2l+1, rank) with R_a R_b^T the posterior covariance (label units squared, in the
    orthonormal irreps basis) of the noise-free irreps of samples a and b of ``frames`` (structures,
    or atoms for per-atom targets), and sigma2 the model's noise variance of one observed component (with a
    per-element ``regularization``, that of regularisation 1: the rows' own weights are not applied)."""
    from psilearn.models.sagpr.covariance import needs_rebuild, rebuild_covariance_basis

    if not model.channels:
        raise RuntimeError("model is not fitted")
    if needs_rebuild(model):
        rebuild_covariance_basis(model)
    feats = model._lsoap().compute(frames, model._channel_list(), progress=model.progress)
    if model.projections:
        apply_projections(feats, model.projections)
    per = model.target.per
    n = feats.n_structures if per == "structure" else len(feats.numbers)
    out = []
    for cm in model.channels:
        d = 2 * cm.channel[0] + 1
        kmm = sparse_sparse_kernel(model.sparse, cm.channel, model.config.zeta)
        m = sum(len(k) for k in kmm)
        check_allocation(8 * 4 * n * d * m, f"SA-GPR joint posterior of {n} samples, channel l={d // 2}", JOINT_HINT)
        phi = sparse_kernel(feats, model.sparse, cm.channel, model.config.zeta, per, model.target.pool)
        phi, kmm = model._with_global_state(phi, kmm, feats, frames, d)
        # B = Phi G and W = G^T K_MM P block by block (G is block-diagonal, one block per element)
        gs, ends = whitening_blocks(kmm), np.cumsum([len(k) for k in kmm])
        spans = [slice(e - len(k), e) for k, e in zip(kmm, ends)]
        b = np.hstack([phi[:, sl] @ g for sl, g in zip(spans, gs)])
        kp = _block_product(kmm, cm.gp.P)
        w = np.vstack([g.T @ kp[sl] for sl, g in zip(spans, gs)])  # (r_K, r): the data's directions in the whitened basis
        t = phi @ cm.gp.P
        for bi, col in cm.columns:
            shrink = np.sqrt(col.s2) - np.sqrt(np.maximum(col.d, 0.0))
            r = (np.sqrt(col.s2) * b - (t * shrink) @ w.T) * model.scales[bi]
            out.append((r.reshape(n, d, -1), float(col.sigma2 * model.scales[bi] ** 2)))
    return out


def posterior_blocks(model) -> list[int]:
    """The Target block (index into ``model.target.blocks``) of each factor of :func:`posterior_factors`,
    in its order (channel by channel, which need not be the blocks' order)."""
    if not model.channels:
        raise RuntimeError("model is not fitted")
    return [bi for cm in model.channels for bi, _ in cm.columns]


def _block_product(blocks: list[np.ndarray], p: np.ndarray) -> np.ndarray:
    """K_MM @ P with K_MM given as its diagonal blocks."""
    out, start = np.empty_like(p), 0
    for k in blocks:
        out[start : start + len(k)] = k @ p[start : start + len(k)]
        start += len(k)
    return out
