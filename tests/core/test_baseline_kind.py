"""The `baseline` model kind: per-element composition fit of the invariant part, everything else zero."""

from __future__ import annotations

from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms

from psilearn.data import DataError, load_dataset
from psilearn.models import load
from psilearn.models.baseline import BaselineModel, fit_baseline
from psilearn.models.registry import MODEL_KINDS, model_class
from psilearn.targets import Target

from ._synth import label_frames, molecules, random_rotation, transform_frames

DEMO = Path(__file__).resolve().parents[2] / "src" / "psilearn" / "demo_data" / "molecules.xyz"
C = {1: 0.35, 6: -0.8, 8: 1.3}  # known per-element constants


def _with(frames, key, per="structure", pool="sum", noise=0.0, seed=0):
    """Copies of ``frames`` labelled with the exact composition law (plus optional noise)."""
    rng = np.random.default_rng(seed)
    out = []
    for a in frames:
        b = a.copy()
        c = np.array([C[z] for z in a.numbers])
        if per == "atom":
            b.arrays[key] = c + noise * rng.normal(size=len(c))
        else:
            b.info[key] = float(c.sum() if pool == "sum" else c.mean()) + noise * rng.normal()
        out.append(b)
    return out


def _coef(model, block=0) -> dict[int, float]:
    return {z: float(c) for z, c in zip(model.species, model.coef[:, block])}


# ---- registry ----------------------------------------------------------------------------------
def test_found_through_the_registry():
    assert "baseline" in MODEL_KINDS
    assert model_class("baseline") is BaselineModel
    assert BaselineModel.kind == "baseline" and BaselineModel.config_sections == ("model",)


# ---- exact recovery ------------------------------------------------------------------------------
@pytest.mark.parametrize("per,pool", [("structure", "sum"), ("structure", "mean"), ("atom", "sum")])
def test_recovers_known_per_element_constants(per, pool):
    target = Target("y", per=per, pool=pool)
    model = fit_baseline(target, load_dataset(_with(molecules(0, 30), "y", per, pool), target))
    for z, c in C.items():
        assert _coef(model)[z] == pytest.approx(c, rel=1e-6)
    new = _with(molecules(1, 8), "y", per, pool)
    ref = load_dataset(new, target).values
    pred = model.predict(new)
    np.testing.assert_allclose(pred.values, ref, rtol=1e-6, atol=1e-8)
    assert model.block_std[0] < 1e-6 and np.all(pred.std < 1e-6)
    held = model.metadata["heldout_metrics"]
    assert held["cartesian"]["rmse"] < 1e-6 and held["method"].startswith("5-fold")


def test_residual_std_from_the_training_fit():
    target = Target("y")
    ds = load_dataset(_with(molecules(0, 40), "y", noise=0.1), target)
    model = fit_baseline(target, ds)
    resid = ds.values[:, 0] - model.predict(ds.frames).values[:, 0]
    assert model.block_std[0] == pytest.approx(np.sqrt(np.mean(resid**2)))
    np.testing.assert_allclose(model.predict(molecules(2, 3)).std, model.block_std[0])
    assert 0.05 < model.metadata["heldout_metrics"]["cartesian"]["rmse"] < 0.2


def test_linearly_dependent_compositions_are_fitted():
    """Only H2O: 2 c_H + c_O is determined, the tiny ridge picks a split; predictions stay exact."""
    rng = np.random.default_rng(3)
    frames = [Atoms("H2O", positions=rng.normal(size=(3, 3))) for _ in range(10)]
    target = Target("y")
    model = fit_baseline(target, load_dataset(_with(frames, "y"), target))
    c = _coef(model)
    assert 2 * c[1] + c[8] == pytest.approx(2 * C[1] + C[8], rel=1e-6)
    assert np.all(np.isfinite(model.coef))


# ---- tensors: isotropic, O(3) ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def alpha_model():
    frames = label_frames(molecules(0, 40), "alpha", "sym2", "structure")
    for a in frames:  # add a known isotropic composition part to the geometric tensor
        a.info["alpha"] = a.info["alpha"] + 3.0 * sum(C[z] for z in a.numbers) * np.eye(3).ravel()
    target = Target("alpha", tensor="ij=ji")
    ds = load_dataset(frames, target)
    return fit_baseline(target, ds), ds


def test_tensor_invariant_part_is_fitted_and_prediction_is_isotropic(alpha_model):
    model, ds = alpha_model
    irreps = model.target.to_irreps(ds.values)
    design = np.array([[np.sum(a.numbers == z) for z in model.species] for a in ds.frames], float)
    expected = np.linalg.lstsq(design, irreps[:, 0], rcond=None)[0]
    np.testing.assert_allclose(model.coef[:, 0], expected, rtol=1e-6)
    assert np.all(model.coef[:, 1] == 0)  # the 2e block is not fitted
    pred = model.predict(ds.frames)
    t = pred.values.reshape(-1, 3, 3)
    iso = np.einsum("nii->n", t) / 3
    np.testing.assert_allclose(t, iso[:, None, None] * np.eye(3), atol=1e-12 * np.abs(iso).max())
    # block std: RMS residual of 0e, RMS of the labels in 2e (predicted as zero)
    assert model.block_std[1] == pytest.approx(np.sqrt(np.mean(irreps[:, 1:6] ** 2)))
    assert model.block_std[0] == pytest.approx(np.sqrt(np.mean((irreps[:, 0] - pred.irreps[:, 0]) ** 2)))
    cov = model.predict(ds.frames[:2], return_cov=True).cov
    np.testing.assert_allclose(np.sqrt(np.einsum("nkk->nk", cov)), pred.std[:2], rtol=1e-12)


def test_tensor_prediction_is_o3_permutation_and_translation_invariant(alpha_model):
    model, _ = alpha_model
    frames = molecules(5, 6)
    ref = model.predict(frames)
    rng = np.random.default_rng(7)
    q = random_rotation(rng) * -1  # a rotation times the inversion
    moved = transform_frames(frames, q, shift=(1.0, -2.0, 0.5))
    shuffled = [a[rng.permutation(len(a))] for a in moved]
    for other in (moved, shuffled):
        p = model.predict(other)
        # isotropic tensors are unchanged by Q (x) Q: equivariance and invariance coincide
        np.testing.assert_allclose(p.values, ref.values, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(p.std, ref.std, rtol=1e-12)


def test_non_invariant_targets_are_predicted_as_zero():
    target = Target("mu", tensor="i")
    ds = load_dataset(label_frames(molecules(0, 20), "mu", "vector", "structure"), target)
    model = fit_baseline(target, ds)
    pred = model.predict(molecules(4, 3))
    assert np.all(pred.values == 0)
    np.testing.assert_allclose(pred.std, np.sqrt(np.mean(ds.values**2)))


# ---- persistence, CLI, refusals ---------------------------------------------------------------------
def test_save_load_round_trip_is_identical(alpha_model, tmp_path):
    model, ds = alpha_model
    model.save(tmp_path / "m")
    back = load(tmp_path / "m")
    assert isinstance(back, BaselineModel) and back.species == model.species
    assert back.metadata == model.metadata and back.config == model.config
    a, b = model.predict(ds.frames, return_cov=True), back.predict(ds.frames, return_cov=True)
    for x, y in [(a.values, b.values), (a.std, b.std), (a.irreps, b.irreps), (a.cov, b.cov)]:
        np.testing.assert_array_equal(x, y)


def test_cli_fit_predict_evaluate(tmp_path, capsys):
    from psilearn.cli.main import main

    m, out = tmp_path / "base.model", tmp_path / "pred.xyz"
    assert main(["fit", f"{DEMO}@::5", "--target", "alpha", "--tensor", "ij=ji", "--model", "baseline", "-o", str(m)]) == 0
    assert "held-out estimate (5-fold" in capsys.readouterr().out
    assert load(m).kind == "baseline"
    assert main(["predict", str(m), f"{DEMO}@2::10", "-o", str(out)]) == 0
    frames = ase.io.read(out, ":")
    t = np.array([a.info["alpha"] for a in frames]).reshape(-1, 3, 3)
    np.testing.assert_allclose(t - np.einsum("nii->n", t)[:, None, None] / 3 * np.eye(3), 0, atol=1e-10)
    assert all("alpha_std" in a.info and "alpha_reference" in a.info for a in frames)
    assert main(["evaluate", str(m), f"{DEMO}@2::10"]) == 0
    assert "Cartesian" in capsys.readouterr().out


def test_unseen_element_is_refused(alpha_model):
    model, _ = alpha_model
    with pytest.raises(DataError, match="N never seen in training"):
        model.predict(Atoms("NH3", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]))


def test_spectrum_targets_and_bad_options_are_refused():
    with pytest.raises(ValueError, match="spectrum"):
        BaselineModel.build(Target("dos", grid=(0.0, 1.0, 2.0)), {})
    with pytest.raises(ValueError, match="unknown option 'zeta'"):
        BaselineModel.build(Target("y"), {"model": {"zeta": 2}})
    with pytest.raises(ValueError, match="ridge"):
        BaselineModel.build(Target("y"), {"model": {"ridge": -1}})
    with pytest.raises(ValueError, match="section 'soap' is not used by model kind 'baseline'"):
        BaselineModel.build(Target("y"), {"soap": {"cutoff": 4.0}, "model": {}})
    assert BaselineModel.build(Target("y"), {"model": {"ridge": "1e-6"}}).config.ridge == 1e-6
