"""Intrinsic coregionalisation (ICM) of L outputs sharing one sparse kernel, in the whitened basis.

The outputs are the levels of theory f = 0..L-1 of one irreducible block. With the whitened, rotated
kernel features x(s) (r,) of a sample row s (:class:`~psilearn.models._kernel.gpr.SparseGP`: the
Nystrom / projected-process features, x(s) . x(s') = Q(s, s') ~ k(s, s')), level f is

    y_f(s) = x(s) . u_f + eps,   u = (u_0, ..., u_{L-1}) ~ N(0, B (x) I_r),   eps ~ N(0, noise_f),

i.e. the kernel k((s, f), (s', f')) = B_ff' k(s, s'). Equivalently u_f = sum_j C_fj w_j with C = chol(B)
and w_j ~ N(0, I_r): a level-f row of the design is [C_f0 x(s), ..., C_f,L-1 x(s)], linear in L r weights.

The log marginal likelihood of all levels' rows (the objective the hyper-parameters maximise;
Sigma = the rows' covariance, N the number of rows) is

    -2 log p(y) = log|Sigma| + y^T Sigma^-1 y  (+ N log 2 pi),   Sigma_(s,f),(s',f') = B_ff' x(s).x(s') + noise_f delta,

evaluated in the weights w (prior N(0, I)), whose posterior precision is

    P = I + sum_f (c_f c_f^T) (x) X_f^T X_f / noise_f = A + U U^T,

c_f the rows of C, X_f (m_f, r) the rows of level f. With ``big`` the level with the most rows and the
basis rotated so that X_big^T X_big = diag(mu), A (the prior plus the big level) is block diagonal with
one L x L block per direction j, A_j = I + mu_j / noise_big c_big c_big^T (inverted in closed form), and
U holds the m = sum_{f != big} m_f rows of the other levels. Woodbury then costs O(L^2 r + m^2 r + m^3)
per evaluation instead of O((L r)^3): cheap when the expensive levels have few labels, the usual
multi-fidelity case. Then log|Sigma| = sum_f m_f log noise_f + log|P| and y^T Sigma^-1 y =
sum_f |y_f - X_f u_f|^2 / noise_f + |w|^2 at the posterior mean: no B^-1 anywhere (P's eigenvalues are
>= 1 however close to singular B is, and levels correlated to ~1 are the usual case) and no
cancellation when the noise is tiny. The gradient with respect to C and the noise is analytic
(:func:`_nll`); L-BFGS-B maximises the likelihood.
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


def _lower(theta: np.ndarray, n_levels: int) -> np.ndarray:
    """C (L, L) lower triangular from the first L(L+1)/2 entries of theta (row by row, the diagonal as logs)."""
    c = np.zeros((n_levels, n_levels))
    rows, cols = np.tril_indices(n_levels)
    c[rows, cols] = theta[: len(rows)]
    c[np.diag_indices(n_levels)] = np.exp(np.diag(c))
    return c


def unpack(theta: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(B (L, L), noise (L,)) from theta = (lower triangle of C row by row, its diagonal as logs; log noise)."""
    c = _lower(theta, n_levels)
    return c @ c.T, np.exp(theta[n_levels * (n_levels + 1) // 2 :])


def pack(b: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Inverse of :func:`unpack` (B must be positive definite)."""
    c = np.linalg.cholesky(b)
    c[np.diag_indices(len(b))] = np.log(np.diag(c))
    return np.concatenate([c[np.tril_indices(len(b))], np.log(noise)])


def _factor_of(b: np.ndarray) -> np.ndarray:
    """A factor C with C C^T = B (its Cholesky factor; from the eigendecomposition when B is singular to rounding)."""
    try:
        return np.linalg.cholesky(b)
    except np.linalg.LinAlgError:
        lam, vec = np.linalg.eigh(0.5 * (b + b.T))
        return vec * np.sqrt(np.clip(lam, 0.0, None))


class _Factor:
    """The posterior precision of the weights w (r, L) for a factor C of B and the noise: P = A + U U^T with
    A_j = I + (mu_j / noise_big) c_big c_big^T (inverted in closed form) and U's columns c_f (x) x / sqrt(noise_f)
    for the rows of the other levels; K = I + U^T A^-1 U (m, m)."""

    def __init__(self, data: ICMData, c: np.ndarray, noise: np.ndarray):
        n_lv, big = data.n_levels, data.big
        self.data, self.c, self.noise = data, c, noise
        cb = c[big]
        alpha = data.mu / noise[big]
        den = 1.0 + alpha * float(cb @ cb)
        self.ainv = np.eye(n_lv)[None] - (alpha / den)[:, None, None] * np.outer(cb, cb)[None]
        self.logdet_a = float(np.sum(np.log(den)))
        self.small = [f for f in range(n_lv) if f != big and len(data.xs[f])]
        # A^-1 U (r, L, m): the column of a level-f row x is A_j^-1 c_f x_j / sqrt(noise_f)
        parts = [(self.ainv @ c[f])[:, :, None] * (data.xs[f].T / np.sqrt(noise[f]))[:, None, :] for f in self.small]
        self.au = np.concatenate(parts, axis=2) if parts else np.zeros((len(data.mu), n_lv, 0))
        k = np.eye(self.au.shape[2]) + self.ut(self.au)
        self.kc = cho_factor(k, lower=True) if len(k) else None
        self.logdet_k = 2.0 * float(np.sum(np.log(np.diag(self.kc[0])))) if len(k) else 0.0

    def ut(self, q: np.ndarray) -> np.ndarray:
        """U^T q for q (r, L[, k]) -> (m[, k])."""
        parts = [self.data.xs[f] @ np.tensordot(self.c[f], q, axes=(0, 1)) / np.sqrt(self.noise[f]) for f in self.small]
        return np.concatenate(parts) if parts else np.zeros((0,) + q.shape[2:])

    def kinv(self, v: np.ndarray) -> np.ndarray:
        return cho_solve(self.kc, v) if self.kc is not None else v

    def apply_pinv(self, q: np.ndarray) -> np.ndarray:
        """P^-1 q for q (r, L[, k]) (Woodbury)."""
        a = np.einsum("jgh,jh...->jg...", self.ainv, q)
        return a - np.tensordot(self.au, self.kinv(self.ut(a)), axes=(2, 0))

    def z(self) -> np.ndarray | None:
        """(L, r, m): Z_k = (A^-1 U)_k Kc^-T, so the weights' posterior covariance is diag(A^-1) - Z Z^T."""
        if self.kc is None:
            return None
        return np.stack([solve_triangular(self.kc[0], self.au[:, k, :].T, lower=True).T for k in range(self.data.n_levels)])


def _rhs(data: ICMData, c: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """b (r, L) = sum_f c_f (x) X_f^T y_f / noise_f."""
    return sum(np.outer(x.T @ y / s, cf) for x, y, s, cf in zip(data.xs, data.ys, noise, c))


def _nll(data: ICMData, c: np.ndarray, noise: np.ndarray, grad: bool = False):
    """-2 log p(y) at (C, noise), and with ``grad`` its derivatives (d/dC (L, L), d/dnoise (L,)):
    with w the posterior mean, res_f = y_f - X_f w c_f and T^f_kl = tr([P^-1]_kl X_f^T X_f),
    d/dC_fk = 2 (sum_l C_fl T^f_kl - res_f . X_f w_k) / noise_f and
    d/dnoise_f = n_f / noise_f - (c_f^T T^f c_f + |res_f|^2) / noise_f^2."""
    f = _Factor(data, c, noise)
    rhs = _rhs(data, c, noise)
    w = f.apply_pinv(rhs)  # (r, L) posterior mean of the weights
    rows = np.array([len(y) for y in data.ys])
    res = [y - x @ (w @ cf) for x, y, cf in zip(data.xs, data.ys, c)]
    # y^T Sigma^-1 y = sum_f |res_f|^2 / noise_f + |w|^2 (the minimum the posterior mean attains; no cancellation
    # between |y|^2 / noise and b^T P^-1 b when the noise is tiny)
    quad = sum(float(r @ r) / s for r, s in zip(res, noise)) + float(np.sum(w * w))
    nll = float(np.sum(rows * np.log(noise)) + f.logdet_a + f.logdet_k + quad)
    if not grad:
        return nll
    n_lv, z = data.n_levels, f.z()
    g_c, g_n = np.zeros((n_lv, n_lv)), np.zeros(n_lv)
    for lv in range(n_lv):
        x = data.xs[lv]
        if lv == data.big:
            t = np.einsum("j,jkl->kl", data.mu, f.ainv)
            if z is not None:
                t -= np.einsum("j,kjm,ljm->kl", data.mu, z, z)
        else:
            t = np.einsum("j,jkl->kl", np.sum(x**2, axis=0), f.ainv)
            if z is not None:
                xz = np.einsum("ij,kjm->kim", x, z)
                t -= np.einsum("kim,lim->kl", xz, xz)
        xw = x @ w  # (m_f, L)
        g_c[lv] = 2.0 * (t @ c[lv] - res[lv] @ xw) / noise[lv]
        g_n[lv] = rows[lv] / noise[lv] - (float(c[lv] @ t @ c[lv]) + float(res[lv] @ res[lv])) / noise[lv] ** 2
    return nll, g_c, g_n


def neg_log_ml(data: ICMData, b: np.ndarray, noise: np.ndarray) -> float:
    """-2 log marginal likelihood (without N log 2 pi) of the block's rows at (B, noise); see the module docstring."""
    return _nll(data, _factor_of(b), noise)


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
    (analytic gradients, :func:`neg_log_ml`; L(L+1)/2 + L parameters). Returns (B, noise, record)."""
    n_lv = data.n_levels
    n_rows = max(sum(len(y) for y in data.ys), 1)
    rows, cols = np.tril_indices(n_lv)
    bounds = [LOG_DIAG_BOUNDS if i == j else (None, None) for i, j in zip(rows, cols)] + [LOG_NOISE_BOUNDS] * n_lv

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        c = _lower(theta, n_lv)
        nll, g_c, g_n = _nll(data, c, np.exp(theta[len(rows):]), grad=True)
        g_c[np.diag_indices(n_lv)] *= np.diag(c)  # the diagonal of C as logs
        return nll / n_rows, np.concatenate([g_c[rows, cols], g_n * np.exp(theta[len(rows):])]) / n_rows

    theta0 = np.clip(pack(b0, noise0), [lo if lo is not None else -np.inf for lo, _ in bounds],
                     [hi if hi is not None else np.inf for _, hi in bounds])
    start = objective(theta0)[0]
    res = minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter, "ftol": 1e-12, "gtol": 1e-8})
    theta = res.x if res.fun <= start else theta0
    b, noise = unpack(theta, n_lv)
    return b, noise, {"nll_per_row": float(min(res.fun, start)), "iterations": int(res.nit), "converged": bool(res.success)}


def posterior(data: ICMData, b: np.ndarray, noise: np.ndarray) -> ICMPosterior:
    """Posterior mean and covariance factors of every level's weights u_f = sum_k C_fk w_k at (B, noise)."""
    c = _factor_of(b)
    f = _Factor(data, c, noise)
    w = f.apply_pinv(_rhs(data, c, noise))
    diag = np.einsum("fk,jkl,fl->fj", c, f.ainv, c)
    z = f.z()
    z = np.zeros((data.n_levels, len(data.mu), 0)) if z is None else np.einsum("fk,kjm->fjm", c, z)
    return ICMPosterior((w @ c.T).T, diag, z)


def kfold_level(data: ICMData, b: np.ndarray, noise: np.ndarray, level: int, folds: np.ndarray) -> np.ndarray:
    """Held-out predictions (m_level,) of ``level``'s rows, each fold (``folds``: fold id per row)
    predicted by the model fitted on all other rows at fixed (B, noise). A level other than the largest
    is refitted without the fold's rows (the rotation stays valid); for the largest level, by the
    downdate y_v - (I - V^T P^-1 V)^-1 (y_v - X_v u_level), V's columns c_level (x) x_v / sqrt(noise_level)
    (which loses digits when the noise is tiny against the signal)."""
    c = _factor_of(b)
    x, y = data.xs[level], data.ys[level]
    pred = np.zeros_like(y)
    if level != data.big:
        for k in np.unique(folds):
            va = folds == k
            rest = ICMData(data.big, data.mu, [x[~va] if f == level else xf for f, xf in enumerate(data.xs)],
                           [y[~va] if f == level else yf for f, yf in enumerate(data.ys)])
            pred[va] = x[va] @ (_Factor(rest, c, noise).apply_pinv(_rhs(rest, c, noise)) @ c[level])
        return pred
    f = _Factor(data, c, noise)
    u = f.apply_pinv(_rhs(data, c, noise)) @ c[level]
    for k in np.unique(folds):
        va = folds == k
        xv = x[va] / np.sqrt(noise[level])
        q = c[level][None, :, None] * xv.T[:, None, :]  # (r, L, n_val)
        g = xv @ np.tensordot(c[level], f.apply_pinv(q), axes=(0, 1))
        pred[va] = y[va] - np.linalg.solve(np.eye(len(g)) - g, y[va] - x[va] @ u)
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
