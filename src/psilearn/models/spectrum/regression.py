"""Sparse GP regression of many output columns (grid points or PCA scores) sharing one kernel.

Builds on :class:`psilearn.models._kernel.gpr.SparseGP` (whitened basis, eigen-decomposed): every column gets
the same noise-to-prior ratio ``reg`` (chosen by the summed marginal likelihood of all columns, so
neighbouring grid points are regularised alike) and its own prior amplitude ``s2`` (profiled).
The predictive variance is then ``s2_j * v(x)`` with one v(x) for all columns. With
``regularization: cv`` the ratio is instead the one of the GP's grid with the lowest summed k-fold
squared error over all columns (:func:`cv_regularization`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from psilearn.models._kernel.gpr import SparseGP


@dataclass
class ColumnsFit:
    """``reg`` (noise/prior ratio), ``coef`` (M', k) weights on kernel columns, ``s2`` (k,) prior
    amplitudes (units of the columns squared)."""

    reg: float
    coef: np.ndarray
    s2: np.ndarray


def _total_nll(gp: SparseGP, a: np.ndarray, yy: np.ndarray, n: int, reg: float) -> tuple[float, np.ndarray]:
    """Sum over columns of -2 log marginal likelihood with each column's s2 profiled out; and s2 (k,)."""
    s2p = gp.S2
    proj = a**2 / s2p[:, None]  # (r, k)
    q = np.sum(proj / (s2p + reg)[:, None], axis=0) + np.maximum(yy - proj.sum(0), 0.0) / reg
    q = np.maximum(q, 1e-300)
    r = len(s2p)
    nll = n * np.log(q / n) + n + np.sum(np.log(s2p + reg)) + (n - r) * np.log(reg)
    return float(np.sum(nll)), q / n


def fit_columns(gp: SparseGP, bw: np.ndarray, y: np.ndarray, reg: float | None = None) -> ColumnsFit:
    """Fit all columns of ``y`` (n, k) on the basis ``bw`` = B W (n, r) returned by SparseGP.build.
    ``reg`` fixed, or None for the marginal-likelihood optimum over all columns."""
    a = bw.T @ y
    yy = np.sum(y**2, axis=0)
    n = len(y)
    if reg is None:
        grid = gp.reg_grid()
        scores = [_total_nll(gp, a, yy, n, r)[0] for r in grid]
        best = int(np.argmin(scores))
        lo, hi = np.log(grid[max(best - 1, 0)]), np.log(grid[min(best + 1, len(grid) - 1)])
        res = minimize_scalar(lambda t: _total_nll(gp, a, yy, n, np.exp(t))[0], bounds=(lo, hi), method="bounded")
        reg = float(np.exp(res.x)) if res.fun <= scores[best] else float(grid[best])
    _, s2 = _total_nll(gp, a, yy, n, reg)
    coef = gp.P @ (a / (gp.S2 + reg)[:, None])
    return ColumnsFit(float(reg), coef, s2)


def kfold_predict(bw: np.ndarray, y: np.ndarray, folds: np.ndarray, reg: float) -> np.ndarray:
    """Held-out predictions (n, k): rows of each fold predicted by a fit on the other folds."""
    pred = np.zeros_like(y)
    for f in np.unique(folds):
        tr, va = folds != f, folds == f
        b = bw[tr]
        u = np.linalg.solve(b.T @ b + reg * np.eye(b.shape[1]), b.T @ y[tr])
        pred[va] = bw[va] @ u
    return pred


def cv_regularization(gp: SparseGP, bw: np.ndarray, y: np.ndarray, folds: np.ndarray) -> float:
    """The noise/prior ratio of ``gp.reg_grid()`` with the lowest k-fold squared error summed over
    all columns of ``y`` (n, k); ``folds``: fold id of each row (folds by structure)."""
    grid = gp.reg_grid()
    scores = np.zeros(len(grid))
    for f in np.unique(folds):  # as kfold_predict, with one eigendecomposition per fold for all ratios
        tr, va = folds != f, folds == f
        e, v = np.linalg.eigh(bw[tr].T @ bw[tr])
        a = v.T @ (bw[tr].T @ y[tr])
        bv = bw[va] @ v
        e = np.clip(e, 0.0, None)
        for i, reg in enumerate(grid):
            scores[i] += np.sum((bv @ (a / (e + reg)[:, None]) - y[va]) ** 2)
    return float(grid[int(np.argmin(scores))])


def predictive_scale(gp: SparseGP, fit: ColumnsFit, phi: np.ndarray, kss: np.ndarray) -> np.ndarray:
    """v(x) (n,) such that the predictive variance of column j is ``s2_j * v(x)``:
    k(x, x) - sum_r T_r^2 S2_r / (S2_r + reg) + reg, with T = phi P."""
    t = phi @ gp.P
    return np.clip(kss - np.sum(t**2 * (gp.S2 / (gp.S2 + fit.reg))[None, :], axis=1) + fit.reg, 0.0, None)
