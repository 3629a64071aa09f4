"""Cost-aware selection across levels on the multi-fidelity model's per-level joint posterior
(psilearn.active.levels_posterior): each greedy pick equals a brute-force dense computation over every
(structure, level) pair; the cost decides between the levels; a two-level run uses it and says so in its
log (else the surrogate kernel, logged too); targeted selection across levels."""

from __future__ import annotations

import numpy as np
import pytest

from psilearn.active import run_active
from psilearn.active.levels_posterior import level_posteriors, posterior_cost_batch
from psilearn.active.posterior import JointPosterior
from psilearn.errors import ConfigError
from psilearn.models.fidelity.multifidelity import MultiFidelityModel

from ._common import TEST, mf_options, pairs


def _random_levels(rng, n: int, d: int, scales=(1.0, 1.0)):
    """Two levels' factors over n candidates (+ 3 focus samples), rank 4 and 6, of given sizes and noises."""
    out = []
    for k, (rank, s2) in enumerate([(4, 0.05), (6, 0.2)]):
        out.append([(scales[k] * rng.normal(size=(n, d, rank)), scales[k] * rng.normal(size=(3, d, rank)), s2 * scales[k] ** 2)])
    return out


def _brute_force(levels, n: int, costs, remaining: float, criterion: str) -> list[tuple[int, int]]:
    """Greedy over (structure, level) pairs with the dense covariance of each level (candidates + focus),
    conditioned on that level's picks; score / cost, the best affordable; stop when none fits."""
    dense = []
    for [(rc, rf, s2)] in levels:
        x = np.vstack([rc.reshape(-1, rc.shape[-1]), rf.reshape(-1, rf.shape[-1])])
        dense.append([x @ x.T, s2, rc.shape[1], rc.shape[0] * rc.shape[1]])
    picks: list[tuple[int, int]] = []
    while True:
        best, arg = -np.inf, None
        for k, (c, s2, d, nc) in enumerate(dense):
            if costs[k] > remaining:
                continue
            for j in range(n):
                if (j, k) in picks:
                    continue
                r = np.arange(j * d, (j + 1) * d)
                if criterion == "variance":
                    score = np.trace(c[np.ix_(r, r)])
                else:
                    cjf = c[r, nc:]
                    score = np.trace(np.linalg.solve(c[np.ix_(r, r)] + s2 * np.eye(d), cjf @ cjf.T))
                if score / costs[k] > best:
                    best, arg = score / costs[k], (j, k)
        if arg is None:
            return picks
        j, k = arg
        c, s2, d, _ = dense[k]
        r = np.arange(j * d, (j + 1) * d)
        dense[k][0] = c - c[:, r] @ np.linalg.solve(c[np.ix_(r, r)] + s2 * np.eye(d), c[r, :])
        picks.append(arg)
        remaining -= costs[k]


@pytest.mark.parametrize("criterion, d", [("variance", 1), ("variance", 3), ("focus", 3)])
def test_greedy_picks_equal_the_brute_force_over_pairs(criterion, d):
    rng = np.random.default_rng(4)
    n, costs = 7, [0.3, 1.0]
    levels = _random_levels(rng, n, d, scales=(0.6, 1.0))
    samples_of = [np.array([j]) for j in range(n)]
    posts = [JointPosterior(f if criterion == "focus" else [(r, None, s2) for r, _, s2 in f], samples_of) for f in levels]
    got = posterior_cost_batch(posts, np.ones((2, n), bool), costs, 100, 4.0, criterion)
    want = _brute_force(levels, n, costs, 4.0, criterion)
    assert got == want
    assert {k for _, k in got} == {0, 1}  # both levels are used: the cost matters in this case
    assert sum(costs[k] for _, k in got) <= 4.0 and 4.0 - sum(costs[k] for _, k in got) < costs[0]  # stopped when none fitted


def test_taken_and_affine_levels_are_never_picked():
    rng = np.random.default_rng(1)
    levels = _random_levels(rng, 5, 1)
    samples_of = [np.array([j]) for j in range(5)]
    avail = np.ones((2, 5), bool)
    avail[1, [0, 2]] = False
    posts = [None, JointPosterior([(r, None, s2) for r, _, s2 in levels[1]], samples_of)]
    got = posterior_cost_batch(posts, avail, [0.01, 1.0], 100, 10.0)
    assert sorted(got) == [(1, 1), (3, 1), (4, 1)]  # level 0 (affine: no factors) never; the taken pairs never


def test_the_cheap_level_wins_by_variance_per_second_and_loses_when_dearer(mf_run):
    _, pool, model, _ = mf_run
    from psilearn.data import read_structures

    frames = read_structures(pool)
    top = [level_posteriors(model, frames, None, False)[k].scores("variance") for k in range(2)]
    ratio = top[0].max() / top[1].max()  # the cheap level's best term over the target level's
    for factor, level in [(0.5, 0), (2.0, 1)]:  # cheap cost = 0.5 x or 2 x the break-even one (target level: 1 s)
        posts = level_posteriors(model, frames, None, False)
        (j, k), = posterior_cost_batch(posts, np.ones((2, len(frames)), bool), [factor * ratio, 1.0], 1, 100.0)
        assert k == level and j == int(np.argmax(top[level]))


def test_two_level_run_logs_the_model_posterior(mf_run):
    _, _, _, log = mf_run
    assert [r.get("acquisition") for r in log["rounds"]] == [None] + ["model posterior"] * (len(log["rounds"]) - 1)
    assert len(log["rounds"]) > 2 and len(set(pairs(log))) == len(pairs(log))


def test_without_per_level_factors_the_surrogate_is_used_and_logged(mf_run, tmp_path, monkeypatch):
    _, pool, _, log = mf_run
    monkeypatch.setattr(MultiFidelityModel, "level_posterior_factors", lambda self, frames: None)
    _, other = run_active(mf_options(pool), state_dir=str(tmp_path / "s"))
    assert {r.get("acquisition") for r in other["rounds"][1:]} == {"surrogate kernel"}
    assert pairs(other)[:8] == pairs(log)[:8] and pairs(other) != pairs(log)  # same initial set, other picks


def test_targeted_across_levels(mf_run, tmp_path):
    _, pool, _, _ = mf_run
    _, log = run_active(mf_options(pool, strategy="targeted", focus=TEST), state_dir=str(tmp_path / "t"))
    assert {r.get("acquisition") for r in log["rounds"][1:]} == {"model posterior"}
    got = pairs(log)
    assert len(got) == len(set(got)) and sum(r["charged_seconds"] for r in log["rounds"]) <= 10 + 1e-9
    with pytest.raises(ConfigError, match="--strategy targeted with several levels needs a joint posterior"):
        run_active(mf_options(pool, strategy="targeted", focus=TEST, kind="baseline"), state_dir=str(tmp_path / "b"))
    # a network kind whose options drop LLPR (a deep ensemble): refused before round 0, not after its first fit
    ensemble = {"nn": {"channels": 4}, "nn_train": {"uncertainty": "ensemble", "ensemble_size": 2, "epochs": 1}}
    with pytest.raises(ConfigError, match="model kind 'nn' has none here"):
        run_active(mf_options(pool, strategy="targeted", focus=TEST, kind="nn", config=ensemble), state_dir=str(tmp_path / "e"))
    assert not (tmp_path / "e").exists()


def test_level_posteriors_split_one_call_into_candidates_and_focus(mf_run):
    """level_posteriors asks the model once for candidates and focus together: its focus scores equal those of
    JointPosteriors built from separate calls."""
    from psilearn.data import read_structures

    _, pool, model, _ = mf_run
    frames, focus = read_structures(pool)[:12], read_structures(TEST)[:5]
    got = level_posteriors(model, frames, focus, per_atom=False)
    cand, foc = model.level_posterior_factors(frames), model.level_posterior_factors(focus)
    samples_of = [np.array([j]) for j in range(len(frames))]
    for post, c, f in zip(got, cand, foc):
        if c is None:
            assert post is None
            continue
        ref = JointPosterior([(r, rf, s2) for (r, s2), (rf, _) in zip(c, f)], samples_of)
        np.testing.assert_allclose(post.scores("focus"), ref.scores("focus"), rtol=1e-10)
