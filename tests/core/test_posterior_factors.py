"""SA-GPR's joint posterior across samples (``posterior_factors``, used by targeted active learning):
equal to conditioning the dense projected-process prior on the training rows, consistent with the
model's own predictive variance, and exactly O(3)-equivariant, permutation- and translation-invariant."""

from __future__ import annotations

import numpy as np
import pytest

from psilearn.data import load_dataset
from psilearn.features.compress import apply_projections
from psilearn.models import SAGPR
from psilearn.models._kernel.gpr import whitening
from psilearn.models._kernel.kernels import self_kernel, sparse_kernel, sparse_sparse_kernel
from psilearn.targets import Target
from psilearn.targets.cartesian import cartesian_basis

from ._synth import cartesian_operator, label_frames, molecules, random_rotation, small_model, small_soap, transform_frames

CASES = {"sym2": ("ij=ji", "structure"), "vector": ("i", "atom")}


@pytest.fixture(scope="module", params=list(CASES))
def fitted(request):
    tensor, per = CASES[request.param]
    target = Target("y", tensor=tensor, per=per)
    train = label_frames(molecules(0, 24), "y", request.param, per)
    test = label_frames(molecules(1, 6), "y", request.param, per)
    return SAGPR(target, soap=small_soap(), config=small_model()).fit(load_dataset(train, target)), train, test


def _dense_posterior(model, train, test):
    """Per irrep occurrence: the dense prior s2 B B^T over train + test rows conditioned on the training rows
    with noise sigma2 (label units), and the residual prior variance s2 (k(x,x) - B B^T) of each row."""
    frames = train + test
    feats = model._lsoap().compute(frames, model._channel_list())
    if model.projections:
        apply_projections(feats, model.projections)
    per = model.target.per
    n_train = len(train) if per == "structure" else sum(len(a) for a in train)
    out = []
    for cm in model.channels:
        d = 2 * cm.channel[0] + 1
        phi = sparse_kernel(feats, model.sparse, cm.channel, model.config.zeta, per, model.target.pool)
        kmm = sparse_sparse_kernel(model.sparse, cm.channel, model.config.zeta)
        phi, kmm = model._with_global_state(phi, kmm, feats, frames, d)
        b = phi @ whitening(kmm, phi.shape[1])
        kss = np.einsum("naa->na", self_kernel(feats, cm.channel, model.config.zeta, per, model.target.pool)).ravel()
        for bi, col in cm.columns:
            scale2 = model.scales[bi] ** 2
            prior, noise = col.s2 * scale2 * b @ b.T, col.sigma2 * scale2
            tr = slice(0, n_train * d)
            post = prior - prior[:, tr] @ np.linalg.solve(prior[tr, tr] + noise * np.eye(n_train * d), prior[tr, :])
            out.append((post, noise, col.s2 * scale2 * (kss - np.einsum("ij,ij->i", b, b)), n_train * d, bi))
    return out


def test_factors_equal_the_dense_conditioning(fitted):
    model, train, test = fitted
    factors = model.posterior_factors(train + test)
    dense = _dense_posterior(model, train, test)
    assert len(factors) == len(dense) == len(model.target.blocks)
    variance = model.predict(test, return_std=True).irreps_std ** 2
    for (r, noise), (post, noise_dense, resid, n_train_rows, bi) in zip(factors, dense):
        flat = r.reshape(-1, r.shape[-1])
        assert np.abs(flat @ flat.T - post).max() <= 1e-9 * np.abs(post).max()
        assert noise == pytest.approx(noise_dense, rel=1e-12)
        # the model's predictive variance = the joint posterior's diagonal + the noise + the part outside the sparse span
        cols = model.target.blocks[bi].cols
        np.testing.assert_allclose(np.diag(post)[n_train_rows:] + noise + resid[n_train_rows:], variance[:, cols].ravel(), rtol=1e-9)


def _cartesian_cov(model, frames) -> np.ndarray:
    """(n, n, 3**rank, 3**rank) Cartesian covariance between every pair of samples of ``frames``."""
    tc = cartesian_basis(model.target.tensor).to_cartesian
    out = 0.0
    for (r, _), b in zip(model.posterior_factors(frames), model.target.blocks):
        rows = tc[b.cols]
        c = np.einsum("ndr,mer->nmde", r, r)
        out = out + np.einsum("dk,nmde,el->nmkl", rows, c, rows)
    return out


@pytest.mark.parametrize("improper", [False, True])
def test_joint_covariance_is_o3_equivariant_and_invariant_to_order_and_origin(fitted, improper):
    model, _, test = fitted
    q = random_rotation(np.random.default_rng(5))
    if improper:
        q = -q
    m = cartesian_operator(q, model.target.rank)
    ref = _cartesian_cov(model, test)
    got = _cartesian_cov(model, transform_frames(test, q, shift=(0.3, -1.2, 2.0)))
    expect = np.einsum("kp,nmpq,lq->nmkl", m, ref, m)
    assert np.abs(got - expect).max() <= 1e-8 * np.abs(ref).max()
    # reversed atom order in every structure (per-atom samples: permuted the same way)
    perm = [a[::-1] for a in test]
    got = _cartesian_cov(model, perm)
    if model.target.per == "atom":
        order = np.concatenate([np.arange(len(a))[::-1] + s for a, s in zip(test, np.cumsum([0] + [len(a) for a in test[:-1]]))])
        ref = ref[np.ix_(order, order)]
    assert np.abs(got - ref).max() <= 1e-8 * np.abs(ref).max()


def test_kinds_without_a_joint_posterior_say_so():
    from psilearn.models.baseline.model import BaselineModel

    assert BaselineModel.posterior_factors(object.__new__(BaselineModel), []) is None
