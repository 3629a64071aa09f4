"""Numerical stability of the sparse GP at tiny regularisation (noise-free first-principles labels make
the marginal likelihood choose reg ~ 1e-9..1e-12):

* the predictive variance near the training data is a difference cancelling to ~reg of its terms, so
  the float32 basis P of the model file made it negative (an exact-zero std after clipping): the file
  keeps P in float64 when float32 would move a training row's variance, and a negative noise-free
  posterior variance is raised to 0, never below the noise floor;
* the k-fold held-out predictions downdated the full Gram matrix by Woodbury, which amplifies rounding
  by 1/lambda_min(I - G) ~ S2 / reg when a fold carries the only data for some direction: they must
  equal refits on each fold's complement.
"""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
from ase.io import read

from psilearn.data import load_dataset
from psilearn.models import SAGPR
from psilearn.models._kernel.gpr import SparseGP, whitening
from psilearn.models._kernel.kernels import self_kernel, sparse_kernel, sparse_sparse_kernel
from psilearn.models.io import load
from psilearn.targets import Target

from ._synth import label_frames, molecules, random_rotation, small_model, small_soap

VAR_RTOL = 1e-4  # predictive variance against the dense float64 reference (float64 cancellation: ~4e-6 here)


def _dense_variance(model, train, test) -> np.ndarray:
    """Predictive variance (n_test, 3) of the observed irreps of the l=1 channel by dense float64 algebra in
    the whitened basis B = Phi G: s2 (k - |b|^2) + sigma2 |L^-1 b|^2 + sigma2, L L^T = B^T B + reg I
    (Cholesky; no eigenbasis W, no basis P), in label units squared."""
    cm = model.channels[0]
    col = cm.columns[0][1]
    ch, zeta, t = cm.channel, model.config.zeta, model.target
    ftr, fte = (model._lsoap().compute(f, model._channel_list()) for f in (train, test))
    phi, phis = (sparse_kernel(f, model.sparse, ch, zeta, t.per, t.pool) for f in (ftr, fte))
    kmm = sparse_sparse_kernel(model.sparse, ch, zeta)
    g = whitening(kmm, phi.shape[1])
    b, bs = phi @ g, phis @ g
    chol = np.linalg.cholesky(b.T @ b + col.reg * np.eye(b.shape[1]))
    x = np.linalg.solve(chol, bs.T)
    kss = np.einsum("naa->na", self_kernel(fte, ch, zeta, t.per, t.pool))
    var = col.s2 * (kss - np.sum(bs**2, axis=1).reshape(-1, 3)) + col.sigma2 * np.sum(x**2, axis=0).reshape(-1, 3) + col.sigma2
    return var * model.scales[0] ** 2


@pytest.fixture(scope="module")
def tiny_reg():
    """Dipoles of 40 molecules, every atom a sparse point (the training structures lie in the sparse
    span: their variance is the noise floor plus ~reg), regularisation 1e-9."""
    frames = molecules(5, 40)
    target = Target("mu", tensor="i")
    config = small_model(regularization=1e-9, global_state="none", n_sparse=200)
    model = SAGPR(target, small_soap(), config).fit(load_dataset(label_frames(frames, "mu", "vector", "structure"), target))
    return model, frames


def test_tiny_regularisation_std_survives_the_model_file(tiny_reg, tmp_path):
    model, frames = tiny_reg
    model.save(tmp_path / "mu.model")
    back = load(tmp_path / "mu.model")
    test = frames[:20]
    pred = back.predict(test, return_std=True)
    ref = _dense_variance(model, frames, test)
    floor = model.channels[0].columns[0][1].sigma2 * model.scales[0] ** 2
    assert ref.max() < 3 * floor  # the cancelling regime: variances of a few noise floors, from terms ~1e9 larger
    assert (pred.std > 0).all()
    np.testing.assert_allclose(pred.irreps_std**2, ref, rtol=VAR_RTOL, atol=0)
    assert np.load(tmp_path / "mu.model" / "arrays.npz")["ch0/P"].dtype == np.float64  # float32 would change the std


def test_float32_basis_of_an_old_file_never_goes_below_the_noise_floor(tiny_reg, caplog):
    """A model file written with a float32 P and a tiny regularisation (as before this fix): the noise-free
    covariance is clipped to positive semi-definite, so std >= the noise, with a warning; still equivariant."""
    model, frames = tiny_reg
    p = [cm.gp.P for cm in model.channels]
    try:
        for cm in model.channels:
            cm.gp.P = cm.gp.P.astype(np.float32).astype(np.float64)
        test = frames[:20]
        with caplog.at_level("WARNING", logger="psilearn"):
            pred = model.predict(test, return_cov=True)
        assert "negative noise-free variance" in caplog.text
        col = model.channels[0].columns[0][1]
        floor = col.sigma2 * model.scales[0] ** 2
        assert (pred.irreps_std**2 >= floor * (1 - 1e-9)).all()
        rot = random_rotation(np.random.default_rng(3))
        turned = [a.copy() for a in test]
        for a in turned:
            a.positions = a.positions @ rot.T
        cov = model.predict(turned, return_cov=True).cov
        np.testing.assert_allclose(cov, np.einsum("ij,njk,lk->nil", rot, pred.cov, rot), rtol=0, atol=1e-6 * np.abs(pred.cov).max())
    finally:
        for cm, x in zip(model.channels, p):
            cm.gp.P = x


def test_ordinary_regularisation_keeps_the_float32_basis(tmp_path):
    """File size: with a regularisation of 1e-2 float32 changes the variance by ~1e-6: the basis stays float32."""
    frames = molecules(5, 24)
    target = Target("mu", tensor="i")
    config = small_model(regularization=1e-2, global_state="none")
    model = SAGPR(target, small_soap(), config).fit(load_dataset(label_frames(frames, "mu", "vector", "structure"), target))
    model.save(tmp_path / "mu.model")
    assert np.load(tmp_path / "mu.model" / "arrays.npz")["ch0/P"].dtype == np.float32
    a, b = model.predict(frames, return_std=True), load(tmp_path / "mu.model").predict(frames, return_std=True)
    np.testing.assert_allclose(b.std, a.std, rtol=1e-4, atol=0)


# ---- k-fold held-out predictions --------------------------------------------------------------------


def _ridge_refit(b_tr, y_tr, b_va, reg):
    """A fold's model refitted on its complement: least squares of the augmented system [B; sqrt(reg) I]
    (no normal equations), predictions on ``b_va``."""
    a = np.vstack([b_tr, np.sqrt(reg) * np.eye(b_tr.shape[1])])
    w = np.linalg.lstsq(a, np.concatenate([y_tr, np.zeros(b_tr.shape[1])]), rcond=None)[0]
    return b_va @ w


def _every_row_a_sparse_point():
    """30 points in 50 dimensions, each its own sparse point (linear kernel), 5 folds: (K, y, the GP, B W, folds)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 50))
    y = x @ rng.normal(size=50) / np.sqrt(50)
    k = x @ x.T / 50
    gp, bw = SparseGP.build(k, [k])
    return k, y, gp, bw, np.arange(30) % 5


@pytest.mark.parametrize("reg", [1e-8, 1e-10, 1e-12])
def test_kfold_equals_refits_on_each_complement_at_tiny_regularisation(reg):
    """30 points in 50 dimensions, every point a sparse point: each row carries directions no other
    row has, so each fold removes the only data for some directions. Every fold's prediction equals
    the exact GP refitted on the other folds, K_vt (K_tt + reg I)^-1 y_t, to 1e-8 relative."""
    k, y, gp, bw, folds = _every_row_a_sparse_point()
    grid = np.array([reg, 1e-3, 1.0])
    _, one = gp.kfold_residuals(bw, y[:, None], folds, np.array([reg]))  # the Woodbury route when well-conditioned
    _, many = gp.kfold_residuals(bw, np.repeat(y[:, None], 3, axis=1), folds, grid)  # the SVD route
    for f in range(5):
        tr, va = folds != f, folds == f
        for j, r in enumerate(grid):
            expect = k[np.ix_(va, tr)] @ np.linalg.solve(k[np.ix_(tr, tr)] + r * np.eye(tr.sum()), y[tr])
            np.testing.assert_allclose(many[va, j], expect, rtol=1e-8, atol=1e-8 * np.abs(y).max())
        np.testing.assert_allclose(one[va, 0], many[va, 0], rtol=1e-8, atol=1e-8 * np.abs(y).max())


def test_kfold_of_a_tiny_polarizability_set_equals_refits():
    """Polarizabilities of 30 demo molecules, 5 folds: the l=2 channel's marginal likelihood chooses
    reg < 1e-9 and the held-out predictions equal refits on each fold's complement in the model's basis
    (before: off by 0.03 of |y| ~ 1 here; in the user check, 30 actively chosen molecules at the default
    SOAP, held-out residuals 140x the true ones, a 2e RMSE of 25.7 Bohr^3 against 0.22)."""
    pool = read(str(importlib.resources.files("psilearn") / "demo_data" / "molecules.xyz"), ":")
    frames = [pool[i] for i in range(0, 300, 10)]
    target = Target("alpha", tensor="ij=ji")
    model = SAGPR(target, small_soap(), small_model(n_sparse=None, global_state="none")).fit(load_dataset(frames, target))
    cm = next(c for c in model.channels if c.channel[0] == 2)
    bi, col = cm.columns[0]
    assert col.reg < 1e-9  # the marginal likelihood's choice on noise-free labels
    feats = model._lsoap().compute(frames, model._channel_list())
    phi = sparse_kernel(feats, model.sparse, cm.channel, model.config.zeta, target.per, target.pool)
    gp, bw = SparseGP.build(phi, sparse_sparse_kernel(model.sparse, cm.channel, model.config.zeta))
    y = (model.target.to_irreps(load_dataset(frames, target).values)[:, model.target.blocks[bi].cols] / model.scales[bi]).reshape(-1)
    folds = np.repeat(np.arange(30) % 5, 5)
    _, pred = gp.kfold_residuals(bw, y[:, None], folds, np.array([col.reg]))
    expect = np.zeros_like(y)
    for f in range(5):
        tr, va = folds != f, folds == f
        expect[va] = _ridge_refit(bw[tr], y[tr], bw[va], col.reg)
    np.testing.assert_allclose(pred[:, 0], expect, rtol=0, atol=1e-8 * np.abs(y).max())
    assert np.sqrt(np.mean((y - pred[:, 0]) ** 2)) < 2 * np.sqrt(np.mean(y**2))


def test_streamed_kfold_flags_folds_beyond_its_normal_equations():
    """The streamed fit keeps per-fold sums U_g = B_g^T B_g, not rows: at reg 1e-12 a fold holding the only
    data for some directions cannot be resolved from them (its weights are rounding / reg), and the fit
    says so in heldout_metrics instead of reporting a blown-up estimate silently; at reg 1e-3 it can."""
    from psilearn.models._kernel.foldcv import FoldCV

    k, y, gp, bw, folds = _every_row_a_sparse_point()
    cv = FoldCV(gp.P, [bw[folds == f].T @ bw[folds == f] for f in range(5)], [bw[folds == f].T @ y[folds == f, None] for f in range(5)],
                np.array([[y[folds == f] @ y[folds == f]] for f in range(5)]), np.bincount(folds))
    assert cv.unresolved_folds(np.array([1e-12])) == list(range(5))
    assert cv.unresolved_folds(np.array([1e-3])) == []
    # where it resolves them, its held-out weights are the refits'
    for f, w in enumerate(cv.coefs(np.array([1e-3]))):
        tr, va = folds != f, folds == f
        expect = k[np.ix_(va, tr)] @ np.linalg.solve(k[np.ix_(tr, tr)] + 1e-3 * np.eye(tr.sum()), y[tr])
        np.testing.assert_allclose(k[va] @ w[:, 0], expect, rtol=1e-8, atol=1e-8 * np.abs(y).max())


def test_streamed_fit_records_the_unresolved_estimate():
    """30 demo polarizabilities streamed in batches of 10: at regularisation 1e-12 the held-out estimate
    carries a warning naming the channels; at the marginal likelihood's choice (~1e-7 here) none."""
    pool = read(str(importlib.resources.files("psilearn") / "demo_data" / "molecules.xyz"), ":")
    frames = [pool[i] for i in range(0, 300, 10)]
    target = Target("alpha", tensor="ij=ji")
    data = load_dataset(frames, target)
    tiny = SAGPR(target, small_soap(), small_model(n_sparse=None, global_state="none", stream_batch=10, regularization=1e-12)).fit(data)
    assert "stream" in tiny.metadata
    assert "l=2" in tiny.metadata["heldout_metrics"]["warning"]
    ml = SAGPR(target, small_soap(), small_model(n_sparse=None, global_state="none", stream_batch=10)).fit(data)
    assert "warning" not in ml.metadata["heldout_metrics"] and "cartesian" in ml.metadata["heldout_metrics"]
