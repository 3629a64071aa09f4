"""Shrinkage of the per-level calibration factors of the nn-multifidelity kind towards the pooled factor
(psilearn.models._torch.uncertainty.shrink_factors): a level whose own factor rests on few validation
structures, and agrees with the pooled one within its noise, lands at the pooled factor; one with many
keeps its own; the weight on a level's own data grows with its count; levels that differ by far more than
their noise stay separated; the sampling variance taken from the data counts structures, not atoms, and
grows with heavy tails; on simulated z-scores the shrunk factor is closer to the truth than the level's
own when the levels agree, and not much farther when they differ tenfold. In a fitted model: a level with 3
validation structures and the same label noise as the other gets the pooled factor."""

from __future__ import annotations

import numpy as np
import pytest

from core._synth import molecules
from psilearn.data import load_dataset
from psilearn.models._torch.uncertainty import between_level_spread, log_factor_variance, log_mean_variance, shrink_factors
from psilearn.targets import Target

from . import test_fidelity_calibration as calib


def _two(own_small: float, dof_small: float, tau2: float | None = None):
    """A well-determined level (300 dof, own factor 1.0) and a small one; pooled 0.95. Returns (factors, weights, tau2)."""
    return shrink_factors(np.array([[1.0], [own_small]]), np.array([0.95]), np.array([[300.0], [dof_small]]), tau2)


def test_log_factor_variance_is_that_of_a_mean_of_chi2():
    rng = np.random.default_rng(0)
    for d in (1, 5, 25):
        x = rng.chisquare(d, 200_000) / d
        assert log_factor_variance(np.array([d]))[0] == pytest.approx(np.var(np.log(x)), rel=0.03)
    assert log_factor_variance(np.array([0.0]))[0] == np.inf
    assert log_factor_variance(np.array([1000.0]))[0] == pytest.approx(2 / 1000, rel=0.01)


def test_the_sampling_variance_from_the_data_counts_structures_not_atoms():
    rng = np.random.default_rng(1)
    # per-structure mean squared z of 3 Gaussian components, 40 structures: about trigamma(60) on average
    est = [log_mean_variance(rng.chisquare(3, (40, 1)) / 3, np.arange(40))[0] for _ in range(2000)]
    assert np.mean(est) == pytest.approx(log_factor_variance(np.array([120]))[0], rel=0.1)
    # the same values repeated on 4 atoms of each structure: the same variance (one draw per structure), not a quarter of it
    r = rng.chisquare(3, (40, 2)) / 3
    np.testing.assert_allclose(log_mean_variance(np.repeat(r, 4, axis=0), np.repeat(np.arange(40), 4)), log_mean_variance(r, np.arange(40)))
    assert np.all(log_mean_variance(r, np.arange(40)) > 2.5 * log_mean_variance(np.repeat(r, 4, axis=0), np.arange(160)))
    # heavy tails: one structure with a 30x larger squared error raises it far above the Gaussian value
    heavy = np.ones((40, 1))
    heavy[0] = 30.0
    assert log_mean_variance(heavy, np.arange(40))[0] > 3 * log_factor_variance(np.array([40]))[0]  # 0.18 vs 0.051
    assert log_mean_variance(r[:1], [0])[0] == np.inf


def test_few_structures_land_at_the_pooled_factor_many_at_their_own():
    # own factor 0.4 against a pooled 0.95: within the noise of 3 dof (log ratio -0.87, sampling std 1.2), far outside that of 3000
    a, w, tau2 = _two(0.4, 3)
    assert tau2 == 0.0 and w[1, 0] == 0.0 and a[1, 0] == pytest.approx(0.95)
    a, w, _ = _two(0.4, 3000)
    assert w[1, 0] > 0.95 and a[1, 0] == pytest.approx(0.4, rel=0.05)
    # with a given prior spread, few structures still weigh little
    a, w, _ = _two(0.4, 1, tau2=0.1)
    assert w[1, 0] < 0.05 and abs(np.log(a[1, 0] / 0.95)) < 0.05 * abs(np.log(0.4 / 0.95))


def test_the_weight_on_a_level_s_own_data_grows_with_its_count():
    counts = [1, 2, 3, 5, 8, 10, 20, 50, 100, 300, 1000, 3000]
    for tau2 in (0.05, 0.5, None):  # a given spread, and the empirical-Bayes one (two levels)
        w = [_two(0.4, d, tau2)[1][1, 0] for d in counts]
        assert np.all(np.diff(w) >= 0), (tau2, w)
        assert w[-1] > w[0] + 0.5, (tau2, w)
    # the factor moves monotonically from the pooled one towards the level's own
    a = [_two(0.4, d)[0][1, 0] for d in counts]
    assert np.all(np.diff(a) <= 0) and a[0] == pytest.approx(0.95) and a[-1] == pytest.approx(0.4, rel=0.05)


def test_levels_far_apart_stay_separated_and_a_level_without_data_gets_the_pooled_factor():
    own = np.array([[0.1, 0.2], [10.0, 5.0], [np.nan, np.nan]])
    pooled = np.array([5.0, 2.5])
    a, w, tau2 = shrink_factors(own, pooled, np.array([[30, 90], [30, 90], [0, 0]]))
    assert tau2 > 1 and np.all(w[:2] > 0.95)
    assert np.all(a[1] > 20 * a[0])
    np.testing.assert_allclose(a[:2], own[:2], rtol=0.1)
    assert np.all(w[2] == 0) and np.array_equal(a[2], pooled)
    assert between_level_spread(own[:1], log_factor_variance(np.array([[30, 90]]))) == 0.0  # one level: nothing to estimate


def _log_errors(n_ref: int, a_ref: float, reps: int = 200, n_lo: int = 60, dims=(1, 5), seed: int = 0) -> tuple[float, float]:
    """Mean squared log error of the reference level's own and shrunk factor, for Gaussian errors: a level of
    n_lo structures with true factor 1 and one of n_ref with a_ref, blocks of the given dimensions."""
    rng, dims = np.random.default_rng(seed), np.asarray(dims)
    e_own, e_shrunk = [], []
    for _ in range(reps):
        own = np.array([[a * rng.chisquare(d, n).mean() / d for d in dims] for a, n in ((1.0, n_lo), (a_ref, n_ref))])
        pooled = (n_lo * own[0] + n_ref * own[1]) / (n_lo + n_ref)  # the mean over all validation samples, as the nn fit has it
        a, _, _ = shrink_factors(own, pooled, np.outer([n_lo, n_ref], dims).astype(float))
        e_own.append(np.mean(np.log(own[1] / a_ref) ** 2))
        e_shrunk.append(np.mean(np.log(a[1] / a_ref) ** 2))
    return float(np.mean(e_own)), float(np.mean(e_shrunk))


def test_on_simulated_z_scores_shrinkage_helps_when_levels_agree_and_costs_little_when_they_differ():
    own, shrunk = _log_errors(5, 1.0)  # measured 0.28 / 0.047
    assert shrunk < 0.3 * own, (own, shrunk)
    own, shrunk = _log_errors(10, 10.0)  # measured 0.12 / 0.13
    assert shrunk < 1.5 * own, (own, shrunk)


def test_a_fitted_level_with_few_validation_structures_and_the_same_noise_gets_the_pooled_factor(monkeypatch):
    monkeypatch.setattr(calib, "NOISE", {"lo": 1.0, "hi": 1.0})  # both levels: the same function, the same label noise (dominating the model error)
    frames = molecules(31, 66)
    train = calib.noisy(frames[:60], "lo", 1) + calib.noisy(frames[60:], "hi", 2)
    target = Target("y")
    model = calib.heads(target, train=dict(dtype="float64", epochs=20, batch_size=8, val_fraction=0.5, patience=100))
    model.fit(load_dataset(train, target))
    rec = {r["level"]: r for r in model.metadata["multifidelity"]["per_level"]}
    assert rec["hi"]["n_validation_structures"] == 3 and rec["lo"]["n_validation_structures"] == 30
    c = rec["hi"]["calibration"]
    own, pooled = c["alpha2_own"][0], c["alpha2_pooled"][0]
    assert abs(np.log(own / pooled)) > np.log(1.3), c  # its own factor alone is off (measured 2.1x the pooled one) ...
    assert c["weight_own"][0] < 0.3 and abs(np.log(model.level_alpha2[1, 0] / pooled)) < 0.5 * abs(np.log(own / pooled)), c  # ... and not used
