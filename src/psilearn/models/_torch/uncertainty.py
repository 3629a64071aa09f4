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


def psd_sqrt(m: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix such as an LLPR ``inv``
    (negative round-off eigenvalues clipped to 0): a factor with psd_sqrt(m) @ psd_sqrt(m) = m."""
    w, v = np.linalg.eigh(0.5 * (m + m.T))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


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


def log_factor_variance(dof: np.ndarray) -> np.ndarray:
    """Sampling variance of log(mean of d squared z-scores) for Gaussian errors: var log(chi2_d / d) =
    trigamma(d / 2) (about 2/d for large d); inf where d <= 0."""
    from scipy.special import polygamma

    d = np.asarray(dof, float)
    return np.where(d > 0, polygamma(1, np.maximum(d, 1e-12) / 2), np.inf)


def log_mean_variance(ratio: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Sampling variance of log(mean of ``ratio``) per column estimated from the data (delta method):
    var(mean) / mean^2, with var(mean) = G / (G - 1) * sum_g (sum_{i in g} (r_i - mean))^2 / N^2, the rows
    clustered by ``groups`` (one id per row: the structure of each sample, so that the atoms of one
    structure count as one draw). ``ratio`` (N, n_cols) -> (n_cols,); inf with fewer than 2 groups."""
    ratio = np.asarray(ratio, float)
    ids, g = np.unique(groups, return_inverse=True)
    if len(ids) < 2:
        return np.full(ratio.shape[1], np.inf)
    mean = ratio.mean(0)
    sums = np.zeros((len(ids), ratio.shape[1]))
    np.add.at(sums, g, ratio - mean)
    var_mean = len(ids) / (len(ids) - 1) * np.sum(sums**2, axis=0) / len(ratio) ** 2
    return var_mean / np.maximum(mean, 1e-300) ** 2


def between_level_spread(own: np.ndarray, var_log: np.ndarray) -> float:
    """Variance tau^2 of the log calibration factor between levels, beyond its sampling noise: the
    DerSimonian-Laird moment estimate on log ``own`` (n_levels, n_blocks) with sampling variances
    ``var_log`` (n_levels, n_blocks), one for all blocks (their Q statistics and normalisers summed),
    >= 0. Levels without a factor (NaN, or infinite variance) are left out; 0 with fewer than 2 levels."""
    excess, norm = 0.0, 0.0
    for b in range(own.shape[1]):
        ok = np.isfinite(own[:, b]) & (own[:, b] > 0) & np.isfinite(var_log[:, b])
        if ok.sum() < 2:
            continue
        y, w = np.log(own[ok, b]), 1.0 / var_log[ok, b]
        q = float(np.sum(w * (y - np.sum(w * y) / w.sum()) ** 2))  # E[q] = (K - 1) + tau^2 * (sum w - sum w^2 / sum w)
        excess += q - (ok.sum() - 1)
        norm += float(w.sum() - np.sum(w**2) / w.sum())
    return max(0.0, excess / norm) if norm > 0 else 0.0


def shrink_factors(own: np.ndarray, pooled: np.ndarray, dof: np.ndarray, tau2: float | None = None,
                   var_log: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Each level's calibration factor shrunk towards the pooled one, in log space (empirical Bayes).

    ``own`` (n_levels, n_blocks): each level's own factor (mean squared z-score of its validation
    samples with the raw variance), NaN where it has none; ``pooled`` (n_blocks,): the factor of all
    levels together; ``dof`` (n_levels, n_blocks): the degrees of freedom of each own factor.
    Model: log own = log a + e with e ~ N(0, v), v = ``var_log`` (None: :func:`log_factor_variance` (dof),
    that of Gaussian errors), and the true log factors a of the levels spread around log pooled with
    variance ``tau2`` (None: estimated by :func:`between_level_spread`). The posterior mean of log a is
    w log own + (1 - w) log pooled with w = tau2 / (tau2 + v) ~ dof / (dof + 2 / tau2) for Gaussian
    errors: the pooled factor acts as a prior worth 2 / tau2 degrees of freedom.
    Returns (factors (n_levels, n_blocks), w (n_levels, n_blocks), tau2)."""
    own, dof = np.asarray(own, float), np.asarray(dof, float)
    pooled = np.broadcast_to(np.asarray(pooled, float), own.shape)
    ok = np.isfinite(own) & (own > 0) & (dof > 0)
    v = np.where(ok, log_factor_variance(np.where(ok, dof, 0)) if var_log is None else np.asarray(var_log, float), np.inf)
    tau2 = between_level_spread(own, v) if tau2 is None else float(tau2)
    w = np.where(np.isfinite(v), tau2 / np.maximum(tau2 + v, 1e-300), 0.0)
    log_own = np.log(np.where(ok, own, 1.0))
    return np.where(w > 0, np.exp(w * log_own + (1 - w) * np.log(pooled)), pooled), w, tau2  # w = 0: the pooled factor exactly
