"""Intrinsic coregionalisation (ICM) of L outputs sharing one sparse kernel, in the whitened basis.

The outputs are the levels of theory f = 0..L-1 of one irreducible block. With the whitened, rotated
kernel features x(s) (r,) of a sample row s (:class:`~psilearn.models._kernel.gpr.SparseGP`: the
Nystrom / projected-process features, x(s) . x(s') = Q(s, s') ~ k(s, s')), level f is

    y_f(s) = x(s) . u_f + eps,   u = (u_0, ..., u_{L-1}) ~ N(0, B (x) I_r),   eps ~ N(0, noise_f),

i.e. the kernel k((s, f), (s', f')) = B_ff' k(s, s'). Equivalently u_f = sum_j C_fj w_j with C = chol(B)
and w_j ~ N(0, I_r): a level-f row of the design is [C_f0 x(s), ..., C_f,L-1 x(s)], linear in L r weights.

Let ``big`` be the level with the most rows and X_f (m_f, r) the rows of level f, rotated so that
X_big^T X_big = diag(mu). The posterior precision of u is

    P = B^-1 (x) I_r + blockdiag_f(X_f^T X_f / noise_f) = A + U U^T,

where A (the prior plus the big level) is block diagonal with one L x L block per direction j,
A_j = B^-1 + mu_j / noise_big e_big e_big^T, and U (L r, m) holds the m = sum_{f != big} m_f rows of the
other levels, each scaled by noise_f^-1/2. Woodbury then costs O(L^2 r + m^2 r + m^3) per evaluation
instead of O((L r)^3): cheap when the expensive levels have few labels, the usual multi-fidelity case.
The log marginal likelihood (matrix determinant lemma, b = sum_f X_f^T y_f / noise_f placed at level f):

    -2 log p(y) = sum_f n_f log noise_f + r log|B| + log|P| + sum_f |y_f|^2 / noise_f - b^T P^-1 b  (+ N log 2 pi).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import minimize

#: bounds of the hyper-parameters in the block's normalised units: log noise, log diag(C)
LOG_NOISE_BOUNDS = (np.log(1e-14), np.log(10.0))
LOG_DIAG_BOUNDS = (np.log(1e-6), np.log(1e6))


@dataclass
class ICMData:
    """One irreducible block's rows, per level, in a channel's rotated basis (r directions)."""

    big: int  # the level whose Gram matrix is diagonal in the basis
    mu: np.ndarray  # (r,) that diagonal, X_big^T X_big
    xs: list[np.ndarray]  # per level (m_f, r) rotated whitened kernel rows
    ys: list[np.ndarray]  # per level (m_f,) labels (normalised units)

    @property
    def n_levels(self) -> int:
        return len(self.xs)


@dataclass
class ICMPosterior:
    """Posterior of the weights of each level: mean (L, r); covariance of u_f = diag(diag[f]) - z[f] z[f]^T."""

    mean: np.ndarray  # (L, r)
    diag: np.ndarray  # (L, r)
    z: np.ndarray  # (L, r, m)


def unpack(theta: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(B (L, L), noise (L,)) from theta = (lower triangle of C row by row, its diagonal as logs; log noise)."""
    c = np.zeros((n_levels, n_levels))
    rows, cols = np.tril_indices(n_levels)
    nt = len(rows)
    c[rows, cols] = theta[:nt]
    c[np.diag_indices(n_levels)] = np.exp(np.diag(c))
    return c @ c.T, np.exp(theta[nt:])


def pack(b: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Inverse of :func:`unpack` (B must be positive definite)."""
    c = np.linalg.cholesky(b)
    c[np.diag_indices(len(b))] = np.log(np.diag(c))
    return np.concatenate([c[np.tril_indices(len(b))], np.log(noise)])


class _Factor:
    """A, U and K = I + U^T A^-1 U of the posterior precision for given (B, noise)."""

    def __init__(self, data: ICMData, b: np.ndarray, noise: np.ndarray):
        n_lv, big = data.n_levels, data.big
        self.data, self.noise = data, noise
        binv = np.linalg.inv(b)
        a = np.broadcast_to(binv, (len(data.mu), n_lv, n_lv)).copy()
        a[:, big, big] += data.mu / noise[big]
        self.ainv = np.linalg.inv(a) if len(a) else a
        self.logdet_a = float(np.sum(np.linalg.slogdet(a)[1])) if len(a) else 0.0
        self.small = [f for f in range(n_lv) if f != big and len(data.xs[f])]
        # A^-1 U (r, L, m): the column of a level-f row x is A^-1 (e_f (x) x) / sqrt(noise_f)
        parts = [self.ainv[:, :, f][:, :, None] * (data.xs[f].T / np.sqrt(noise[f]))[:, None, :] for f in self.small]
        self.au = np.concatenate(parts, axis=2) if parts else np.zeros((len(data.mu), n_lv, 0))
        k = np.eye(self.au.shape[2]) + self.ut(self.au)
        self.kc = cho_factor(k, lower=True) if len(k) else None
        self.logdet_k = 2.0 * float(np.sum(np.log(np.diag(self.kc[0])))) if len(k) else 0.0

    def ut(self, q: np.ndarray) -> np.ndarray:
        """U^T q for q (r, L[, k]) -> (m[, k])."""
        parts = [self.data.xs[f] @ q[:, f] / np.sqrt(self.noise[f]) for f in self.small]
        return np.concatenate(parts) if parts else np.zeros((0,) + q.shape[2:])

    def kinv(self, v: np.ndarray) -> np.ndarray:
        return cho_solve(self.kc, v) if self.kc is not None else v

    def apply_pinv(self, q: np.ndarray) -> np.ndarray:
        """P^-1 q for q (r, L[, k]) (Woodbury)."""
        c = np.einsum("jgh,jh...->jg...", self.ainv, q)
        return c - np.tensordot(self.au, self.kinv(self.ut(c)), axes=(2, 0))


def _rhs(data: ICMData, noise: np.ndarray) -> np.ndarray:
    """b (r, L): X_f^T y_f / noise_f."""
    return np.stack([x.T @ y / s for x, y, s in zip(data.xs, data.ys, noise)], axis=1)


def neg_log_ml(data: ICMData, b: np.ndarray, noise: np.ndarray) -> float:
    """-2 log marginal likelihood (without N log 2 pi) of the block's rows at (B, noise); see the module docstring."""
    f = _Factor(data, b, noise)
    rhs = _rhs(data, noise)
    c = np.einsum("jgh,jh->jg", f.ainv, rhs)
    ut = f.ut(c)
    quad = float(np.sum(rhs * c) - ut @ f.kinv(ut))
    rows = np.array([len(y) for y in data.ys])
    yy = np.array([float(y @ y) for y in data.ys])
    logdet_b = np.linalg.slogdet(b)[1]
    return float(np.sum(rows * np.log(noise)) + len(data.mu) * logdet_b + f.logdet_a + f.logdet_k + np.sum(yy / noise) - quad)


def initial_guess(data: ICMData, correlation: np.ndarray | None = None, noise_fraction: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """(B0, noise0) by moments: per level the label variance v_f split into a signal amplitude
    B_ff = (1 - noise_fraction) v_f / mean prior variance of its rows and noise noise_fraction v_f;
    off-diagonal B_ff' = R_ff' sqrt(B_ff B_f'f') with R the given correlation matrix (None: 0.5),
    clipped to positive definite."""
    n_lv = data.n_levels
    v = np.array([max(float(np.mean(y**2)), 1e-12) if len(y) else 1.0 for y in data.ys])
    prior = np.array([max(float(np.mean(np.sum(x**2, axis=1))), 1e-12) if len(x) else 1.0 for x in data.xs])
    amp = (1 - noise_fraction) * v / prior
    r = np.full((n_lv, n_lv), 0.5) if correlation is None else np.nan_to_num(np.asarray(correlation, float), nan=0.5)
    r = np.clip(0.5 * (r + r.T), -0.95, 0.95)
    np.fill_diagonal(r, 1.0)
    lam, vec = np.linalg.eigh(r)
    r = (vec * np.clip(lam, 0.05, None)) @ vec.T
    d = np.sqrt(np.diag(r))
    r = r / d[:, None] / d[None, :]
    return r * np.sqrt(np.outer(amp, amp)), noise_fraction * v


def learn_hyperparameters(data: ICMData, b0: np.ndarray, noise0: np.ndarray, maxiter: int = 300) -> tuple[np.ndarray, np.ndarray, dict]:
    """Maximise the log marginal likelihood over (C, log noise) from (b0, noise0) with L-BFGS-B
    (finite-difference gradients; L(L+1)/2 + L parameters). Returns (B, noise, record)."""
    n_lv = data.n_levels
    n_rows = max(sum(len(y) for y in data.ys), 1)
    rows, cols = np.tril_indices(n_lv)
    bounds = [LOG_DIAG_BOUNDS if i == j else (None, None) for i, j in zip(rows, cols)] + [LOG_NOISE_BOUNDS] * n_lv

    def objective(theta: np.ndarray) -> float:
        try:
            return neg_log_ml(data, *unpack(theta, n_lv)) / n_rows
        except (np.linalg.LinAlgError, ValueError):
            return 1e300

    theta0 = np.clip(pack(b0, noise0), [lo if lo is not None else -np.inf for lo, _ in bounds],
                     [hi if hi is not None else np.inf for _, hi in bounds])
    start = objective(theta0)
    res = minimize(objective, theta0, method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter, "ftol": 1e-13, "gtol": 1e-9})
    theta = res.x if res.fun <= start else theta0
    b, noise = unpack(theta, n_lv)
    return b, noise, {"nll_per_row": float(min(res.fun, start)), "iterations": int(res.nit), "converged": bool(res.success)}


def posterior(data: ICMData, b: np.ndarray, noise: np.ndarray) -> ICMPosterior:
    """Posterior mean and covariance factors of every level's weights at (B, noise)."""
    f = _Factor(data, b, noise)
    mean = f.apply_pinv(_rhs(data, noise)).T  # (L, r)
    diag = np.stack([f.ainv[:, g, g] for g in range(data.n_levels)])
    if f.kc is None:
        z = np.zeros((data.n_levels, len(data.mu), 0))
    else:
        z = np.stack([solve_triangular(f.kc[0], f.au[:, g, :].T, lower=True).T for g in range(data.n_levels)])
    return ICMPosterior(mean, diag, z)


def kfold_level(data: ICMData, b: np.ndarray, noise: np.ndarray, level: int, folds: np.ndarray) -> np.ndarray:
    """Held-out predictions (m_level,) of ``level``'s rows, each fold (``folds``: fold id per row)
    predicted by the model fitted on all other rows at fixed (B, noise): for the fold's rows v,
    y_v - (I - V^T P^-1 V)^-1 (y_v - X_v u_level), V = e_level (x) X_v^T / sqrt(noise_level)."""
    f = _Factor(data, b, noise)
    u = f.apply_pinv(_rhs(data, noise))[:, level]
    x, y = data.xs[level], data.ys[level]
    pred = np.zeros_like(y)
    for k in np.unique(folds):
        va = folds == k
        xv = x[va] / np.sqrt(noise[level])
        q = np.zeros((x.shape[1], data.n_levels, int(va.sum())))
        q[:, level, :] = xv.T
        g = xv @ f.apply_pinv(q)[:, level, :]
        resid = np.linalg.solve(np.eye(len(g)) - g, y[va] - x[va] @ u)
        pred[va] = y[va] - resid
    return pred


def predictive_covariance(t: np.ndarray, kss: np.ndarray, b_ff: float, noise_f: float, diag: np.ndarray, z: np.ndarray) -> np.ndarray:
    """(n, d, d) covariance of level f's observed value from T = Phi P (n, d, r) and the prior self-kernel
    ``kss`` (n, d, d): B_ff k(s, s) - B_ff T T^T + T Cov(u_f) T^T + noise_f I (the projected-process
    correction to the exact prior, as :meth:`SparseGP.covariance`)."""
    cov = b_ff * kss + np.einsum("nar,r,nbr->nab", t, diag - b_ff, t)
    if z.shape[-1]:
        tz = t @ z  # (n, d, m)
        cov -= np.einsum("nam,nbm->nab", tz, tz)
    return cov + noise_f * np.eye(kss.shape[1])[None]
