"""The nn kind's LLPR joint posterior across samples (``posterior_factors``, used by active learning):
its diagonal is the model's own predictive variance; conditioning it on a label with the stated noise
equals refitting the LLPR covariance with that sample's features; it is exactly O(3)-equivariant and
translation- and permutation-invariant; the selection scores on it equal the dense computation; a
targeted active-learning run with the nn kind uses it; ensembles and nn-multifidelity levels."""

from __future__ import annotations

import numpy as np
import pytest

from active._common import TEST, options
from active.test_posterior_selection import _dense_scores
from core._synth import cartesian_operator, label_frames, level_frames, molecules, random_rotation, transform_frames
from psilearn.active import run_active
from psilearn.active.posterior import JointPosterior
from psilearn.data import load_dataset
from psilearn.models._torch import uncertainty as unc
from psilearn.targets import Target
from psilearn.targets.cartesian import cartesian_basis

from .conftest import TINY_NET, fit_tiny

CASES = {"sym2-structure": ("ij=ji", "structure", "sym2"), "vector-atom": ("i", "atom", "vector"),
         "scalar-atom": ("", "atom", "scalar")}
F64 = dict(dtype="float64", epochs=2)
_cache: dict = {}


def fitted(case: str):
    if case not in _cache:
        tensor, per, kind = CASES[case]
        target = Target("y", tensor=tensor, per=per, pool="sum")
        model = fit_tiny(label_frames(molecules(3, 12), "y", kind, per), target, train=F64)
        _cache[case] = (model, molecules(11, 5))
    return _cache[case]


def _n_samples(model, frames) -> int:
    return len(frames) if model.target.per == "structure" else sum(len(a) for a in frames)


@pytest.mark.parametrize("case", list(CASES))
def test_diagonal_is_the_model_variance(case):
    model, test = fitted(case)
    factors = model.posterior_factors(test)
    var = model.predict(test, return_std=True).irreps_std ** 2
    assert len(factors) == len(model.target.blocks)
    for (r, s2), b, a2 in zip(factors, model.target.blocks, model.llpr.alpha2):
        assert r.shape[:2] == (_n_samples(model, test), b.dim) and s2 == pytest.approx(a2, rel=1e-14)
        mean_m = np.einsum("nmr,nmr->n", r, r) / b.dim  # mean over m of the diagonal of R_a R_a^T
        for c in range(b.start, b.start + b.dim):
            np.testing.assert_allclose(mean_m, var[:, c], rtol=1e-8)


@pytest.mark.parametrize("case", ["sym2-structure", "vector-atom"])
def test_readout_is_linear_in_the_llpr_features_with_weights_shared_over_m(case):
    """The premise of the factors: each output block is w^T f_m (times its scale) for the features LLPR uses."""
    import torch

    from psilearn.models._torch.graph import collate
    from psilearn.models._torch.network import pool_atoms

    model, _ = fitted(case)
    t, net, frames = model.target, model.nets[0], molecules(13, 20)
    graphs = model._graphs(frames)
    b = collate(graphs, model.device, model.dtype)
    with torch.no_grad():
        shift = net.shift[b.species]
        out = (net(b, t.per, t.pool) - (pool_atoms(shift, b, t.pool) if t.per == "structure" else shift)).numpy()
    feats = unc.last_layer_features(net, graphs, t.per, t.pool, sorted(model.llpr.inv), 32, model.device, model.dtype)
    for blk in model.blocks:
        x = feats[(blk.l, blk.p)].reshape(-1, feats[(blk.l, blk.p)].shape[-1])
        y = out[:, blk.start : blk.start + blk.dim].reshape(-1)
        assert len(x) > 2 * x.shape[1]  # over-determined: an exact fit is a real finding
        w = np.linalg.lstsq(x, y, rcond=None)[0]
        assert np.abs(x @ w - y).max() <= 1e-10 * np.abs(y).max()


@pytest.mark.parametrize("case", ["sym2-structure", "vector-atom"])
def test_conditioning_with_noise_alpha2_equals_refitting_llpr(case):
    """C - C_:j (C_jj + alpha2 I)^-1 C_j: = alpha2 F (Sigma^-1 + F_j^T F_j)^-1 F^T: the stated noise is the model's."""
    model, test = fitted(case)
    t = model.target
    keys = sorted(model.llpr.inv)
    feats = unc.last_layer_features(model.nets[0], model._graphs(test), t.per, t.pool, keys, 32, model.device, model.dtype)
    j = [0] if t.per == "structure" else list(range(len(test[0])))  # the first structure (or its atoms) labelled
    for (r, s2), b in zip(model.posterior_factors(test), model.blocks):
        d = b.dim
        flat = r.reshape(-1, r.shape[-1])
        rows = np.concatenate([np.arange(k * d, (k + 1) * d) for k in j])
        c = flat @ flat.T
        cond = c - c[:, rows] @ np.linalg.solve(c[np.ix_(rows, rows)] + s2 * np.eye(len(rows)), c[rows, :])
        f = feats[(b.l, b.p)].reshape(-1, r.shape[-1])
        refit = s2 * f @ np.linalg.solve(np.linalg.inv(model.llpr.inv[(b.l, b.p)]) + f[rows].T @ f[rows], f.T)
        assert np.abs(cond - refit).max() <= 1e-7 * np.abs(c).max()
        assert np.abs(cond - c).max() > 1e-3 * np.abs(c).max()  # the label did change the covariance


def _cartesian_cov(model, frames) -> np.ndarray:
    """(n, n, 3**rank, 3**rank) Cartesian covariance between every pair of samples of ``frames``."""
    tc = cartesian_basis(model.target.tensor).to_cartesian
    out = 0.0
    for (r, _), b in zip(model.posterior_factors(frames), model.target.blocks):
        rows = tc[b.cols]
        out = out + np.einsum("dk,nmde,el->nmkl", rows, np.einsum("ndr,mer->nmde", r, r), rows)
    return out


@pytest.mark.parametrize("improper", [False, True])
@pytest.mark.parametrize("case", ["sym2-structure", "vector-atom"])
def test_joint_covariance_is_o3_equivariant_and_invariant_to_order_and_origin(case, improper):
    model, test = fitted(case)
    q = random_rotation(np.random.default_rng(5))
    q = -q if improper else q
    m = cartesian_operator(q, model.target.rank)
    ref = _cartesian_cov(model, test)
    n = len(ref)
    off = ~np.eye(n, dtype=bool)
    assert np.abs(ref[off]).max() > 1e-3 * np.abs(ref).max()  # samples are correlated: the off-diagonal blocks count
    got = _cartesian_cov(model, transform_frames(test, q, shift=(0.3, -1.2, 2.0)))
    expect = np.einsum("kp,nmpq,lq->nmkl", m, ref, m)
    assert np.abs(got - expect).max() <= 1e-8 * np.abs(ref).max()
    got = _cartesian_cov(model, [a[::-1] for a in test])  # reversed atom order (per-atom samples: permuted the same way)
    if model.target.per == "atom":
        starts = np.cumsum([0] + [len(a) for a in test[:-1]])
        order = np.concatenate([np.arange(len(a))[::-1] + s for a, s in zip(test, starts)])
        ref = ref[np.ix_(order, order)]
    assert np.abs(got - ref).max() <= 1e-8 * np.abs(ref).max()


@pytest.mark.parametrize("case", ["sym2-structure", "vector-atom"])
def test_selection_scores_on_nn_factors_equal_the_dense_conditioning(case):
    model, test = fitted(case)
    focus = molecules(12, 3)
    parts = [(rc, rf, s2) for (rc, s2), (rf, _) in zip(model.posterior_factors(test), model.posterior_factors(focus))]
    if model.target.per == "structure":
        samples_of = [np.array([k]) for k in range(len(test))]
    else:
        ends = np.cumsum([len(a) for a in test])
        samples_of = [np.arange(e - len(a), e) for a, e in zip(test, ends)]
    post = JointPosterior(parts, samples_of)
    picked = []
    for _ in range(3):
        focus_ref, own_ref = _dense_scores(parts, samples_of, picked)
        np.testing.assert_allclose(post.scores("focus"), focus_ref, rtol=1e-8)
        np.testing.assert_allclose(post.scores("variance"), own_ref, rtol=1e-8, atol=1e-9 * own_ref.max())
        score = focus_ref.copy()
        score[picked] = -np.inf
        picked.append(int(np.argmax(score)))
        post.condition(picked[-1])


def test_targeted_nn_run_uses_the_model_posterior(tmp_path):
    config = {"nn": {**TINY_NET}, "nn_train": {**F64, "batch_size": 4, "val_fraction": 0.25, "threads": 1}}
    _, log = run_active(options(kind="nn", config=config, strategy="targeted", focus=TEST, init=8, batch=4, budget=16),
                        state_dir=str(tmp_path / "t"))
    assert [r.get("acquisition") for r in log["rounds"]] == [None, "model posterior", "model posterior"]
    assert len({i for r in log["rounds"] for i in r["selected"]}) == 16


def test_ensembles_and_models_without_uncertainty_have_none():
    target = Target("y", tensor="i")
    frames = label_frames(molecules(3, 8), "y", "vector", "structure")
    for train in (dict(uncertainty="ensemble", ensemble_size=2), dict(uncertainty="none")):
        model = fit_tiny(frames, target, train={**F64, **train})
        assert model.posterior_factors(molecules(11, 2)) is None


def test_nn_multifidelity_levels_have_their_own_variance():
    from .test_fidelity_heads import heads

    target = Target("y", tensor="ij=ji")
    base = label_frames(molecules(9, 24), "y", "sym2", "structure")
    frames = level_frames(base, "y", range(16), range(16, 24), lambda i, a: 10.0 * np.asarray(base[i].info["y"]), names=("lo", "hi"))
    model = heads(target, train=F64).fit(load_dataset(frames, target))
    test = molecules(10, 3)
    for lv, k in ((None, model.levels.index("hi")), ("lo", model.levels.index("lo"))):
        assert np.all(np.abs(np.log(model.level_alpha2[k] / model.llpr.alpha2)) > 0.1)  # not the pooled factor
        var = model.predict(test, fidelity=lv, return_std=True).irreps_std ** 2
        factors = model.posterior_factors(test, fidelity=lv)
        for (r, s2), b, a2 in zip(factors, model.target.blocks, model.level_alpha2[k]):
            np.testing.assert_allclose(np.einsum("nmr,nmr->n", r, r) / b.dim, var[:, b.start], rtol=1e-8)
            assert s2 == pytest.approx(a2, rel=1e-14)  # the level's own calibration factor


def test_memory_guard_before_the_features(monkeypatch):
    from psilearn.errors import MemoryBudgetError

    model, test = fitted("vector-atom")
    monkeypatch.setenv("PSILEARN_MEMORY_LIMIT", "1000")  # bytes: less than the factors of one atom need
    with pytest.raises(MemoryBudgetError, match="joint posterior of .* samples"):
        model.posterior_factors(test)


def test_two_level_cost_aware_run_with_nn_levels_uses_the_per_level_posterior(tmp_path):
    """The recursive multifidelity kind with nn levels: every level has LLPR factors, so cost-aware selection
    runs on the per-level joint posterior (psilearn.active.levels_posterior), not the surrogate."""
    from tests.active._common import mf_options, two_level_pool

    config = {"nn": {**TINY_NET}, "nn_train": {**F64, "batch_size": 4, "val_fraction": 0.25, "threads": 1}}
    pool = two_level_pool(tmp_path / "pool.xyz")
    _, log = run_active(mf_options(pool, kind="nn", config=config, init=8, batch=2, budget=12), state_dir=str(tmp_path / "t"))
    assert [r.get("acquisition") for r in log["rounds"][1:]] and all(r.get("acquisition") == "model posterior" for r in log["rounds"][1:])
