"""The `delta` kind (models/fidelity): Δ-learning from a baseline label carried by every structure."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest

from psilearn.data import DataError, load_dataset
from psilearn.models import load
from psilearn.models.factory import fit_model
from psilearn.models.fidelity import DeltaModel, delta_kind
from psilearn.models.registry import model_class
from psilearn.targets import Target

from ._synth import SMALL_MODEL, SMALL_SOAP, cartesian_operator, label_frames, molecules, random_rotation, transform_frames

CFG = {"soap": SMALL_SOAP, "model": SMALL_MODEL}
C = {1: 0.35, 6: -0.8, 8: 1.3}


def _zero_baseline(frames, key="y0", per="structure", size=1):
    for a in frames:
        if per == "structure":
            a.info[key] = 0.0 if size == 1 else np.zeros(size)
        else:
            a.arrays[key] = np.zeros(len(a)) if size == 1 else np.zeros((len(a), size))
    return frames


def _shifted(frames, per="structure"):
    """baseline ``b`` = a geometric label; target ``y = b + sum of per-element constants``."""
    out = label_frames(frames, "b", "scalar", per)
    for a in out:
        c = np.array([C[z] for z in a.numbers])
        if per == "structure":
            a.info["y"] = a.info["b"] + c.sum()
        else:
            a.arrays["y"] = a.arrays["b"] + c
    return out


def test_registered_and_configured_through_the_registry():
    assert model_class("delta") is DeltaModel and DeltaModel.kind == "delta"
    cls = delta_kind("b", "baseline")
    assert model_class(cls) is cls and cls.kind == "delta" and cls.config_sections == ("model",)
    assert delta_kind("b", "nn").config_sections == ("nn", "nn_train") and delta_kind("b", "nn").iterative
    with pytest.raises(ValueError, match="needs a baseline label"):
        DeltaModel.build(Target("y"), {})


def test_zero_baseline_equals_the_plain_inner_model():
    frames = _zero_baseline(label_frames(molecules(0, 30), "y", "scalar", "structure"))
    target = Target("y")
    ds = load_dataset(frames, target)
    plain = fit_model("sagpr", target, ds, CFG, seed=0)
    delta = fit_model(delta_kind("y0"), target, ds, CFG, seed=0)
    new = _zero_baseline(molecules(1, 6))
    p, q = plain.predict(new, return_cov=True), delta.predict(new, return_cov=True)
    for a, b in [(p.values, q.values), (p.std, q.std), (p.irreps, q.irreps), (p.cov, q.cov)]:
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(q.baseline, 0.0)
    np.testing.assert_allclose(q.correction, q.values, atol=1e-12)


@pytest.mark.parametrize("per", ["structure", "atom"])
def test_recovers_a_known_correction_exactly(per):
    """y = b + per-element constants: the baseline kind learns the constants, the sum is exact."""
    target = Target("y", per=per)
    model = fit_model(delta_kind("b", "baseline"), target, load_dataset(_shifted(molecules(0, 25), per), target),
                      {"model": {"ridge": 0}})
    new = _shifted(molecules(1, 6), per)
    ref = load_dataset(new, target).values
    pred = model.predict(new)
    np.testing.assert_allclose(pred.values, ref, rtol=1e-8, atol=1e-8)
    assert np.all(pred.std < 1e-6)
    base = load_dataset(new, Target("b", per=per)).values
    np.testing.assert_allclose(pred.baseline, base, atol=0)
    np.testing.assert_allclose(pred.correction, ref - base, atol=1e-8)
    assert model.metadata["delta"] == {**model.metadata["delta"], "baseline_key": "b", "inner_kind": "baseline"}


@pytest.fixture(scope="module")
def alpha_delta():
    """alpha (ij=ji) with a baseline of the same symmetry: a scaled, shifted version of it."""
    frames = label_frames(molecules(0, 30), "alpha", "sym2", "structure")
    for a in frames:
        a.info["alpha_lo"] = 0.7 * a.info["alpha"] + 0.3 * np.eye(3).ravel()
    target = Target("alpha", tensor="ij=ji")
    return fit_model(delta_kind("alpha_lo"), target, load_dataset(frames, target), CFG, seed=0)


def test_tensor_prediction_is_equivariant(alpha_delta):
    frames = label_frames(molecules(5, 5), "alpha", "sym2", "structure")
    for a in frames:
        a.info["alpha_lo"] = 0.5 * a.info["alpha"] + 0.2 * np.eye(3).ravel()
    ref = alpha_delta.predict(frames)
    q = -random_rotation(np.random.default_rng(3))  # a rotation times the inversion
    op = cartesian_operator(q, 2)
    moved = transform_frames(frames, q, shift=(0.5, -1.0, 2.0))
    for a, b in zip(moved, frames):
        a.info["alpha_lo"] = op @ b.info["alpha_lo"]  # the baseline label rotates with the structure
    p = alpha_delta.predict(moved)
    scale = np.abs(ref.values).max()
    np.testing.assert_allclose(p.values, ref.values @ op.T, atol=1e-8 * scale)
    np.testing.assert_allclose(p.correction, ref.correction @ op.T, atol=1e-8 * scale)


def test_save_load_round_trip(alpha_delta, tmp_path):
    alpha_delta.save(tmp_path / "d")
    back = load(tmp_path / "d")
    assert isinstance(back, DeltaModel) and back.baseline == "alpha_lo" and back.inner.kind == "sagpr"
    assert back.metadata == alpha_delta.metadata and back.inner.metadata == alpha_delta.inner.metadata
    frames = label_frames(molecules(6, 4), "alpha", "sym2", "structure")
    for a in frames:
        a.info["alpha_lo"] = a.info["alpha"]
    a, b = alpha_delta.predict(frames, return_cov=True), back.predict(frames, return_cov=True)
    np.testing.assert_array_equal(a.baseline, b.baseline)
    np.testing.assert_allclose(b.values, a.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.std, a.std, rtol=1e-4)  # sagpr stores its predictive-variance factor in float32
    import json

    meta = json.loads((tmp_path / "d" / "model.json").read_text())
    assert meta["model"] == "delta" and meta["inner_kind"] == "sagpr" and "inner" in meta
    assert all(k.startswith("inner/") for k in meta["integrity"]["arrays_sha256"])


def test_missing_or_misshapen_baseline_is_a_clear_error(alpha_delta):
    frames = label_frames(molecules(2, 3), "alpha", "sym2", "structure")
    ase_src = [a.copy() for a in frames]
    for i, a in enumerate(ase_src):
        a.info["source"] = f"test.xyz:{i}"
        a.info["alpha_lo"] = a.info["alpha"]
    del ase_src[1].info["alpha_lo"]
    with pytest.raises(DataError, match=r"^test\.xyz, frame 1: no label 'alpha_lo' .*baseline of the delta model of 'alpha'"):
        alpha_delta.predict(ase_src)
    ase_src[1].info["alpha_lo"] = np.zeros(3)
    with pytest.raises(DataError, match=r"test\.xyz, frame 1: label 'alpha_lo' has 3 numbers, expected 9"):
        alpha_delta.predict(ase_src)
    target = Target("alpha", tensor="ij=ji")
    with pytest.raises(DataError, match=r"frame 0: no label 'alpha_lo'"):
        fit_model(delta_kind("alpha_lo"), target, load_dataset(frames, target), CFG)


@pytest.mark.parametrize("inner", ["qeq", "qeq-nn", "delta"])
def test_unsupported_inner_kinds_are_refused(inner):
    with pytest.raises(ValueError, match=f"model kind '{inner}' cannot learn a correction"):
        delta_kind("b", inner)


# ---- CLI ---------------------------------------------------------------------------------------------
def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_cli_fit_predict_round_trip(tmp_path, capsys):
    from psilearn.cli.main import main

    train, test = tmp_path / "train.xyz", tmp_path / "test.xyz"
    ase.io.write(train, _shifted(molecules(0, 20)))
    new = _shifted(molecules(1, 5))
    ase.io.write(test, [_drop(a, "y") for a in new])
    m, out = tmp_path / "d.model", tmp_path / "pred.xyz"
    assert main(["fit", str(train), "--target", "y", "--baseline", "b", "--model", "baseline", "-o", str(m)]) == 0
    assert "baseline learns y - b" in capsys.readouterr().err
    assert load(m).kind == "delta"
    assert main(["predict", str(m), str(test), "-o", str(out)]) == 0
    got = ase.io.read(out, ":")
    for a, ref in zip(got, new):
        assert a.info["y"] == pytest.approx(ref.info["y"], abs=1e-6)  # the baseline kind's default ridge
        assert a.info["y_baseline"] == pytest.approx(ref.info["b"], abs=0)
        assert a.info["y_correction"] == pytest.approx(ref.info["y"] - ref.info["b"], abs=1e-6)
        assert a.info["y"] == a.info["y_baseline"] + a.info["y_correction"]
        assert "y_std" in a.info
    # predict without the baseline in the input: one line naming file, frame and key
    bare = tmp_path / "bare.xyz"
    ase.io.write(bare, [_drop(a, "b") for a in new])
    assert main(["predict", str(m), str(bare), "-o", str(tmp_path / "p2.xyz")]) == 2
    assert "bare.xyz, frame 0: no label 'b'" in _error_line(capsys)
    assert not (tmp_path / "p2.xyz").exists()


def _drop(a, key):
    b = a.copy()
    b.info.pop(key, None)
    return b


def test_cli_errors(tmp_path, capsys):
    from psilearn.cli.main import main

    train = tmp_path / "train.xyz"
    ase.io.write(train, [_drop(a, "b") for a in _shifted(molecules(0, 6))])
    m = str(tmp_path / "m")
    assert main(["fit", str(train), "--target", "y", "--baseline", "b", "--model", "baseline", "-o", m]) == 2
    assert "train.xyz, frame 0: no label 'b' (labels present: y) (the baseline of the delta model of 'y')" in _error_line(capsys)
    assert main(["fit", str(train), "--target", "y", "--baseline", "y", "--model", "spectrum", "-o", m]) == 2
    assert "--baseline with --model spectrum: spectra are fitted by psilearn fit-spectrum" in _error_line(capsys)
    assert main(["fit", str(train), "--target", "y", "--baseline", "b", "--long-range", "qeq", "-o", m]) == 2
    assert "--baseline cannot be combined with --long-range" in _error_line(capsys)
    assert main(["fit", str(train), "--target", "y", "--model", "delta", "-o", m]) == 2
    assert "--model delta: give the baseline label with --baseline KEY" in _error_line(capsys)
    cfg = tmp_path / "o.yaml"
    cfg.write_text("soap: {cutoff: 4.0}\n")
    assert main(["fit", str(train), "--target", "y", "--baseline", "b", "--model", "baseline", "--config", str(cfg), "-o", m]) == 2
    assert "section 'soap' is not used by model kind 'baseline'" in _error_line(capsys)
    for a in (frames := ase.io.read(train, ":")):
        a.info["b"] = np.zeros(3)
    ase.io.write(train, frames)
    assert main(["fit", str(train), "--target", "y", "--baseline", "b", "--model", "baseline", "-o", m]) == 2
    assert "label 'b' has 3 numbers, expected 1 for a scalar" in _error_line(capsys)
