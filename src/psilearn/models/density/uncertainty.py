"""Predictive covariance of the density model's coefficients (Bayesian linear regression on the RKHS features).

The model (``density.uncertainty: true``; direct solve only). With Psi_s the structure's design
matrix (coefficients in e3nn's basis, baseline removed, :mod:`psilearn.models.density.normal`):

    prior       w ~ N(0, (sigma^2 / lambda) I)
    likelihood  y_s ~ N(Psi_s w, sigma^2 S_s^-1)     (S_s the labels' aux metric: the loss's own norm)

so the maximum a posteriori weights are exactly the fitted ones, w = (A + lambda I)^-1 b, and the
posterior covariance is Sigma_w = sigma^2 (A + lambda I)^-1, A = sum_s Psi_s^T S_s Psi_s (lambda the
absolute regularisation the fit used). The noise scale is estimated from the training residuals in
the metric, sigma^2 = sum_s ||Psi_s w - y_s||^2_{S_s} / (n_coef - dof), n_coef the number of training
coefficients and dof = tr(A (A + lambda I)^-1) = n_weights - lambda tr((A + lambda I)^-1) the
effective number of parameters. For a new structure the predictive covariance of its coefficients
(the labels it would have) is

    Sigma_c = Psi* Sigma_w Psi*^T + sigma^2 S*^-1     (n_coef, n_coef), e^2,

the first term the uncertainty of the weights (epistemic), the second the residual scale spread by
the metric. Both are computed in e3nn's basis and mapped to PySCF's order (an orthogonal map per l,
so the per-(atom, radial function) norm of the variance is rotation invariant). The exact electron
count is a linear map c' = (I - g q^T) c + g N with g = S^-1 q / (q^T S^-1 q)
(:mod:`psilearn.models.density.constraint`), so Sigma_c' = (I - g q^T) Sigma_c (I - g q^T)^T and
q^T Sigma_c' q = 0: the total charge is certain. Storage: the Cholesky factor L of A + lambda I
(n_weights^2 x 8 bytes, in the model file); prediction costs n_weights^2 x n_coef per structure.
"""

from __future__ import annotations

import numpy as np
from ase.data import chemical_symbols
from scipy.linalg import cho_factor, cho_solve, solve_triangular

#: peak n_weights^2 matrices of the posterior step: A (kept for the fit record), the factor, the identity and its solve
POSTERIOR_MATRICES = 4


def posterior_bytes(n_weights: int) -> int:
    """Peak bytes of :func:`weight_posterior` (A held by the caller included)."""
    return 8 * n_weights * n_weights * POSTERIOR_MATRICES


def weight_posterior(a: np.ndarray, lam: float, loss: float, n_coef: int) -> dict:
    """{'cholesky': L (lower, n_weights^2) of A + lam I, 'sigma2', 'dof', 'lambda'} for the model
    above; ``loss`` the training residual in the metric at the fitted weights, ``n_coef`` the
    number of training coefficients."""
    shifted = a.copy()
    shifted[np.diag_indices_from(shifted)] += lam
    try:
        factor, _ = cho_factor(shifted, lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError:
        raise np.linalg.LinAlgError(f"density.uncertainty: A + lambda I is not numerically positive definite at lambda {lam:.3g}; "
                                    "raise density.regularization or the smallest density.reg_grid value") from None
    chol = np.tril(factor)
    trace_inv = float(np.trace(cho_solve((chol, True), np.eye(len(a)), check_finite=False)))
    dof = float(len(a) - lam * trace_inv)
    sigma2 = float(max(loss, 0.0) / max(n_coef - dof, 1.0))
    return {"cholesky": chol, "sigma2": sigma2, "dof": dof, "lambda": float(lam)}


def design_matrix(model, layout, phis: dict, rows: dict, size: int) -> np.ndarray:
    """Psi* (size, n_weights) of one structure in e3nn's basis: rows of coefficient block (atom, l, n)
    hold Phi (2l+1, D) in the columns of weight block (Z, l, n). ``phis`` {(Z, l): (n_atoms_Z, 2l+1, D)}."""
    psi = np.zeros((size, layout.size))
    for (z, l), phi in phis.items():
        r = rows[(z, l)]  # (n_atoms_Z, n_l, 2l+1)
        for n in range(r.shape[1]):
            sl = layout.slices[(z, l, n)]
            psi[r[:, n, :].reshape(-1), sl] = phi.reshape(-1, phi.shape[2])
    return psi


def coefficient_covariance(post: dict, psi: np.ndarray, s_irreps: np.ndarray) -> np.ndarray:
    """Sigma_c = sigma^2 (Psi (A + lam I)^-1 Psi^T + S^-1) in e3nn's basis, (n_coef, n_coef), e^2."""
    half = solve_triangular(post["cholesky"], psi.T, lower=True, check_finite=False)  # L^-1 Psi^T
    cov = half.T @ half + _inverse(s_irreps)
    cov = post["sigma2"] * cov
    return 0.5 * (cov + cov.T)


def constrained_covariance(cov: np.ndarray, s: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(I - g q^T) Sigma (I - g q^T)^T with g = S^-1 q / (q^T S^-1 q): the covariance after the exact
    electron-count projection (all in one basis, e.g. PySCF's order); q^T result q = 0."""
    sq = _inverse(s) @ q
    g = sq / (q @ sq)
    p = np.eye(len(q)) - np.outer(g, q)
    out = p @ cov @ p.T
    return 0.5 * (out + out.T)


def to_pyscf(target, atoms, cov_irreps: np.ndarray) -> np.ndarray:
    """A covariance in e3nn's basis mapped to the labeler's (PySCF) order: R^T Sigma R per block."""
    return target.from_irreps(atoms, target.from_irreps(atoms, cov_irreps).T)


def _inverse(s: np.ndarray) -> np.ndarray:
    try:
        return cho_solve(cho_factor(s, check_finite=False), np.eye(len(s)), check_finite=False)
    except np.linalg.LinAlgError:  # numerically semi-definite metric
        return np.linalg.pinv(s, rcond=1e-14, hermitian=True)


def structure_covariances(model, feats, frames, conserve: bool) -> list[np.ndarray]:
    """Predictive covariances (PySCF order, e^2) of ``frames``' coefficients, constrained when
    ``conserve``; ``feats`` the lambda-SOAP of ``frames`` (the prediction's own)."""
    from psilearn.models.density.constraint import metric_in_irreps, structure_metric
    from psilearn.models.density.normal import WeightLayout, structure_features, structure_rows

    post = model.posterior
    widths = {key: model.basis.width(*key) for key in model.basis.projectors}
    layout = WeightLayout.of(model.target, model.species, widths)
    phis = {key: model.basis.features(feats, *key) for key in model.basis.projectors}
    out = []
    for k, atoms in enumerate(frames):
        rows = structure_rows(model.target, atoms.get_chemical_symbols(), atoms.numbers)
        psi = design_matrix(model, layout, structure_features(phis, feats, k), rows, model.target.size(atoms))
        s, q = structure_metric(model.target, atoms)
        cov = to_pyscf(model.target, atoms, coefficient_covariance(post, psi, metric_in_irreps(model.target, atoms, s)))
        out.append(constrained_covariance(cov, s, q) if conserve else cov)
    return out


def block_norms(target, atoms, variance: np.ndarray) -> np.ndarray:
    """Sum of the variances over m of every (atom, radial function) block: rotation invariant."""
    out = []
    off = target.offsets(atoms)
    for k, sym in enumerate(atoms.get_chemical_symbols()):
        for l in sorted({b.l for b in target.blocks_of(sym)}):
            idx = target.block_index(chemical_symbols[atoms.numbers[k]], l)
            out.extend(variance[off[k] + idx].sum(axis=1))
    return np.asarray(out)
