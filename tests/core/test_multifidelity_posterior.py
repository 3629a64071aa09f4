"""The recursive multi-fidelity model's per-level joint posterior (``level_posterior_factors``, used by
cost-aware active learning): level k's factors are its model's dense projected-process posterior scaled
by P_k = rho_{k+1} ... rho_T per block, their diagonal is the level's term of the target variance
(``variance_terms``) minus what no label reduces (P_k^2 x the noise and the prior variance outside the
sparse span); affine levels have none."""

from __future__ import annotations

import numpy as np
import pytest

from psilearn.data import load_dataset
from psilearn.models.factory import fit_model
from psilearn.models.fidelity import multifidelity_kind
from psilearn.targets import Target

from ._synth import SMALL_MODEL, SMALL_SOAP, label_frames, level_frames, molecules
from .test_posterior_factors import _dense_posterior

TARGET = Target("alpha", tensor="ij=ji")
CONFIG = {"soap": SMALL_SOAP, "model": {**SMALL_MODEL, "n_sparse": 30}}
LO, HI = list(range(40)), list(range(0, 40, 4))


@pytest.fixture(scope="module")
def setup():
    frames = molecules(11, 46)
    base = label_frames(frames, "alpha", "sym2", "structure")
    more = label_frames(frames, "x", "sym2_traceless", "structure")
    data = load_dataset(level_frames(base, "alpha", LO, HI, lambda i, a: 1.4 * np.asarray(base[i].info["alpha"])
                                     + 0.3 * np.asarray(more[i].info["x"])), TARGET)
    model = fit_model(multifidelity_kind("level", ["gfn2", "pbe0"], "pbe0"), TARGET, data, CONFIG, seed=0)
    return model, frames


def test_level_factors_are_the_scaled_dense_posteriors_and_their_diagonal_the_reducible_variance(setup):
    model, frames = setup
    test = frames[40:]
    got = model.level_posterior_factors(test)
    terms = model.variance_terms(test)  # (levels, samples, irreps)
    p = [np.asarray(model.rho[0], float), np.ones(len(TARGET.blocks))]  # P_0 = rho_1 per block, P_1 = 1
    assert not np.allclose(p[0][0], p[0][1])  # the two blocks are scaled differently: the block of each factor matters
    train = [[frames[i] for i in LO], [frames[i] for i in HI]]
    for k in range(2):
        dense = _dense_posterior(model.models[k], train[k], test)
        assert len(got[k]) == len(dense) == len(TARGET.blocks)
        for (r, s2), (post, noise, resid, n_rows, bi) in zip(got[k], dense):
            flat = r.reshape(-1, r.shape[-1])
            cond = p[k][bi] ** 2 * post[n_rows:, n_rows:]  # the level's posterior on the test rows, in target units
            assert np.abs(flat @ flat.T - cond).max() <= 1e-9 * np.abs(cond).max()
            assert s2 == pytest.approx(p[k][bi] ** 2 * noise, rel=1e-12)
            # diag R_k R_k^T = the level's variance term - P_k^2 (noise + prior variance outside the sparse span)
            cols = TARGET.blocks[bi].cols
            irreducible = p[k][bi] ** 2 * (noise + resid[n_rows:])
            np.testing.assert_allclose(np.einsum("ij,ij->i", flat, flat), terms[k][:, cols].ravel() - irreducible, rtol=1e-8)


def test_an_inner_kind_without_a_joint_posterior_gives_none(setup, monkeypatch):
    model, frames = setup
    monkeypatch.setattr(model.models[0], "posterior_factors", lambda fr: None)
    assert model.level_posterior_factors(frames[40:]) is None


def test_affine_levels_have_no_factors_and_scale_the_level_below():
    frames = molecules(12, 36)
    calc = label_frames(frames[:30], "alpha", "sym2", "structure")
    rng = np.random.default_rng(3)
    exp = []
    for a in calc:
        a.info["level"] = "dft"
        b = a.copy()
        y = 1.3 * np.asarray(a.info["alpha"]).reshape(3, 3) + rng.normal(0, 0.05, (3, 3))
        b.info["alpha"], b.info["level"] = ((y + y.T) / 2).ravel(), "exp"
        exp.append(b)
    model = fit_model(multifidelity_kind("level", ["dft", "exp"], "exp", affine=["exp"]), TARGET, load_dataset(calc + exp, TARGET),
                      CONFIG, seed=0)
    got = model.level_posterior_factors(frames[30:])
    assert len(got) == 2 and got[1] is None
    own = model.models[0].posterior_factors(frames[30:])
    rho = model.calibrations[1].rho
    assert abs(rho[0] - 1.3) < 0.05
    for (r, s2), (r0, s20), bi in zip(got[0], own, model.models[0].posterior_blocks()):
        np.testing.assert_allclose(r, rho[bi] * r0, rtol=1e-12)
        assert s2 == pytest.approx(rho[bi] ** 2 * s20, rel=1e-12)
