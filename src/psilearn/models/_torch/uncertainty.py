"""Uncertainty of the network's predictions: last-layer prediction rigidity (LLPR) and deep
ensembles, both calibrated on the validation split.

LLPR (Bigi et al., Mach. Learn.: Sci. Technol. 5, 045018 (2024)): the readout is linear in the
features f of the last layers, so treating its weights as a Bayesian linear model gives, for an
output irrep of type (l, p) with features f_m (mul,) per component m,

    var = alpha^2 * (1 / (2l + 1)) * sum_m f_m^T (F^T F + reg I)^-1 f_m,

where F stacks the (pooled) training features of all samples and components of that irrep type.
Averaging over m makes the variance rotation invariant, so the Cartesian standard deviations built
from it are exactly equivariant. ``alpha^2`` is fitted per target block on the validation split so
that the mean squared z-score there is 1.

Deep ensembles: the spread of independently initialised members (same data), per block averaged over
m for the same reason, scaled by a per-block factor fitted on the validation split.
"""

from __future__ import annotations

import numpy as np
import torch

from psilearn.models._torch.graph import Graph, collate
from psilearn.models._torch.network import EquivariantNetwork, pool_atoms


def feature_slices(net: EquivariantNetwork) -> dict[tuple[int, int], list[tuple[int, int, int]]]:
    """For each irrep type (l, p) of the features: [(start, mul, dim)] chunks of the feature vector."""
    out: dict[tuple[int, int], list] = {}
    start = 0
    for mul, ir in net.irreps_features:
        out.setdefault((ir.l, ir.p), []).append((start, mul, ir.dim))
        start += mul * ir.dim
    return out


def block_features(net: EquivariantNetwork, feats: torch.Tensor, key: tuple[int, int]) -> torch.Tensor:
    """Features of irrep type ``key`` as (rows, 2l+1, mul_total) from (rows, irreps_features.dim)."""
    parts = [feats[:, s : s + mul * d].reshape(-1, mul, d) for s, mul, d in feature_slices(net)[key]]
    return torch.cat(parts, dim=1).transpose(1, 2)


@torch.no_grad()
def last_layer_features(net: EquivariantNetwork, graphs: list[Graph], per: str, pool: str, keys: list[tuple[int, int]],
                        batch_size: int, device, dtype) -> dict[tuple[int, int], np.ndarray]:
    """Per-sample readout features of each irrep type: {(l, p): (n_samples, 2l+1, mul)} float64."""
    net.eval()
    out = {k: [] for k in keys}
    for s in range(0, len(graphs), batch_size):
        b = collate(graphs[s : s + batch_size], device, dtype)
        f = net.features(b)
        if per == "structure":
            f = pool_atoms(f, b, pool)
        for k in keys:
            out[k].append(block_features(net, f, k).double().cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


class LLPR:
    """Last-layer covariance per irrep type: ``inv[(l, p)]`` (mul, mul) = (F^T F + reg I)^-1, and
    per-block calibration factors ``alpha2`` (n_blocks,)."""

    def __init__(self, inv: dict[tuple[int, int], np.ndarray], alpha2: np.ndarray | None = None):
        self.inv = inv
        self.alpha2 = alpha2

    @classmethod
    def fit(cls, feats: dict[tuple[int, int], np.ndarray], regularization: float) -> "LLPR":
        inv = {}
        for k, f in feats.items():
            x = f.reshape(-1, f.shape[-1])
            c = x.T @ x
            reg = regularization * max(np.trace(c) / len(c), 1e-300)
            inv[k] = np.linalg.inv(c + reg * np.eye(len(c)))
        return cls(inv)

    def raw_variance(self, feats: dict[tuple[int, int], np.ndarray], blocks) -> np.ndarray:
        """Uncalibrated variance per block (n_samples, n_blocks): mean over m of f_m^T inv f_m."""
        cols = []
        for b in blocks:
            f = feats[(b.l, b.p)]
            cols.append(np.einsum("nmi,ij,nmj->n", f, self.inv[(b.l, b.p)], f) / f.shape[1])
        return np.stack(cols, axis=1)

    def variance(self, feats, blocks) -> np.ndarray:
        return self.raw_variance(feats, blocks) * (1.0 if self.alpha2 is None else self.alpha2)


def calibrate(raw_var: np.ndarray, err2: np.ndarray) -> np.ndarray:
    """Per-block factor alpha^2 making the mean of err^2 / (alpha^2 raw_var) equal to 1 on held-out
    data. ``raw_var`` (n, n_blocks); ``err2`` (n, n_blocks) squared errors averaged over components."""
    ratio = err2 / np.maximum(raw_var, 1e-300)
    a2 = ratio.mean(axis=0)
    return np.where(np.isfinite(a2) & (a2 > 0), a2, 1.0)


def block_mean_sq(x: np.ndarray, blocks) -> np.ndarray:
    """(n, n_irreps) -> (n, n_blocks): mean over each block's components of x^2."""
    return np.stack([np.mean(x[:, b.cols] ** 2, axis=1) for b in blocks], axis=1)


def expand_blocks(v: np.ndarray, blocks, n_irreps: int) -> np.ndarray:
    """(n, n_blocks) per-block values -> (n, n_irreps), repeated over each block's components."""
    out = np.zeros((len(v), n_irreps))
    for i, b in enumerate(blocks):
        out[:, b.cols] = v[:, i : i + 1]
    return out


def ensemble_variance(member_preds: np.ndarray, blocks) -> np.ndarray:
    """(K, n, n_irreps) member predictions -> (n, n_blocks) spread (unbiased, averaged over m)."""
    k = member_preds.shape[0]
    dev = member_preds - member_preds.mean(0, keepdims=True)
    var = (dev**2).sum(0) / max(k - 1, 1)
    return np.stack([var[:, b.cols].mean(1) for b in blocks], axis=1)


def cartesian_cov(target, var_blocks: np.ndarray) -> np.ndarray:
    """Cartesian covariance (n, 3**rank, 3**rank) for block-isotropic irrep variances (n, n_blocks)."""
    from psilearn.targets.cartesian import cartesian_basis

    tc = cartesian_basis(target.tensor).to_cartesian
    cov = np.zeros((len(var_blocks), target.size, target.size))
    for i, b in enumerate(target.blocks):
        rows = tc[b.cols]
        cov += var_blocks[:, i, None, None] * (rows.T @ rows)[None]
    return cov
