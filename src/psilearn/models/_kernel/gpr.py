"""Sparse Gaussian-process regression (projected process / DTC) in a whitened basis.

With sparse-point kernel K_MM = V diag(lam) V^T and G = V lam^(-1/2), the kernel between samples and
sparse points Phi gives features B = Phi G, so the model is y = B u + noise with u ~ N(0, s2 I) and
noise variance sigma2 = s2 * reg. Every quantity then follows from the r x r matrix B^T B = W S2 W^T:
the marginal likelihood for any reg, the posterior mean and covariance, and k-fold estimates.
We write this by hand because no maintained library offers sparse GPR with structured (2l+1)-blocked
equivariant kernels and a closed-form profile likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

_EIG_RTOL = 1e-10

#: the ``regularization`` option of the kernel models: one of these modes or a positive number (sigma2/s2)
REGULARIZATION_MODES = ("ml", "cv")
REGULARIZATION_RULE = "must be 'ml' (marginal likelihood), 'cv' (k-fold cross-validation) or a positive number"


def fixed_regularization(mode) -> float | None:
    """The noise/prior ratio stated by a ``regularization`` option, or None for 'ml'/'cv' (chosen from data)."""
    return None if mode in REGULARIZATION_MODES else float(mode)


@dataclass
class ColumnFit:
    """Hyperparameters and weights for one output column (one irrep occurrence)."""

    reg: float  # sigma2 / s2
    s2: float  # prior amplitude (normalised units)
    coef: np.ndarray  # (M',) weights on kernel columns: mean = Phi @ coef
    d: np.ndarray  # (r,) posterior variances of whitened weights, sigma2 / (S2 + reg)

    @property
    def sigma2(self) -> float:
        return self.s2 * self.reg


@dataclass
class SparseGP:
    """Shared basis of one kernel channel: P = G W (M', r) and the spectrum S2 (r,)."""

    P: np.ndarray
    S2: np.ndarray

    @classmethod
    def build(cls, phi: np.ndarray, kmm_blocks: list[np.ndarray]) -> tuple["SparseGP", np.ndarray]:
        """Whiten against K_MM (given as its diagonal blocks, one per element) and diagonalise.

        Only directions with non-zero spectrum are kept: the others carry neither data nor any
        change from the prior, so dropping them leaves means and variances exactly unchanged.
        Returns (basis, B W) with B = Phi G, shape (n, r)."""
        from scipy.linalg import eigh

        g = whitening(kmm_blocks, phi.shape[1])
        b = phi @ g
        n, r = b.shape
        if r == 0:
            # The channel has no features (its kernel vanishes identically): the model predicts 0,
            # and profiling the likelihood sets the noise variance to the data's mean square.
            return cls(np.zeros((phi.shape[1], 0)), np.zeros(0)), b
        if n < r:  # fewer observations than sparse components: diagonalise B B^T instead
            s2, u = eigh(b @ b.T, driver="evd")
            pos = s2 > _EIG_RTOL * max(s2.max(initial=0.0), 1e-300)
            s2, u = s2[pos], u[:, pos]
            w = (b.T @ u) / np.sqrt(s2)
        else:
            s2, w = eigh(b.T @ b, driver="evd")
            pos = s2 > _EIG_RTOL * max(s2.max(initial=0.0), 1e-300)
            s2, w = s2[pos], w[:, pos]
        return cls(g @ w, s2), b @ w

    @classmethod
    def from_sums(cls, c: np.ndarray, kmm_blocks: list[np.ndarray]) -> "SparseGP":
        """The basis :meth:`build` gives, from the accumulated Phi^T Phi (M', M') instead of Phi:
        B^T B = G^T (Phi^T Phi) G, so streamed batches of kernel rows give the same model
        (:mod:`psilearn.models._kernel.normal`). The column sums a = W^T B^T y are then P^T (Phi^T y)."""
        from scipy.linalg import eigh

        g = whitening(kmm_blocks, c.shape[0])
        if g.shape[1] == 0:
            return cls(np.zeros((c.shape[0], 0)), np.zeros(0))
        s2, w = eigh(g.T @ c @ g, driver="evd")
        pos = s2 > _EIG_RTOL * max(s2.max(initial=0.0), 1e-300)
        return cls(g @ w[:, pos], s2[pos])

    @classmethod
    def from_triangular(cls, r: np.ndarray, g: np.ndarray) -> tuple["SparseGP", np.ndarray]:
        """The basis :meth:`build` gives, from a triangular factor R of the whitened kernel rows
        B = Phi G = Q R (``g`` = :func:`whitening` of K_MM), accumulated e.g. by QR batch after batch.
        The singular values of R keep every digit of float64, where the eigenvalues of B^T B = R^T R
        (what :meth:`build` and :meth:`from_sums` diagonalise) lose half of them: needed when the
        regularisation is tiny, as for Hamiltonian matrix elements wanted to 1e-6 of their spread.
        Returns (basis, U S) with R = U S V^T; the column sums are a = (U S)^T z for z = Q^T y."""
        from scipy.linalg import svd

        if r.size == 0:
            return cls(np.zeros((g.shape[0], 0)), np.zeros(0)), np.zeros((r.shape[0], 0))
        u, s, vt = svd(r, full_matrices=False)
        pos = s > np.finfo(float).eps * max(s.max(initial=0.0), 1e-300) * max(r.shape)
        return cls(g @ vt[pos].T, s[pos] ** 2), u[:, pos] * s[pos]

    def profile_nll(self, a: np.ndarray, yy: float, n: int, reg: float) -> tuple[float, float]:
        """-2 log marginal likelihood (s2 profiled out) and the optimal s2, for one column.
        ``a`` = W^T B^T y (r,), ``yy`` = |y|^2, ``n`` = number of observations."""
        pos = self.S2 > _EIG_RTOL * max(self.S2.max(initial=0.0), 1e-300)
        s2p, ap = self.S2[pos], a[pos]
        proj = ap**2 / s2p  # squared components of y in the column space of B
        q = np.sum(proj / (s2p + reg)) + max(yy - proj.sum(), 0.0) / reg
        q = max(q, 1e-300)
        nll = n * np.log(q / n) + n + np.sum(np.log(s2p + reg)) + (n - pos.sum()) * np.log(reg)
        return float(nll), q / n

    def reg_grid(self) -> np.ndarray:
        scale = np.mean(self.S2) if self.S2.size and np.mean(self.S2) > 0 else 1.0
        return scale * np.logspace(-12, 1, 40)

    def fit_column(self, bw: np.ndarray, y: np.ndarray, reg: float | None = None, folds: np.ndarray | None = None) -> ColumnFit:
        """Fit one column ``y`` (n,) given whitened rotated features ``bw`` = B W (n, r).
        ``reg`` fixed, or chosen by marginal likelihood (``folds`` None) or k-fold CV (``folds`` = fold id per row)."""
        if folds is None:
            return self.fit_sums(bw.T @ y, float(y @ y), len(y), reg)
        if reg is None:  # k-fold CV on the grid: one call, so each fold's factorisation serves every grid value
            grid = self.reg_grid()
            resid = self.kfold_residuals(bw, np.repeat(y[:, None], len(grid), axis=1), folds, grid)[0]
            reg = float(grid[int(np.argmin(np.mean(resid**2, axis=0)))])
        return self.fit_sums(bw.T @ y, float(y @ y), len(y), reg)

    def fit_sums(self, a: np.ndarray, yy: float, n: int, reg: float | None = None) -> ColumnFit:
        """One column from its sums alone: ``a`` = W^T B^T y (r,), ``yy`` = |y|^2, ``n`` rows; ``reg``
        fixed or (None) chosen by marginal likelihood, which needs nothing else."""
        if reg is None:
            grid = self.reg_grid()
            scores = [self.profile_nll(a, yy, n, r)[0] for r in grid]
            best = int(np.argmin(scores))
            lo, hi = np.log(grid[max(best - 1, 0)]), np.log(grid[min(best + 1, len(grid) - 1)])  # refine between neighbours
            res = minimize_scalar(lambda t: self.profile_nll(a, yy, n, np.exp(t))[0], bounds=(lo, hi), method="bounded")
            reg = float(np.exp(res.x)) if res.fun <= scores[best] else float(grid[best])
        s2 = self.profile_nll(a, yy, n, reg)[1]
        inv = 1.0 / (self.S2 + reg)
        return ColumnFit(reg=reg, s2=s2, coef=self.P @ (inv * a), d=s2 * reg * inv)

    def kfold_residuals(self, bw: np.ndarray, y: np.ndarray, folds: np.ndarray, regs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Held-out residuals (n, k) and predictions for each column of ``y`` (n, k) with fixed
        regularisations ``regs`` (k,): each fold is predicted by a model trained on the others.

        In the rotated basis the full Gram matrix is diag(S2), so removing a fold's rows U is a
        low-rank downdate; by Woodbury the fold's prediction is (I - G)^-1 U D^-1 (a - U^T y_val),
        G = U D^-1 U^T, D = diag(S2 + reg): an n_val x n_val solve instead of an r x r one. With many
        regularisations (a CV grid) the training rows' r x r Gram matrix is diagonalised once per fold
        instead, and each regularisation costs one product."""
        pred = np.zeros_like(y)
        a_all = bw.T @ y  # (r, k)
        r = bw.shape[1]
        for f in np.unique(folds):
            va = folds == f
            u = bw[va]
            n_val, k = u.shape[0], len(regs)
            # Woodbury costs ~k n_val^2 (r + n_val); the r x r problem, diagonalised once for all k
            # regularisations, ~n_train r^2 + 4 r^3: the cheaper one (CV over a 40-value grid: the latter)
            if k * n_val**2 * (r + n_val) > (len(y) - n_val) * r**2 + 4 * r**3:
                tr = ~va
                lam, vec = np.linalg.eigh(bw[tr].T @ bw[tr])
                rot = vec.T @ (bw[tr].T @ y[tr])  # (r, k)
                uv = u @ vec
                for j, reg in enumerate(regs):
                    pred[va, j] = uv @ (rot[:, j] / (np.maximum(lam, 0.0) + reg))
                continue
            for j, reg in enumerate(regs):
                dinv = 1.0 / (self.S2 + reg)
                ud = u * dinv  # U D^-1
                g = ud @ u.T
                v = ud @ (a_all[:, j] - u.T @ y[va, j])
                pred[va, j] = np.linalg.solve(np.eye(len(g)) - g, v)
        return y - pred, pred

    def predict(self, phi: np.ndarray, col: ColumnFit) -> np.ndarray:
        return phi @ col.coef

    def covariance(self, t: np.ndarray, kss: np.ndarray, col: ColumnFit) -> np.ndarray:
        """Predictive covariance per sample (n, d, d) of the observed value, from T = Phi P reshaped
        (n, d, r) and the prior self-kernel ``kss`` (n, d, d):
        s2 * k(x,x) - T diag(s2 - d) T^T + sigma2 I."""
        shrink = col.s2 - col.d
        cov = col.s2 * kss - np.einsum("nar,r,nbr->nab", t, shrink, t)
        cov += col.sigma2 * np.eye(kss.shape[1])[None]
        return cov


def whitening_blocks(kmm_blocks: list[np.ndarray]) -> list[np.ndarray]:
    """G_b = V lam^(-1/2) (M_b, r_b) of each diagonal block of K_MM, directions with lam <= _EIG_RTOL lam_max dropped."""
    from scipy.linalg import eigh

    gs = []
    for kmm in kmm_blocks:
        lam, v = eigh(kmm, driver="evd")
        keep = lam > _EIG_RTOL * max(lam.max(initial=0.0), 1e-300)
        gs.append(v[:, keep] / np.sqrt(lam[keep]))
    return gs


def whitening(kmm_blocks: list[np.ndarray], m: int) -> np.ndarray:
    """G (M', r_K) of K_MM given as its diagonal blocks: the block-diagonal of :func:`whitening_blocks`."""
    from scipy.linalg import block_diag

    gs = whitening_blocks(kmm_blocks)
    return block_diag(*gs) if gs else np.zeros((m, 0))
