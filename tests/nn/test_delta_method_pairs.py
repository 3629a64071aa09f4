"""`psilearn fit --per pair --baseline-method XC/BASIS` (issue 14): psilearn's jcoupling labeler computes the
baseline J (HF/STO-3G here) on the target's pairs at fit and at predict time through the label store; equal
to the same fit on frames labelled beforehand (--baseline KEY); pairs from the file or the pair rule; the
store is reused; the method and its hash are recorded and checked; the sum rotates as J_AB -> R J_AB R^T;
labels the labeler does not produce, wrong ranks or units and pairs beyond its cutoff are one-line refusals
before any labelling."""

from __future__ import annotations

import dataclasses
import json

import ase.io
import numpy as np
import pytest
from ase.build import molecule
from scipy.spatial.transform import Rotation

from psilearn.cli.main import main
from psilearn.data import DataError, load_dataset
from psilearn.errors import ConfigError
from psilearn.label import make_labeler
from psilearn.label.store import LabelStore
from psilearn.models import load
from psilearn.models.factory import fit_model
from psilearn.models.fidelity import delta_kind, delta_method_kind
from psilearn.targets import Target

METHOD = "hf/sto-3g"
KEY = "jcoupling"
TARGET = Target(KEY, per="pair", tensor="ij", units="Hz")


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def frames():
    """Perturbed waters and methanes: a synthetic 'high level' J = 1.3 J(HF/STO-3G) + 2 Hz on the labeler's
    pairs (KEY), and the HF/STO-3G J itself as a label of the file (jb, jb_pairs) for the --baseline reference."""
    rng = np.random.default_rng(3)
    lab = make_labeler(METHOD, "jcoupling")
    out = []
    for k in range(11):
        a = molecule(("H2O", "CH4")[k % 2])
        a.positions += rng.normal(scale=0.04, size=a.positions.shape)
        r = lab.label(a).info
        b = a.copy()
        b.info[f"{KEY}_pairs"] = b.info["jb_pairs"] = np.asarray(r["jcoupling_pairs"])
        b.info["jb"] = np.asarray(r["jcoupling"])
        b.info[KEY] = 1.3 * b.info["jb"] + 2.0
        out.append(b)
    return out


def _bare(frames):
    """Copies without any label: what predict gets."""
    out = []
    for a in frames:
        b = a.copy()
        b.info = {}
        out.append(b)
    return out


def _on(pairs: np.ndarray, a, key: str = "jb") -> np.ndarray:
    """The label ``key`` of ``a`` on ``pairs`` (rows of 9)."""
    have = [tuple(p) for p in np.asarray(a.info[f"{key}_pairs"]).reshape(-1, 2)]
    return np.asarray(a.info[key]).reshape(-1, 9)[[have.index(tuple(p)) for p in pairs]]


def test_method_baseline_equals_the_labelled_baseline_and_reuses_the_store(frames, tmp_path):
    db = tmp_path / "b.db"
    data = load_dataset(frames[:8], TARGET)
    model = fit_model(delta_method_kind(METHOD, "baseline", db=db), TARGET, data, {}, seed=0)
    ref = fit_model(delta_kind("jb", "baseline"), TARGET, data, {}, seed=0)
    assert model.last_baseline_summary.done == 8
    assert model.metadata["delta"]["baseline_method"]["method_hash"] == make_labeler(METHOD, "jcoupling").method_hash()
    test = _bare(frames[8:])  # no pair list: the pair rule of the fit decides which pairs
    pred = model.predict(test)
    assert model.last_baseline_summary.done == 3 and LabelStore(db).count(label_status="ok") == 11
    assert sum(len(p) for p in pred.pairs) > 0
    np.testing.assert_allclose(pred.values, pred.baseline + pred.correction, atol=1e-12)
    for k, (a, p) in enumerate(zip(frames[8:], pred.pairs)):
        rows = slice(sum(len(q) for q in pred.pairs[:k]), sum(len(q) for q in pred.pairs[: k + 1]))
        np.testing.assert_allclose(pred.baseline[rows], _on(p, a), atol=1e-6)  # the HF/STO-3G J computed at predict time
        with_b = a.copy()
        with_b.info["jb_pairs"], with_b.info["jb"] = p.ravel(), _on(p, a).ravel()
        with_b.info.pop(f"{KEY}_pairs")
        np.testing.assert_allclose(pred.values[rows], ref.predict([with_b]).values, atol=1e-6)  # = the --baseline KEY model
    again = model.predict(test)
    assert model.last_baseline_summary.done == 0 and model.last_baseline_summary.skipped == 3
    np.testing.assert_array_equal(again.values, pred.values)
    listed = model.predict(frames[8:9])  # a structure listing its pairs gets exactly those
    np.testing.assert_array_equal(listed.pairs[0], np.asarray(frames[8].info[f"{KEY}_pairs"]).reshape(-1, 2))


def test_changed_hash_and_pairs_beyond_the_labeler_are_refused_before_labelling(frames, tmp_path):
    model = fit_model(delta_method_kind(METHOD, "baseline", db=tmp_path / "b.db"), TARGET, load_dataset(frames[:8], TARGET), {}, seed=0)
    model.baseline_method = dataclasses.replace(model.baseline_method, method_hash="0" * 32)  # as after a PySCF upgrade
    model.baseline_db = tmp_path / "fresh.db"
    with pytest.raises(ConfigError, match="now hashes to .* refit the model"):
        model.predict(_bare(frames[8:9]))
    far = frames[0].copy()  # a water whose listed O-H pair is 4.6 A apart: beyond the labeler's 4 A cutoff
    far.positions[1] = far.positions[0] + [0.0, 0.0, 4.6]
    with pytest.raises(DataError, match=r"frame 0: pair \(0, 1\) is 4.600 A apart; the baseline method hf/sto-3g computes jcoupling only "
                                        r"within 4 A") as e:
        delta_method_kind(METHOD, "baseline", db=tmp_path / "far.db").check_baseline(load_dataset([far], TARGET))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "fresh.db").exists() and not (tmp_path / "far.db").exists()


@pytest.mark.parametrize("target, method, message", [
    (TARGET, "gfn2", "gfn2 cannot compute jcoupling"),
    (Target("bond_order", per="pair", units="Hz"), METHOD, "the target 'bond_order' has no labeler observable"),
    (Target(KEY, per="pair", units="Hz"), METHOD, "rank-2 value per pair, the target 'jcoupling' of rank 0; use --baseline-label jcoupling_iso"),
    (Target("jcoupling_iso", per="pair", tensor="ij", units="Hz"), METHOD, "rank-0 value per pair, the target 'jcoupling_iso' of rank 2; use "
     "--baseline-label jcoupling"),
    (Target(KEY, per="pair", tensor="ij", units="kHz"), METHOD, "is in 'kHz' but the baseline 'jcoupling' is in Hz"),
    (Target(KEY, per="atom", tensor="ij", units="Hz"), METHOD, "the label 'jcoupling' is per pair, the target 'jcoupling' per atom"),
    (Target(KEY, per="pair", tensor="ij", parity=-1, units="Hz"), METHOD, "is a true \\(polar\\) tensor, the target 'jcoupling' is declared pseudo"),
])
def test_refusals_name_the_reason(target, method, message):
    with pytest.raises(ConfigError, match=message) as e:
        delta_method_kind(method, "baseline").resolve_method(target)
    assert "\n" not in str(e.value)


def _rotated(a, rot):
    b = _bare([a])[0]
    b.positions = b.positions @ rot.T
    return b


def _rotates(turned: np.ndarray, values: np.ndarray, rot: np.ndarray) -> None:
    """``turned`` (P, 9) is R J R^T of ``values`` (P, 9), to the labeler's convergence."""
    want = np.einsum("ab,pbc,dc->pad", rot, values.reshape(-1, 3, 3), rot)
    np.testing.assert_allclose(turned.reshape(-1, 3, 3), want, atol=1e-3 * np.abs(want).max())


def test_nn_correction_and_sum_rotate_with_the_structure(frames, tmp_path):
    from .conftest import tiny_model

    model = delta_method_kind(METHOD, "nn", db=tmp_path / "b.db")(TARGET, tiny_model(TARGET, train={"dtype": "float64"}), "",
                                                                 baseline_method=METHOD, baseline_db=tmp_path / "b.db")
    model.fit(load_dataset(frames[:8], TARGET))
    rot = Rotation.random(random_state=2).as_matrix() * np.array([1, 1, -1])  # a rotation times a reflection
    pred = model.predict(_bare(frames[8:10]) + [_rotated(a, rot) for a in frames[8:10]])
    n = len(pred.pairs[0]) + len(pred.pairs[1])
    assert np.abs(pred.correction).max() > 0.1 and np.abs(pred.correction[:, [1, 3]] - pred.correction[:, [3, 1]]).max() > 0  # not isotropic
    _rotates(pred.correction[n:], pred.correction[:n], rot)
    _rotates(pred.values[n:], pred.values[:n], rot)


def test_cli_fit_predict_sum_baseline_and_rotation(frames, tmp_path, capsys):
    train, test, model = tmp_path / "train.xyz", tmp_path / "test.xyz", tmp_path / "dj.model"
    ase.io.write(train, frames[:8])
    ase.io.write(test, _bare(frames[8:]))
    assert main(["fit", str(train), "--target", KEY, "--per", "pair", "--tensor", "ij", "--units", "Hz", "--model", "baseline",
                 "--baseline-method", METHOD, "-o", str(model)]) == 0
    assert "8 labelled now" in capsys.readouterr().err
    meta = json.loads((model / "model.json").read_text())
    assert meta["baseline_method"]["method"] == METHOD and meta["baseline_method"]["label"] == KEY
    out = tmp_path / "p.xyz"
    assert main(["predict", str(model), str(test), "-o", str(out)]) == 0
    assert "3 labelled now, 0 already in the database" in capsys.readouterr().err
    pred = ase.io.read(out, ":")
    for a in pred:
        s, b, c = (np.asarray(a.info[k]).reshape(-1, 9) for k in (KEY, f"{KEY}_baseline", f"{KEY}_correction"))
        np.testing.assert_allclose(s, b + c, atol=1e-9)
        assert np.asarray(a.info[f"{KEY}_std"]).size == s.size
    assert main(["predict", str(model), str(test), "-o", str(tmp_path / "p2.xyz")]) == 0
    assert "0 labelled now, 3 already in the database" in capsys.readouterr().err
    rot = Rotation.random(random_state=1).as_matrix()  # a rotated structure: labelled anew, J -> R J R^T for the sum
    ase.io.write(tmp_path / "rot.xyz", [_rotated(frames[8], rot)])
    assert main(["predict", str(model), str(tmp_path / "rot.xyz"), "-o", str(tmp_path / "r.xyz")]) == 0
    r = ase.io.read(tmp_path / "r.xyz")
    np.testing.assert_array_equal(np.asarray(r.info[f"{KEY}_pairs"]), np.asarray(pred[0].info[f"{KEY}_pairs"]))
    _rotates(np.asarray(r.info[KEY]), np.asarray(pred[0].info[KEY]), rot)
    _rotates(np.asarray(r.info[f"{KEY}_baseline"]), np.asarray(pred[0].info[f"{KEY}_baseline"]), rot)
    capsys.readouterr()
    assert main(["fit", str(train), "--target", KEY, "--per", "pair", "--tensor", "", "--units", "Hz", "--model", "nn", "--baseline-method",
                 METHOD, "-o", str(tmp_path / "x.model")]) == 2
    assert "use --baseline-label jcoupling_iso" in _error_line(capsys)
    assert not (tmp_path / "x.model.baseline.db").exists()
    loaded = load(model)
    assert loaded.baseline_method.method_hash == make_labeler(METHOD, "jcoupling").method_hash()
