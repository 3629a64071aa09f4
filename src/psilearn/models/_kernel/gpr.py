"""Sparse Gaussian-process regression (projected process / DTC) in a whitened basis.

With sparse-point kernel K_MM = V diag(lam) V^T and G = V lam^(-1/2), the kernel between samples and
sparse points Phi gives features B = Phi G, so the model is y = B u + noise with u ~ N(0, s2 I) and
noise variance sigma2 = s2 * reg. Every quantity then follows from the r x r matrix B^T B = W S2 W^T:
the marginal likelihood for any reg, the posterior mean and covariance, and k-fold estimates.
We write this by hand because no maintained library offers sparse GPR with structured (2l+1)-blocked
equivariant kernels and a closed-form profile likelihood.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

log = logging.getLogger("psilearn")

_EIG_RTOL = 1e-10
#: smallest eigenvalue of I - G (in (0, 1]) for which a k-fold downdate is trusted: rounding grows by 1/lambda_min
_WOODBURY_MIN = 1e-5
#: largest relative change of a training row's predictive variance allowed by storing the basis P in float32
FLOAT32_VAR_RTOL = 1e-5

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
    """Shared basis of one kernel channel: P = G W (M', r) and the spectrum S2 (r,). ``float64``: P must be
    stored in float64, float32 rounding would change the predictive variance (:meth:`float32_variance_error`)."""

    P: np.ndarray
    S2: np.ndarray
    float64: bool = False

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
        regularisations ``regs`` (k,): each fold is predicted by a model trained on the others, the
        ridge solution w = argmin |y_tr - B_tr w|^2 + reg |w|^2 in the rotated basis (``bw`` = B W, (n, r)).

        The fold's own system is solved from the SVD of the other folds' rows B_tr = U s V^T,
        w = V diag(s / (s^2 + reg)) U^T y_tr, which keeps the accuracy of float64 down to reg ~ eps^2 |B|^2
        (the normal equations B_tr^T B_tr lose half the digits: 1e-2 relative at reg = 1e-12 of S2 ~ 60).
        When cheaper, the fold is instead removed from the full Gram matrix diag(S2) by Woodbury,
        prediction (I - G)^-1 U D^-1 (a - U^T y_val), G = U D^-1 U^T, D = diag(S2 + reg): an n_val x n_val
        solve. That downdate is exact in exact arithmetic but amplifies rounding by 1/lambda_min(I - G),
        and lambda_min ~ reg / S2 when the fold's rows carry the only data for some direction (with
        reg = 1e-12, a 30-structure polarizability fit gave held-out residuals 140x the true ones): it is
        used only while lambda_min(I - G) >= _WOODBURY_MIN, the SVD otherwise."""
        pred = np.zeros_like(y)
        a_all = bw.T @ y  # (r, k)
        r = bw.shape[1]
        for f in np.unique(folds):
            va = folds == f
            n_val, k = int(va.sum()), len(regs)
            # Woodbury costs ~k n_val^2 (r + n_val); the SVD of the training rows ~4 n_train r^2 + 8 r^3
            if k * n_val**2 * (r + n_val) <= 4 * (len(y) - n_val) * r**2 + 8 * r**3:
                out = self._downdate(bw[va], y[va], a_all, regs)
                if out is not None:
                    pred[va] = out
                    continue
            pred[va] = _ridge_predict(bw[~va], y[~va], bw[va], regs)
        return y - pred, pred

    def _downdate(self, u: np.ndarray, y_val: np.ndarray, a_all: np.ndarray, regs: np.ndarray) -> np.ndarray | None:
        """The held-out predictions (n_val, k) of the rows ``u`` = B_val W (n_val, r) by Woodbury (see
        :meth:`kfold_residuals`), or None when (I - G) is too ill-conditioned for any of ``regs``."""
        out = np.zeros((u.shape[0], len(regs)))
        for j, reg in enumerate(regs):
            ud = u / (self.S2 + reg)  # U D^-1
            lam, q = np.linalg.eigh(np.eye(len(u)) - ud @ u.T)
            if lam.min(initial=1.0) < _WOODBURY_MIN:
                return None
            v = ud @ (a_all[:, j] - u.T @ y_val[:, j])
            out[:, j] = q @ ((q.T @ v) / lam)
        return out

    def predict(self, phi: np.ndarray, col: ColumnFit) -> np.ndarray:
        return phi @ col.coef

    def covariance(self, t: np.ndarray, kss: np.ndarray, col: ColumnFit) -> np.ndarray:
        """Predictive covariance per sample (n, d, d) of the observed value (normalised units squared: label
        units over the block's scale), from T = Phi P reshaped (n, d, r) and the prior self-kernel ``kss``
        (n, d, d): the noise-free posterior
        s2 * k(x,x) - T diag(s2 - d) T^T, which is positive semi-definite in exact arithmetic, plus sigma2 I.
        That difference cancels to ~reg of its terms near the training data, so rounding of P (float32:
        ~1e-7 of s2 k(x,x)) can make it negative when reg is tiny; its negative eigenvalues are then raised
        to 0 (equivariant: eigenvalues do not change under rotations) with a warning, so the variance of
        an observed value never falls below the noise floor sigma2 (it used to be clipped to 0)."""
        shrink = col.s2 - col.d
        post = col.s2 * kss - np.einsum("nar,r,nbr->nab", t, shrink, t)
        lam = np.linalg.eigvalsh(post)  # eigenvectors only for the samples that need raising (predict's hot path)
        bad = lam.min(axis=1, initial=np.inf) < 0
        if bad.any():
            scale = col.s2 * np.abs(np.einsum("naa->na", kss)).max()
            if -lam.min() > 1e-12 * scale:  # beyond float64 rounding of the difference
                log.warning("predictive covariance: %d of %d samples had a negative noise-free variance (down to %.3g, prior %.3g, "
                            "noise %.3g): rounding of the covariance basis (a float32 basis with a tiny regularisation: refit); "
                            "raised to 0, the noise floor remains", int(bad.sum()), len(lam), lam.min(), scale, col.sigma2)
            lam_bad, vec = np.linalg.eigh(post[bad])
            post[bad] = np.einsum("nak,nk,nbk->nab", vec, np.maximum(lam_bad, 0.0), vec)
        return post + col.sigma2 * np.eye(kss.shape[1])[None]

    def choose_precision(self, cols: list[ColumnFit], phi: np.ndarray | None = None, bw: np.ndarray | None = None) -> float:
        """Set :attr:`float64` for the columns ``cols``: True when rounding P to float32 changes a training
        row's variance by more than FLOAT32_VAR_RTOL relative, measured at the rows ``phi``, ``bw`` (see
        :meth:`float32_variance_error`); without rows (a streamed fit) from the bound |T|^2 <= max S2
        instead, 2 u32 max(S2) / reg (u32 = 2^-24, float32 rounding), which is conservative. Returns the error."""
        if phi is None:
            err = max((2.0**-23 * float(self.S2.max(initial=0.0)) / max(c.reg, 1e-300) for c in cols), default=0.0)
        else:
            err = self.float32_variance_error(phi, bw, cols)
        self.float64 = err > FLOAT32_VAR_RTOL
        if self.float64:
            log.info("covariance basis kept in float64: float32 would change the variance by %.2g relative (> %g)", err, FLOAT32_VAR_RTOL)
        return err

    def float32_variance_error(self, phi: np.ndarray, bw: np.ndarray, cols: list[ColumnFit], chunk: int = 4096) -> float:
        """Largest relative change of the predictive variance of the training rows (kernel rows ``phi``
        (n, M'), ``bw`` = B W = Phi P (n, r) in float64) when P is rounded to float32, over the columns
        ``cols``: |sum_r (s2 - d_r) (T32^2 - T^2)| / sigma2 (sigma2 <= the variance of an observed value).
        The difference cancels to ~reg near the data, so this grows as ~1e-7 k(x,x) / reg (measured on 150
        molecules' dipoles: 2e-6 at reg 1e-2, 3e-2 at reg 1e-6, negative variances at reg 5e-9)."""
        if not cols or self.P.size == 0:
            return 0.0
        p32 = self.P.astype(np.float32).astype(np.float64)
        shrink = np.stack([c.s2 - c.d for c in cols], axis=1)  # (r, k)
        sigma2 = np.array([c.sigma2 for c in cols])
        worst = 0.0
        for i in range(0, len(phi), chunk):
            t, t32 = bw[i : i + chunk], phi[i : i + chunk] @ p32
            worst = max(worst, float(np.max(np.abs(((t32 - t) * (t32 + t)) @ shrink) / np.maximum(sigma2, 1e-300), initial=0.0)))
        return worst


def _ridge_predict(b_tr: np.ndarray, y_tr: np.ndarray, b_va: np.ndarray, regs: np.ndarray) -> np.ndarray:
    """Predictions (n_val, k) of the rows ``b_va`` (n_val, r) by the ridge models of ``b_tr`` (n_tr, r) and
    each column of ``y_tr`` (n_tr, k) at regularisation ``regs[j]``, from the SVD of ``b_tr`` (no normal equations)."""
    out = np.zeros((b_va.shape[0], len(regs)))
    if b_tr.size == 0:
        return out
    u, s, vt = np.linalg.svd(b_tr, full_matrices=False)
    z, bv = u.T @ y_tr, b_va @ vt.T  # (q, k), (n_val, q)
    for j, reg in enumerate(regs):
        out[:, j] = bv @ (s / (s**2 + reg) * z[:, j])
    return out


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
