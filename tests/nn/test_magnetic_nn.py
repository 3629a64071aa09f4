"""Collinear magnetic moments as inputs of the nn model (``nn: {magnetic_moments: collinear}``): a
scalar node input, features averaged over m and -m. Time reversal is exact, moments change
predictions, equivariance stays exact, the model file records the input, and its absence is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core._synth import label_frames, molecules, random_rotation, rel_dev, transform_frames
from psilearn.data import DataError
from psilearn.errors import ConfigError
from psilearn.models import load
from psilearn.targets import Target

from .conftest import fit_tiny

KEY = "initial_magmoms"


def _with_moments(frames, seed):
    rng = np.random.default_rng(seed)
    out = []
    for a in frames:
        b = a.copy()
        b.arrays[KEY] = rng.choice([-1.0, 1.0], len(b)) * rng.uniform(0.5, 2.0, len(b))
        out.append(b)
    return out


def _flip(frames):
    out = []
    for a in frames:
        b = a.copy()
        b.arrays[KEY] = -a.arrays[KEY]
        out.append(b)
    return out


@pytest.fixture(scope="module")
def vector_model():
    frames = _with_moments(label_frames(molecules(1, 8), "y", "vector", "structure"), seed=2)
    return fit_tiny(frames, Target("y", tensor="i"), net={"magnetic_moments": "collinear"}, train={"dtype": "float64"})


def test_time_reversal_is_exact_and_moments_matter(vector_model):
    probe = _with_moments(molecules(5, 3), seed=4)
    a, b = vector_model.predict(probe), vector_model.predict(_flip(probe))
    assert np.array_equal(a.values, b.values) and np.array_equal(a.std, b.std)
    other = vector_model.predict(_with_moments(molecules(5, 3), seed=9)).values
    assert np.abs(other - a.values).max() > 1e-8


def test_rotation_equivariance_with_moments(vector_model):
    probe = _with_moments(molecules(5, 3), seed=4)
    q = random_rotation(np.random.default_rng(3))
    moved = transform_frames(probe, q)
    for a, b in zip(moved, probe):
        a.arrays[KEY] = b.arrays[KEY]
    assert rel_dev(vector_model.predict(moved).values, vector_model.predict(probe).values @ q.T) < 1e-10


def test_model_file_records_moments_and_predict_needs_them(vector_model, tmp_path):
    vector_model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert '"initial_magmoms": "collinear"' in json.dumps(meta)
    loaded = load(tmp_path / "m")
    probe = _with_moments(molecules(5, 2), seed=4)
    assert np.allclose(loaded.predict(probe).values, vector_model.predict(probe).values, atol=1e-12)
    del probe[1].arrays[KEY]
    with pytest.raises(DataError, match=r"frame 1: no per-atom 'initial_magmoms'"):
        loaded.predict(probe)


def test_without_the_option_files_do_not_mention_it():
    from psilearn.models.nn import NetworkConfig

    frames = label_frames(molecules(1, 6), "y", "scalar", "structure")
    meta, _ = fit_tiny(frames, Target("y"), train={"epochs": 1}).to_state()
    assert "magnetic_moments" not in meta["nn"] and "required_inputs" not in meta
    with pytest.raises(ConfigError, match="magnetic_moments"):
        NetworkConfig.from_dict({"magnetic_moments": "vector"})


def test_noncollinear_moments_are_axial_vectors_and_time_reversal_is_exact():
    rng = np.random.default_rng(6)
    frames = label_frames(molecules(1, 8), "y", "vector", "structure")
    for a in frames:
        a.arrays[KEY] = rng.normal(size=(len(a), 3))
    model = fit_tiny(frames, Target("y", tensor="i"), net={"magnetic_moments": "noncollinear"}, train={"dtype": "float64"})
    probe = label_frames(molecules(5, 3), "y", "vector", "structure")
    for a in probe:
        a.arrays[KEY] = rng.normal(size=(len(a), 3))
    ref = model.predict(probe).values
    assert np.array_equal(model.predict(_flip(probe)).values, ref)
    for q in (random_rotation(rng), -random_rotation(rng)):
        moved = transform_frames(probe, q)
        for a, b in zip(moved, probe):
            a.arrays[KEY] = b.arrays[KEY] @ (np.linalg.det(q) * q).T  # axial: det(q) q m
        assert rel_dev(model.predict(moved).values, ref @ q.T) < 1e-10
    # the moments' directions relative to the structure matter (spin-lattice coupling is allowed)
    spun = [a.copy() for a in probe]
    for a, b in zip(spun, probe):
        a.arrays[KEY] = b.arrays[KEY] @ random_rotation(rng).T
    assert rel_dev(model.predict(spun).values, ref) > 1e-8
    collinear = [a.copy() for a in probe]
    collinear[0].arrays[KEY] = np.ones(len(collinear[0]))
    with pytest.raises(DataError, match="non-collinear moments, a vector"):
        model.predict(collinear)
