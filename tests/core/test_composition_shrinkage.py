"""The composition baseline pulls its per-element coefficients towards a common value when, and only
when, leave-one-out says it generalises better: with elements seen in few samples (the elasticity set:
71 elements in 80 crystals) the unshrunk fit interpolates and extrapolates wildly; with many samples
per element nothing changes."""

from __future__ import annotations

import numpy as np

from psilearn.models.composition import choose_shrinkage, fit_composition


def _fractions(rng, n: int, n_elements: int, per_sample: int = 3) -> np.ndarray:
    """(n, n_elements) element fractions of random 'compounds' of ``per_sample`` elements (pool mean)."""
    out = np.zeros((n, n_elements))
    for i in range(n):
        z = rng.choice(n_elements, per_sample, replace=False)
        out[i, z] = rng.integers(1, 4, per_sample)
    return out / out.sum(1, keepdims=True)


def test_well_determined_compositions_are_not_shrunk():
    rng = np.random.default_rng(0)
    design = _fractions(rng, 30, 5)  # 6 samples per element: searched
    coef = np.array([10.0, -3.0, 7.0, 0.5, 2.0])
    y = design @ coef
    assert choose_shrinkage(design, y) == 0.0
    np.testing.assert_allclose(fit_composition(design, y), coef, atol=1e-5)


def test_few_samples_per_element_are_shrunk_and_generalise():
    rng = np.random.default_rng(1)
    n_el = 40
    effect = rng.normal(0, 10, n_el)  # small element effects on a large common value, plus noise
    train, test = _fractions(rng, 50, n_el), _fractions(rng, 200, n_el)
    y = 100 + train @ effect + rng.normal(0, 30, len(train))
    truth = 100 + test @ effect
    assert choose_shrinkage(train, y) > 0
    rmse = {s: np.sqrt(np.mean((test @ fit_composition(train, y, shrink=s) - truth) ** 2)) for s in (False, True)}
    assert rmse[True] < 0.5 * rmse[False], rmse
    assert rmse[True] < np.std(truth) + 30  # no worse than the mean plus the noise


def test_columns_share_one_shrinkage_and_keep_their_shapes():
    rng = np.random.default_rng(2)
    design = _fractions(rng, 30, 25)
    y = rng.normal(50, 10, (30, 2))
    coef = fit_composition(design, y)
    assert coef.shape == (25, 2)
    np.testing.assert_allclose(np.stack([fit_composition(design, y[:, k], shrink=False) for k in range(2)], 1),
                               fit_composition(design, y, shrink=False), rtol=1e-8)


def test_constant_columns_neither_vote_nor_break():
    rng = np.random.default_rng(3)
    design = _fractions(rng, 30, 25)
    y = np.c_[rng.normal(50, 10, 30), np.full(30, 7.0)]  # e.g. a spectrum's empty tail
    assert choose_shrinkage(design, y) == choose_shrinkage(design, y[:, 0])
    np.testing.assert_allclose(design @ fit_composition(design, y)[:, 1], 7.0, rtol=1e-6)


def test_no_columns():
    design = _fractions(np.random.default_rng(4), 12, 6)
    assert fit_composition(design, np.zeros((12, 0))).shape == (6, 0)
