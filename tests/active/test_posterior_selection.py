"""Selection on the model's joint posterior (psilearn.active.posterior): every score equals the dense
computation it stands for, before and after conditioning on picks, for one-row and several-row
candidates (per-atom targets); and a targeted run on SA-GPR uses it and says so in its log."""

from __future__ import annotations

import numpy as np
import pytest

from psilearn.active import posterior as posterior_module
from psilearn.active import run_active
from psilearn.active.posterior import NOISE_FLOOR, JointPosterior, posterior_batch

from ._common import TEST, options, selected


def _factors(rng, n_samples: int, n_focus: int, d: int, rank: int):
    return rng.normal(size=(n_samples, d, rank)), rng.normal(size=(n_focus, d, rank))


def _rows(samples, d):
    return np.concatenate([np.arange(s * d, (s + 1) * d) for s in samples])


def _dense_scores(parts, samples_of, picked):
    """Brute force: condition the dense covariance over candidates + focus on the picks, then score."""
    focus_score = np.zeros(len(samples_of))
    own = np.zeros(len(samples_of))
    for rc, rf, s2 in parts:
        d = rc.shape[1]
        x = np.vstack([rc.reshape(-1, rc.shape[-1]), rf.reshape(-1, rf.shape[-1])])
        c = x @ x.T
        nc = rc.shape[0] * d
        for j in picked:
            r = _rows(samples_of[j], d)
            c = c - c[:, r] @ np.linalg.solve(c[np.ix_(r, r)] + s2 * np.eye(len(r)), c[r, :])
        f = np.arange(nc, len(x))
        for j, samples in enumerate(samples_of):
            r = _rows(samples, d)
            own[j] += np.trace(c[np.ix_(r, r)])
            cjf = c[np.ix_(r, f)]
            focus_score[j] += np.trace(np.linalg.solve(c[np.ix_(r, r)] + s2 * np.eye(len(r)), cjf @ cjf.T))
    return focus_score, own


@pytest.mark.parametrize("cross", [True, False])
@pytest.mark.parametrize("per_atom", [False, True])
def test_scores_equal_the_dense_conditioning(per_atom, cross, monkeypatch):
    """``cross``: the focus through the stored cross-covariance C_cF, or (a focus too large for it) through A = R_F^T R_F."""
    monkeypatch.setattr(posterior_module, "CROSS_LIMIT", posterior_module.CROSS_LIMIT if cross else 0)
    rng = np.random.default_rng(0)
    if per_atom:  # candidates of 1-3 samples (atoms)
        sizes = rng.integers(1, 4, size=9)
        ends = np.cumsum(sizes)
        samples_of = [np.arange(e - s, e) for s, e in zip(sizes, ends)]
    else:
        samples_of = [np.array([k]) for k in range(9)]
    n = int(sum(len(s) for s in samples_of))
    parts = [(*_factors(rng, n, 4, 1, 6), 0.3), (*_factors(rng, n, 4, 5, 12), 0.05)]
    post = JointPosterior(parts, samples_of)
    assert all(("cf" in p) == cross for p in post.parts)
    picked = []
    for step in range(4):
        focus_ref, own_ref = _dense_scores(parts, samples_of, picked)
        np.testing.assert_allclose(post.scores("focus"), focus_ref, rtol=1e-9)
        np.testing.assert_allclose(post.scores("variance"), own_ref, rtol=1e-9, atol=1e-9 * own_ref.max())
        j = int(np.argsort(-focus_ref)[step])  # condition on a different candidate each step
        picked.append(j)
        post.condition(j)
    # the focus variance left equals the dense one
    x = [np.vstack([rc.reshape(-1, rc.shape[-1]), rf.reshape(-1, rf.shape[-1])]) for rc, rf, _ in parts]
    dense_left = 0.0
    for (rc, rf, s2), xx in zip(parts, x):
        c, d = xx @ xx.T, rc.shape[1]
        for j in picked:
            r = _rows(samples_of[j], d)
            c = c - c[:, r] @ np.linalg.solve(c[np.ix_(r, r)] + s2 * np.eye(len(r)), c[r, :])
        dense_left += np.trace(c[rc.shape[0] * d:, rc.shape[0] * d:])
    assert post.focus_variance() == pytest.approx(dense_left, rel=1e-9)


def test_batch_goes_to_the_focus_and_never_repeats():
    """Candidates 0-4 share a direction with the focus; 5-9 are more uncertain but uncorrelated with it."""
    rng = np.random.default_rng(1)
    near = np.zeros((5, 1, 4))
    near[:, 0, 0] = 1.0 + 0.01 * rng.normal(size=5)
    far = np.zeros((5, 1, 4))
    far[:, 0, 1:] = 3.0 * rng.normal(size=(5, 3))
    focus = np.zeros((3, 1, 4))
    focus[:, 0, 0] = 1.0
    post = JointPosterior([(np.concatenate([near, far]), focus, 0.01)], [np.array([k]) for k in range(10)])
    picks = posterior_batch(post, 3, "focus")
    assert picks[0] < 5 and len(set(picks)) == 3
    assert posterior_batch(JointPosterior([(np.concatenate([near, far]), None, 0.01)], [np.array([k]) for k in range(10)]),
                           1, "variance")[0] >= 5


def test_noise_floor_keeps_a_noiseless_model_finite():
    rng = np.random.default_rng(2)
    rc, rf = _factors(rng, 6, 3, 3, 2)  # rank 2 < 6 x 3 rows: conditioning exhausts it
    post = JointPosterior([(rc, rf, 0.0)], [np.array([k]) for k in range(6)])
    assert post.parts[0]["s2"] > 0 and post.parts[0]["s2"] <= NOISE_FLOOR * np.mean(np.sum(rc**2, axis=2))
    picks = posterior_batch(post, 6, "focus")
    assert sorted(picks) == list(range(6)) and np.all(np.isfinite(post.scores("focus")))


def test_targeted_run_uses_the_model_posterior(tmp_path, monkeypatch):
    """SA-GPR: the model's own posterior; a kind without one (here: SA-GPR with it switched off): the surrogate."""
    from psilearn.models import SAGPR

    _, log = run_active(options(strategy="targeted", focus=TEST, budget=16), state_dir=str(tmp_path / "t"))
    assert len(set(selected(log))) == 16
    assert [r.get("acquisition") for r in log["rounds"]] == [None, "model posterior", "model posterior"]
    monkeypatch.setattr(SAGPR, "posterior_factors", lambda self, frames: None)
    _, log = run_active(options(strategy="targeted", focus=TEST, budget=11), state_dir=str(tmp_path / "s"))
    assert [r.get("acquisition") for r in log["rounds"]] == [None, "surrogate kernel"]


def test_round_picks_equal_the_batch_on_separate_factors(tmp_path):
    """The loop computes the candidates' and the focus's factors in one call and splits them: its picks equal
    posterior_batch on factors computed separately for the candidates and for the focus."""
    from psilearn.data import read_structures

    models = []
    opts = options(strategy="targeted", focus=TEST, budget=11)
    _, log = run_active(opts, state_dir=str(tmp_path / "t"), on_fit=lambda r, model: models.append(model))
    pool, focus = read_structures(opts.pool), read_structures(TEST)
    candidates = np.setdiff1d(np.arange(len(pool)), log["rounds"][0]["selected"])
    cand = models[0].posterior_factors([pool[i] for i in candidates])
    foc = models[0].posterior_factors(focus)
    post = JointPosterior([(c, f, s2) for (c, s2), (f, _) in zip(cand, foc)], [np.array([k]) for k in range(len(candidates))])
    assert log["rounds"][1]["selected"] == [int(candidates[j]) for j in posterior_batch(post, 5, "focus")]
