"""The sparse GP core: exact GP regression when every point is a sparse point, correct marginal
likelihood, exact k-fold predictions, and calibrated uncertainties with ML regularisation."""

import numpy as np
import pytest

from psilearn.models._kernel.gpr import SparseGP


def _linear_problem(seed, n, m, p, noise):
    rng = np.random.default_rng(seed)
    x, xt = rng.normal(size=(n, p)), rng.normal(size=(m, p))
    w = rng.normal(size=p)
    y = x @ w / np.sqrt(p) + noise * rng.normal(size=n)
    yt = xt @ w / np.sqrt(p) + noise * rng.normal(size=m)
    return x, y, xt, yt


def _kernel(a, b):
    return a @ b.T / a.shape[1]


def _exact(k, ks, kss, y, reg):
    """Direct GP solve: prior s2*K, noise s2*reg, with s2 at its maximum-likelihood value."""
    a = k + reg * np.eye(len(k))
    alpha = np.linalg.solve(a, y)
    s2 = y @ alpha / len(y)
    mean = ks @ alpha
    var = s2 * (np.diag(kss) - np.einsum("ij,ji->i", ks, np.linalg.solve(a, ks.T))) + s2 * reg
    nll = len(y) * np.log(s2) + len(y) + np.linalg.slogdet(a)[1]  # -2 log L without n log(2 pi)
    return mean, var, s2, nll


@pytest.fixture(scope="module")
def problem():
    x, y, xt, yt = _linear_problem(0, 30, 12, 50, 0.1)  # p > n: the kernel matrix has full rank
    k, ks, kss = _kernel(x, x), _kernel(xt, x), _kernel(xt, xt)
    gp, bw = SparseGP.build(k, [k])  # every training point is a sparse point
    return dict(x=x, y=y, k=k, ks=ks, kss=kss, gp=gp, bw=bw)


def _sparse_predict(pb, fit):
    mean = pb["gp"].predict(pb["ks"], fit)
    t = (pb["ks"] @ pb["gp"].P)[:, None, :]
    cov = pb["gp"].covariance(t, np.diag(pb["kss"])[:, None, None], fit)
    return mean, cov[:, 0, 0]


@pytest.mark.parametrize("reg", [1e-3, 0.05, 2.0])
def test_matches_exact_gp(problem, reg):
    fit = problem["gp"].fit_column(problem["bw"], problem["y"], reg=reg)
    mean, var = _sparse_predict(problem, fit)
    e_mean, e_var, e_s2, _ = _exact(problem["k"], problem["ks"], problem["kss"], problem["y"], reg)
    assert fit.reg == reg
    np.testing.assert_allclose(fit.s2, e_s2, rtol=1e-8)
    np.testing.assert_allclose(mean, e_mean, rtol=1e-8, atol=1e-10 * np.abs(e_mean).max())
    np.testing.assert_allclose(var, e_var, rtol=1e-7)
    # training-point predictions also agree
    direct = problem["k"] @ np.linalg.solve(problem["k"] + reg * np.eye(30), problem["y"])
    np.testing.assert_allclose(problem["gp"].predict(problem["k"], fit), direct, rtol=1e-8, atol=1e-10)


def test_profile_likelihood_is_exact(problem):
    a = problem["bw"].T @ problem["y"]
    yy = float(problem["y"] @ problem["y"])
    for reg in (1e-3, 0.1, 3.0):
        nll, s2 = problem["gp"].profile_nll(a, yy, len(problem["y"]), reg)
        _, _, e_s2, e_nll = _exact(problem["k"], problem["ks"], problem["kss"], problem["y"], reg)
        np.testing.assert_allclose(s2, e_s2, rtol=1e-8)
        np.testing.assert_allclose(nll, e_nll, rtol=1e-8, atol=1e-8)


def test_ml_regularisation_is_the_optimum(problem):
    fit = problem["gp"].fit_column(problem["bw"], problem["y"], reg=None)
    grid = np.logspace(-8, 2, 400)
    nlls = [_exact(problem["k"], problem["ks"], problem["kss"], problem["y"], r)[3] for r in grid]
    best = _exact(problem["k"], problem["ks"], problem["kss"], problem["y"], fit.reg)[3]
    assert best <= min(nlls) + 1e-6
    mean, _ = _sparse_predict(problem, fit)
    np.testing.assert_allclose(mean, _exact(problem["k"], problem["ks"], problem["kss"], problem["y"], fit.reg)[0], rtol=1e-8, atol=1e-10)


def test_kfold_predictions_are_exact_held_out_gp(problem):
    folds = np.arange(30) % 4
    reg = 0.05
    resid, pred = problem["gp"].kfold_residuals(problem["bw"], problem["y"][:, None], folds, np.array([reg]))
    k, y = problem["k"], problem["y"]
    for f in range(4):
        tr, va = folds != f, folds == f
        expect = k[np.ix_(va, tr)] @ np.linalg.solve(k[np.ix_(tr, tr)] + reg * np.eye(tr.sum()), y[tr])
        np.testing.assert_allclose(pred[va, 0], expect, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(resid[:, 0], y - pred[:, 0])


def test_kfold_over_a_grid_equals_one_regularisation_at_a_time(problem, monkeypatch):
    """Many regularisations at once take the route of the training rows' SVD, one at a time Woodbury's: same predictions."""
    folds = np.arange(30) % 2
    grid = np.logspace(-3, 0.5, 40)  # as many as the CV grid (SparseGP.reg_grid)
    calls = []
    svd = np.linalg.svd
    monkeypatch.setattr(np.linalg, "svd", lambda a, **kw: calls.append(a.shape) or svd(a, **kw))
    _, together = problem["gp"].kfold_residuals(problem["bw"], np.repeat(problem["y"][:, None], len(grid), axis=1), folds, grid)
    assert len(calls) == 2  # one SVD per fold, for every regularisation
    calls.clear()
    for j, reg in enumerate(grid):
        _, alone = problem["gp"].kfold_residuals(problem["bw"], problem["y"][:, None], folds, np.array([reg]))
        np.testing.assert_allclose(together[:, j], alone[:, 0], rtol=1e-7, atol=1e-9)
    assert not calls  # one at a time: well-conditioned folds are downdated (Woodbury), no SVD


def test_rank_deficient_kernel_and_calibration():
    """Noisy data from a linear model with fewer features than points (K_MM singular): with
    marginal-likelihood regularisation, ~95% of test errors fall within 2 predicted sigma."""
    noise = 0.3
    x, y, xt, yt = _linear_problem(1, 150, 3000, 12, noise)
    k = _kernel(x, x)
    gp, bw = SparseGP.build(k, [k])
    assert bw.shape[1] == 12  # only the non-null directions are kept
    fit = gp.fit_column(bw, y, reg=None)
    ks = _kernel(xt, x)
    mean = gp.predict(ks, fit)
    t = (ks @ gp.P)[:, None, :]
    kss = np.einsum("ij,ij->i", xt, xt)[:, None, None] / x.shape[1]
    std = np.sqrt(gp.covariance(t, kss, fit)[:, 0, 0])
    z = np.abs(mean - yt) / std
    within2 = np.mean(z <= 2)
    within1 = np.mean(z <= 1)
    assert 0.85 <= within2 <= 1.0, within2
    assert 0.55 <= within1 <= 0.8, within1
    assert 0.5 * noise**2 < fit.sigma2 < 2 * noise**2  # the noise level is recovered
    assert np.sqrt(np.mean((mean - yt) ** 2)) < 1.3 * noise
