"""Model files: exact round trip, and refusal of truncated, edited, foreign or pickled files."""

import json
import pickle
import shutil

import numpy as np
import pytest

from psilearn.data import load_dataset
from psilearn.models import SAGPR, ModelFileError, load
from psilearn.targets import Target

from ._synth import label_frames, molecules, small_model, small_soap


@pytest.fixture(scope="module")
def frames():
    return molecules(21, 20)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, frames):
    """A fitted symmetric rank-2 model (two channels, baseline) and its directory."""
    target = Target("alpha", tensor="ij=ji", units="bohr^3")
    model = SAGPR(target, small_soap(), small_model()).fit(load_dataset(label_frames(frames[:16], "alpha", "sym2", "structure"), target))
    path = tmp_path_factory.mktemp("models") / "alpha.model"
    model.save(path)
    return model, path


@pytest.fixture
def copy_of(saved, tmp_path):
    """A fresh copy of the saved model directory, free to be damaged."""
    dst = tmp_path / "copy.model"
    shutil.copytree(saved[1], dst)
    return dst


def test_round_trip_identical(saved, frames):
    model, path = saved
    assert sorted(p.name for p in path.iterdir()) == ["arrays.npz", "model.json"]
    back = load(path)
    assert back.target == model.target and back.species == model.species
    a, b = model.predict(frames[16:]), back.predict(frames[16:])
    np.testing.assert_allclose(b.values, a.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.irreps, a.irreps, rtol=0, atol=1e-12)
    # the posterior projector is stored in float32: the std moves by < 1e-4 relative, the mean not at all
    np.testing.assert_allclose(b.std, a.std, rtol=1e-4, atol=0)
    assert back.metadata["training_data_sha256"] == model.metadata["training_data_sha256"]
    # saving a loaded model reproduces the same predictions again
    back.save(path.parent / "again.model")
    c = load(path.parent / "again.model").predict(frames[16:])
    np.testing.assert_allclose(c.values, a.values, rtol=0, atol=1e-12)


def test_per_atom_round_trip(tmp_path, frames):
    target = Target("q", per="atom")
    model = SAGPR(target, small_soap(), small_model(n_sparse=10)).fit(load_dataset(label_frames(frames[:10], "q", "scalar", "atom"), target))
    model.save(tmp_path / "q.model")
    a, b = model.predict(frames[16:]), load(str(tmp_path / "q.model")).predict(frames[16:])
    np.testing.assert_allclose(b.values, a.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.std, a.std, rtol=1e-4, atol=0)


def test_compact_files_store_coefficients_not_features(saved, frames, tmp_path):
    """Sparse environments are stored as expansion coefficients and rebuilt exactly on load; the
    file is several times smaller than the full-feature layout of psilearn 0.1.0, which still loads."""
    import copy

    model, path = saved
    meta = json.loads((path / "model.json").read_text())
    assert meta["sparse_storage"] == "coefficients"
    names = meta["integrity"]["arrays_sha256"]
    assert any(k.startswith("sparse_coef/") for k in names) and not any(k.startswith("sparse/2/") for k in names)
    back = load(path)
    for ch, per_z in model.sparse.items():
        for z, x in per_z.items():
            np.testing.assert_allclose(back.sparse[ch][z], x, rtol=0, atol=1e-14)
    full = copy.deepcopy(model)
    full.sparse_coefficients = {}  # the 0.1.0 layout: lambda-SOAP blocks and a float64 projector
    full.save(tmp_path / "full.model")
    size = lambda p: sum(f.stat().st_size for f in p.iterdir())  # noqa: E731
    assert size(path) < size(tmp_path / "full.model") / 3
    np.testing.assert_array_equal(load(tmp_path / "full.model").predict(frames[16:]).std, model.predict(frames[16:]).std)


def test_loading_never_unpickles(saved, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("pickle used while loading a model")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)
    model = load(saved[1])
    assert model.target.key == "alpha"


def test_truncated_npz(copy_of):
    f = copy_of / "arrays.npz"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="arrays.npz"):
        load(copy_of)


def test_missing_npz(copy_of):
    (copy_of / "arrays.npz").unlink()
    with pytest.raises(ModelFileError, match="arrays.npz"):
        load(copy_of)


def test_edited_number_in_json(copy_of):
    f = copy_of / "model.json"
    meta = json.loads(f.read_text())
    col = meta["channels"][0]["columns"][0]
    col["reg"] = col["reg"] * 1.001
    f.write_text(json.dumps(meta, indent=1, sort_keys=True))
    with pytest.raises(ModelFileError, match="checksum"):
        load(copy_of)


def test_edited_baseline_text(copy_of):
    f = copy_of / "model.json"
    meta = json.loads(f.read_text())
    key = next(iter(meta["baseline"]))
    meta["baseline"][key][0] += 0.5  # one value per invariant block
    f.write_text(json.dumps(meta, indent=1, sort_keys=True))
    with pytest.raises(ModelFileError):
        load(copy_of)


def test_corrupt_json(copy_of):
    f = copy_of / "model.json"
    f.write_text(f.read_text()[:100])
    with pytest.raises(ModelFileError, match="model.json"):
        load(copy_of)


def test_replaced_array(copy_of):
    f = copy_of / "arrays.npz"
    with np.load(f, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    name = next(k for k in arrays if k.endswith("/coef"))
    arrays[name] = arrays[name].copy()
    arrays[name][0] += 1e-9
    np.savez(f, **arrays)
    with pytest.raises(ModelFileError) as exc:
        load(copy_of)
    assert name in str(exc.value)


def test_extra_array(copy_of):
    f = copy_of / "arrays.npz"
    with np.load(f, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["extra"] = np.zeros(3)
    np.savez(f, **arrays)
    with pytest.raises(ModelFileError):
        load(copy_of)


def test_not_a_model(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFileError, match="not a psilearn model"):
        load(empty)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("hello")
    with pytest.raises(ModelFileError):
        load(other)
    f = tmp_path / "file.json"
    f.write_text("{}")
    with pytest.raises(ModelFileError):
        load(f)
    with pytest.raises(ModelFileError, match="nothing_here"):
        load(tmp_path / "nothing_here")


def test_other_format(copy_of):
    f = copy_of / "model.json"
    meta = json.loads(f.read_text())
    meta["format"] = "some-other-tool"
    f.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="not a psilearn model"):
        load(copy_of)


def test_future_format_version(copy_of):
    f = copy_of / "model.json"
    meta = json.loads(f.read_text())
    meta["format_version"] = 99
    f.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="version"):
        load(copy_of)


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_object_array_not_unpickled(copy_of, tmp_path):
    sentinel = tmp_path / "PWNED"
    f = copy_of / "arrays.npz"
    with np.load(f, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload(str(sentinel))
    arrays["scales"] = evil
    np.savez(f, **arrays)
    with pytest.raises(ModelFileError):
        load(copy_of)
    assert not sentinel.exists(), "loading a model executed code from a pickle"


def test_save_refuses_to_overwrite_non_model(saved, tmp_path):
    model, _ = saved
    target = tmp_path / "precious"
    target.mkdir()
    (target / "data.txt").write_text("keep me")
    with pytest.raises(ModelFileError):
        model.save(target)
    assert (target / "data.txt").read_text() == "keep me"


@pytest.mark.parametrize("per, kind, extra", [("structure", "sym2", {"global_state": "none"}), ("atom", "scalar", {"global_state": "charge"})])
def test_covariance_storage_training(tmp_path, frames, per, kind, extra):
    """``covariance_storage: training`` stores the training environments instead of the covariance
    basis and rebuilds it on the first prediction with std: the mean is bit-identical and the std
    equals the fitted model's (float64 basis) to rounding, far inside the 1e-4 of the float32 basis."""
    target = Target("alpha", tensor="ij=ji") if kind == "sym2" else Target("q", per="atom")
    train = label_frames(frames[:16], target.key, kind, per)
    for i, a in enumerate(train):
        a.info["charge"] = i % 2
    model = SAGPR(target, small_soap(), small_model(n_sparse=30, covariance_storage="training", **extra)).fit(load_dataset(train, target))
    model.save(tmp_path / "t.model")
    meta = json.loads((tmp_path / "t.model" / "model.json").read_text())
    names = meta["integrity"]["arrays_sha256"]
    assert meta["covariance_storage"] == "training" and not any(k.endswith("/P") for k in names)
    assert any(k.startswith("train/coef/") for k in names) and ("train/states" in names) == (extra["global_state"] != "none")
    test = frames[16:]
    for i, a in enumerate(test):
        a.info["charge"] = (i + 1) % 2
    back = load(tmp_path / "t.model")
    mean_only = back.predict(test, return_std=False)
    assert all(cm.gp.P is None for cm in back.channels)  # nothing rebuilt for the mean
    a, b = model.predict(test), back.predict(test)
    np.testing.assert_array_equal(mean_only.values, a.values)
    np.testing.assert_array_equal(b.values, a.values)
    np.testing.assert_allclose(b.std, a.std, rtol=1e-9, atol=0)
    # a rebuilt model saves again in the same layout
    back.save(tmp_path / "again.model")
    assert json.loads((tmp_path / "again.model" / "model.json").read_text())["covariance_storage"] == "training"


def test_covariance_storage_is_validated():
    from psilearn.config import ConfigError

    with pytest.raises(ConfigError, match="covariance_storage"):
        SAGPR.validate_config({"model": {"covariance_storage": "low-rank"}})
