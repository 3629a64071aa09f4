"""Per-level uncertainty calibration and target-level early stopping of the nn-multifidelity kind: on two
levels whose label noise differs tenfold, each level's factor (its own shrunk towards the pooled one, the
shrinkage leaving such different levels nearly their own) gives held-out z-scores of RMS near 1 where the
pooled factor does not; a level whose factor rests on 2 validation structures gets less weight on its own
data than one with 8, and one without validation structures the pooled factor; model files keep the
factors and weights (files without them load with the pooled factor); the std stays O(3)-equivariant;
early stopping can watch the target level alone. The shrinkage itself: tests/nn/test_fidelity_shrinkage.py."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from core._synth import cartesian_operator, label_frames, molecules, random_rotation, transform_frames
from psilearn.data import load_dataset
from psilearn.errors import ConfigError
from psilearn.models import load
from psilearn.models._torch.fidelity_heads import FidelityLoss
from psilearn.models._torch.graph import collate
from psilearn.models.io import write_model
from psilearn.models.nn.multifidelity import nn_heads_kind
from psilearn.targets import Target

from .test_fidelity_heads import heads, two_levels

NOISE = {"lo": 0.3, "hi": 3.0}  # label noise (std) of each level: the expensive level is the noisy one here
ELEMENT_VALUE = np.zeros(9)
ELEMENT_VALUE[[1, 6, 8]] = (1.0, 3.0, 5.0)


def noisy(frames, level: str, seed: int) -> list:
    """A scalar label per structure: a per-element sum + 0.03 x a smooth geometric scalar + the level's Gaussian noise."""
    rng = np.random.default_rng(seed)
    out = label_frames(frames, "y", "scalar", "structure")
    for a in out:
        exact = ELEMENT_VALUE[a.numbers].sum() + 0.03 * float(np.ravel(a.info["y"])[0])
        a.info["y"] = np.array([exact + NOISE[level] * rng.normal()])
        a.info["level"] = level
    return out


def rms_z(model, frames, level: str, pooled: bool = False) -> float:
    """RMS of error/std of ``level``'s readout on ``frames`` against their labels (pooled: with the pooled factor)."""
    own = model.level_alpha2
    model.level_alpha2 = None if pooled else own  # None: the pooled factor, as for files written before the per-level one
    try:
        p = model.predict(frames, fidelity=level)
    finally:
        model.level_alpha2 = own
    ref = np.array([a.info["y"] for a in frames]).reshape(p.values.shape)
    return float(np.sqrt(np.mean(((p.values - ref) / p.std) ** 2)))


_cache: dict = {}


def noisy_model():
    """60 structures per level, half of them for validation (30 per level: each its own factor)."""
    if not _cache:
        frames = molecules(31, 320)
        train = noisy(frames[:60], "lo", 1) + noisy(frames[60:120], "hi", 2)
        target = Target("y")
        model = heads(target, train=dict(dtype="float64", epochs=20, batch_size=8, val_fraction=0.5, patience=100))
        _cache["model"] = model.fit(load_dataset(train, target))
        _cache["test"] = {"lo": noisy(frames[120:220], "lo", 3), "hi": noisy(frames[220:320], "hi", 4)}
    return _cache["model"], _cache["test"]


def test_each_level_is_calibrated_where_the_pooled_factor_is_not():
    model, test = noisy_model()
    assert model.level_calibration == ["shrunk", "shrunk"]
    a2 = model.level_alpha2[:, 0]
    assert a2[1] > 10 * a2[0]  # 100x in noise variance, less in the factor (model error, level scales): still separated
    assert np.all(model.level_weight > 0.9), model.level_weight  # levels this different keep nearly their own factor
    z = {lv: (rms_z(model, test[lv], lv), rms_z(model, test[lv], lv, pooled=True)) for lv in ("lo", "hi")}
    print("held-out RMS z (per level, pooled):", z)  # measured: lo (1.04, 0.20), hi (1.08, 1.51); own factors unshrunk: 1.14, 1.07
    for lv, (own, _) in z.items():
        assert 0.7 < own < 1.4, (lv, own)
    # the pooled factor is dominated by the noisy level: far too large for the clean one, too small for the noisy one
    assert z["lo"][1] < 0.5 and z["hi"][1] > 1.2, z
    rec = {r["level"]: r for r in model.metadata["multifidelity"]["per_level"]}
    assert rec["hi"]["calibration"]["factor"] == "shrunk" and rec["hi"]["calibration"]["alpha2"] == pytest.approx(list(model.level_alpha2[1]))
    assert rec["hi"]["calibration"]["weight_own"] == pytest.approx(list(model.level_weight[1]))
    assert rec["hi"]["calibration"]["dof"] == [30.0]  # 30 validation structures x 1 component
    assert rec["hi"]["calibration"]["rms_z"] == pytest.approx(1.0, rel=0.35)  # in-sample on its validation structures


def test_file_round_trip_and_files_without_level_factors(tmp_path):
    model, test = noisy_model()
    frames = test["hi"][:6]
    model.save(tmp_path / "m.model")
    back = load(tmp_path / "m.model")
    np.testing.assert_array_equal(back.level_alpha2, model.level_alpha2)
    assert back.level_calibration == model.level_calibration
    np.testing.assert_array_equal(back.level_weight, model.level_weight)
    for lv in ("lo", "hi"):
        a, b = model.predict(frames, fidelity=lv), back.predict(frames, fidelity=lv)
        assert np.array_equal(a.values, b.values) and np.array_equal(a.std, b.std)
    # a file written before the shrinkage: per-level factors without weights; it predicts with its stored factors
    meta, arrays = model.to_state()
    del arrays["fidelity/weight"]
    write_model(tmp_path / "unshrunk.model", {"model": model.kind, "target": model.target.to_dict(), **meta, "training": model.metadata}, arrays)
    unshrunk = load(tmp_path / "unshrunk.model")
    assert unshrunk.level_weight is None
    np.testing.assert_array_equal(unshrunk.level_alpha2, model.level_alpha2)
    np.testing.assert_array_equal(unshrunk.predict(frames, fidelity="hi").std, model.predict(frames, fidelity="hi").std)
    # a file written before the per-level factors: no fidelity/alpha2 array, no level_calibration entry
    meta, arrays = model.to_state()
    del arrays["fidelity/alpha2"], arrays["fidelity/weight"], meta["level_calibration"]
    write_model(tmp_path / "old.model", {"model": model.kind, "target": model.target.to_dict(), **meta, "training": model.metadata}, arrays)
    old = load(tmp_path / "old.model")
    assert old.level_alpha2 is None and old.level_weight is None
    pooled_std = np.sqrt(model.llpr.alpha2[0] * old.llpr.raw_variance(_features(old, frames, "hi"), old.blocks)[:, 0])
    np.testing.assert_allclose(old.predict(frames, fidelity="hi").std[:, 0], pooled_std, rtol=1e-9)
    own = model.predict(frames, fidelity="hi").std[:, 0]
    np.testing.assert_allclose(own, pooled_std * np.sqrt(model.level_alpha2[1, 0] / model.llpr.alpha2[0]), rtol=1e-9)
    assert not np.allclose(own, pooled_std, rtol=0.1)


def _features(model, frames, level: str) -> dict:
    from psilearn.models._torch import uncertainty as unc

    graphs = model._graphs(frames)
    for g in graphs:
        g.fidelity = model.levels.index(level)
    t = model.target
    return unc.last_layer_features(model.nets[0], graphs, t.per, t.pool, sorted(model.llpr.inv), 32, "cpu", torch.float64)


def test_a_level_with_few_validation_structures_gets_less_weight_on_its_own_data(caplog):
    target = Target("y", tensor="i")
    frames = two_levels(molecules(7, 40), "y", "vector", range(32), range(32, 40))  # validation (1/4): 8 lo, 2 hi
    with caplog.at_level(logging.INFO, logger="psilearn"):
        model = heads(target, train=dict(dtype="float64")).fit(load_dataset(frames, target))
    rec = {r["level"]: r["calibration"] for r in model.metadata["multifidelity"]["per_level"]}
    assert rec["lo"]["dof"] == [24.0] and rec["hi"]["dof"] == [6.0]  # structures x 3 components
    assert model.level_calibration == ["shrunk", "shrunk"]
    w = model.level_weight[:, 0]
    assert 0 < w[1] < w[0] <= 1
    # the factor is the weighted geometric mean of the level's own and the pooled one
    for lv, k in (("lo", 0), ("hi", 1)):
        own, pooled = rec[lv]["alpha2_own"][0], rec[lv]["alpha2_pooled"][0]
        assert model.level_alpha2[k, 0] == pytest.approx(own ** w[k] * pooled ** (1 - w[k]), rel=1e-10)
        assert pooled == pytest.approx(float(model.llpr.alpha2[0]))
    said = [r.getMessage() for r in caplog.records if "shrunk towards the pooled one" in r.getMessage()]
    assert len(said) == 1 and "hi [" in said[0]


def test_std_is_the_diagonal_of_an_equivariant_covariance_at_every_level():
    target = Target("y", tensor="ij=ji")
    frames = two_levels(molecules(9, 44), "y", "sym2", range(24), range(24, 44))  # validation (1/4): 6 lo, 5 hi
    model = heads(target, train=dict(dtype="float64")).fit(load_dataset(frames, target))
    assert model.level_calibration == ["shrunk", "shrunk"]
    test = molecules(10, 3)
    rng = np.random.default_rng(5)
    for lv in model.levels:
        ref = model.predict(test, fidelity=lv, return_cov=True)
        np.testing.assert_allclose(ref.std**2, np.diagonal(ref.cov, axis1=1, axis2=2), rtol=1e-10)
        for q in (random_rotation(rng), -random_rotation(rng)):
            m = cartesian_operator(q, 2)
            out = model.predict(transform_frames(test, q), fidelity=lv, return_cov=True)
            rotated = m @ ref.cov @ m.T
            np.testing.assert_allclose(out.cov, rotated, rtol=1e-8, atol=1e-10 * np.abs(ref.cov).max())
            np.testing.assert_allclose(out.std**2, np.diagonal(rotated, axis1=1, axis2=2), rtol=1e-8, atol=1e-10 * np.abs(ref.cov).max())


def test_early_stopping_on_the_target_level(caplog):
    target = Target("y", tensor="i")
    frames = two_levels(molecules(11, 24), "y", "vector", range(16), range(16, 24))
    data = load_dataset(frames, target)
    model = heads(target, train=dict(dtype="float64", epochs=2), net=None)
    model.fidelity_config.early_stopping = "target"
    model.fit(data)
    loss = model._loss(np.ones((2, 3)), np.ones(3) / 3)
    assert loss.watch == 1
    # evaluation scores the watched level's samples only; training every sample
    graphs = model._graphs(data.frames)
    y = torch.as_tensor(target.to_irreps(data.values))
    batch = (collate(graphs, "cpu", torch.float64), y, None)
    net = model.nets[0]
    net.train()
    all_terms = loss.terms(net, batch)
    net.eval()
    watched = loss.terms(net, batch)
    assert len(all_terms) == 24 and len(watched) == 8
    torch.testing.assert_close(watched, FidelityLoss("structure", "sum", np.ones((2, 3)), np.ones(3) / 3).terms(net, batch)[16:])
    # the same training (watching changes the validation loss only), another validation loss
    both = heads(target, train=dict(dtype="float64", epochs=2)).fit(data)
    h_target, h_all = model.metadata["history"], both.metadata["history"]
    assert [h["train_loss"] for h in h_target] == pytest.approx([h["train_loss"] for h in h_all], rel=1e-12)
    assert all(abs(a["val_loss"] - b["val_loss"]) > 1e-6 * b["val_loss"] for a, b in zip(h_target, h_all))
    # no validation structure at the target level: all levels, said in the log
    few = two_levels(molecules(11, 24), "y", "vector", range(16), [16])
    other = heads(target, train=dict(dtype="float64", epochs=1))
    other.fidelity_config.early_stopping = "target"
    with caplog.at_level(logging.WARNING, logger="psilearn"):
        other.fit(load_dataset(few, target))
    assert other._loss(np.ones((2, 3)), np.ones(3)).watch is None
    # ... and its factor is the pooled one (no own data at all: weight 0)
    assert other.level_calibration == ["shrunk", "pooled"] and other.level_weight[1, 0] == 0.0
    np.testing.assert_array_equal(other.level_alpha2[1], other.llpr.alpha2)
    # the fallback level predicts with the pooled factor: the same std as with no per-level factors at all
    test, own = molecules(8, 3), other.level_alpha2
    with_pooled = other.predict(test, fidelity="hi").std
    other.level_alpha2 = None
    np.testing.assert_allclose(other.predict(test, fidelity="hi").std, with_pooled, rtol=1e-12)
    other.level_alpha2 = own
    assert any("early stopping watches all levels" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigError, match="early_stopping"):
        nn_heads_kind("level", None, "hi").build(target, {"nn_fidelity": {"early_stopping": "hi"}})
