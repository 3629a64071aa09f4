"""k-fold cross-validation of a sparse-GP channel from per-fold normal equations (no kernel rows).

The streamed fit (:mod:`psilearn.models.sagpr.stream`) accumulates Phi^T Phi and Phi^T Y once per
fold (:class:`~psilearn.models._kernel.normal.ChannelSums`). In the basis P (M', r) of the fit on
all folds (:meth:`SparseGP.from_sums`) fold g has U_g = P^T C_g P (r, r), a_g = P^T R_g (r, k),
|y_g|^2 and n_g rows. The model of column j trained without fold f is

    w_f = (U_-f + reg I)^-1 a_-f[:, j],   U_-f = sum over g != f of U_g,  a_-f likewise,

(the other folds' sums are added, never the total minus fold f: no cancellation), and fold f's
held-out sum of squared residuals needs only its own sums:

    |y_f - B_f w_f|^2 = |y_f|^2 - 2 w_f . a_f[:, j] + w_f^T U_f w_f.

This is what :meth:`SparseGP.kfold_residuals` computes from the rows (same basis, same folds), so
the score on the regularisation grid, and hence the 'cv' choice, equal the in-memory ones to
rounding. Per-sample held-out predictions (MAE, Cartesian metrics) need the fold's kernel rows
again: Phi_f (P w_f), with the weights :meth:`FoldCV.coefs` returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psilearn.models._kernel.gpr import SparseGP
from psilearn.models._kernel.normal import ChannelSums

#: smallest reciprocal condition number of a fold's normal equations whose solution is trusted (float64)
UNRESOLVED_RCOND = 1e-10


@dataclass
class FoldCV:
    """Per-fold sums of one channel in the basis P: ``u`` [(r, r)], ``a`` [(r, k)], ``yy`` (folds, k), ``n`` (folds,)."""

    P: np.ndarray
    u: list[np.ndarray]
    a: list[np.ndarray]
    yy: np.ndarray
    n: np.ndarray

    @classmethod
    def project(cls, gp: SparseGP, folds: list[ChannelSums]) -> "FoldCV":
        """Project each fold's sums on ``gp.P``. The entries of ``folds`` are released (set to None) as
        they are projected, so the fold sums (M', M') and their projections (r, r) are not all alive at once."""
        p = gp.P
        u, a, yy, n = [], [], [], []
        for i, s in enumerate(folds):
            u.append(p.T @ s.c @ p)
            a.append(p.T @ s.r)
            yy.append(s.yy)
            n.append(s.n)
            folds[i] = None
        return cls(p, u, a, np.array(yy), np.array(n))

    def _others(self, f: int) -> tuple[np.ndarray, np.ndarray]:
        u = sum(x for g, x in enumerate(self.u) if g != f)
        a = sum(x for g, x in enumerate(self.a) if g != f)
        return np.asarray(u, dtype=float), np.asarray(a, dtype=float)

    def mse(self, regs: np.ndarray) -> np.ndarray:
        """Mean held-out squared residual (per row, over all folds) of each column at each
        regularisation, (len(regs), k): one eigendecomposition of U_-f per fold for all of them."""
        from scipy.linalg import eigh

        regs = np.asarray(regs, dtype=float)
        sse = np.zeros((len(regs), self.yy.shape[1]))
        for f in range(len(self.u)):
            if self.n[f] == 0:
                continue
            u_o, a_o = self._others(f)
            lam, q = eigh(u_o, driver="evd")
            b, c = q.T @ a_o, q.T @ self.a[f]  # (r, k)
            v = q.T @ self.u[f] @ q
            for j in range(b.shape[1]):
                x = b[:, j : j + 1] / (lam[:, None] + regs[None, :])  # (r, n_regs): w_f in the eigenbasis of U_-f
                sse[:, j] += self.yy[f, j] - 2 * (c[:, j] @ x) + np.einsum("rk,rk->k", x, v @ x)
        return sse / max(int(self.n.sum()), 1)

    def unresolved_folds(self, regs: np.ndarray) -> list[int]:
        """The folds whose system U_-f + reg I is beyond the precision of these normal equations for some
        of ``regs``: (lambda_min(U_-f) + reg) < UNRESOLVED_RCOND lambda_max(U_-f). U_-f carries rounding of
        ~eps lambda_max, so the weights (and held-out predictions) of such a fold can be wrong by orders
        of magnitude (30 polarizabilities, reg 1e-12: a 2e RMSE of 18 against 0.22 from the rows' SVD)."""
        out = []
        for f in range(len(self.u)):
            lam = np.linalg.eigvalsh(self._others(f)[0]) if self.P.shape[1] else np.zeros(1)
            if max(float(lam.min()), 0.0) + float(np.min(regs)) < UNRESOLVED_RCOND * max(float(lam.max()), 0.0):
                out.append(f)
        return out

    def coefs(self, regs: np.ndarray) -> list[np.ndarray]:
        """Per fold, the weights on the kernel columns (M', k) of each column's model trained without
        that fold, column j at regularisation ``regs[j]``: held-out mean = Phi_f @ coefs[f][:, j]."""
        out = []
        r = self.P.shape[1]
        for f in range(len(self.u)):
            u_o, a_o = self._others(f)
            w = np.stack([np.linalg.solve(u_o + reg * np.eye(r), a_o[:, j]) for j, reg in enumerate(regs)], axis=1) if r else a_o
            out.append(self.P @ w)
        return out


def choose_by_cv(gp: SparseGP, cv: FoldCV) -> tuple[np.ndarray, np.ndarray]:
    """The 'cv' regularisation of each column: the grid value (:meth:`SparseGP.reg_grid`) of least
    k-fold mean squared error, as :meth:`SparseGP.fit_column` with folds; returns (regs (k,), their mse (k,))."""
    grid = gp.reg_grid()
    mse = cv.mse(grid)
    best = np.argmin(mse, axis=0)
    return grid[best], mse[best, np.arange(mse.shape[1])]
