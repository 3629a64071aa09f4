"""Total charge and spin as inputs of the nn model (``nn: {global_state: charge | charge+spin}``):
a cation, an anion and a radical of one geometry get different predictions, the model learns a
charge dependence it is trained on, equivariance stays exact, and impossible states are refused."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from core._synth import label_frames, molecules, random_rotation, rel_dev, transform_frames
from psilearn.data import DataError, load_dataset
from psilearn.models import load
from psilearn.targets import Target

from .conftest import fit_tiny, tiny_model


def _charged_copies(frames, charges=(0, 2, -2)):
    """Each geometry once per total charge (even shifts keep the electron count's parity)."""
    out = []
    for a in frames:
        for q in charges:
            b = a.copy()
            b.info["charge"] = q
            out.append(b)
    return out


def _with_charge_label(frames, key="y"):
    """A scalar label that depends on the geometry and, strongly, on the total charge."""
    out = label_frames(frames, key, "scalar", "structure")
    for a in out:
        a.info[key] = float(np.ravel(a.info[key])[0]) + 3.0 * a.info.get("charge", 0)
    return out


def test_charge_changes_prediction_only_with_global_state(caplog):
    target = Target("y")
    frames = _with_charge_label(_charged_copies(molecules(1, 6)))
    probe = _charged_copies(molecules(5, 2))
    with_state = fit_tiny(frames, target, net={"global_state": "charge"}, train={"dtype": "float64", "epochs": 2})
    with caplog.at_level(logging.WARNING, logger="psilearn"):
        without = fit_tiny(frames, target, train={"dtype": "float64", "epochs": 2})
    assert "several electronic states" in caplog.text and "global_state: charge" in caplog.text
    p = with_state.predict(probe).values.reshape(-1, 3)  # per geometry: charge 0, +2, -2
    assert np.all(np.abs(p[:, 1] - p[:, 0]) > 1e-6) and np.all(np.abs(p[:, 2] - p[:, 0]) > 1e-6)
    q = without.predict(probe).values.reshape(-1, 3)
    np.testing.assert_allclose(q[:, 1], q[:, 0], rtol=0, atol=1e-12)


def test_spin_changes_prediction_with_charge_and_spin():
    target = Target("y")
    frames = _with_charge_label(molecules(1, 6))
    model = fit_tiny(frames, target, net={"global_state": "charge+spin"}, train={"dtype": "float64", "epochs": 1})
    a = molecules(5, 1)[0]
    n_el = int(a.numbers.sum())
    singlet, triplet = a.copy(), a.copy()
    singlet.info.update(charge=0, multiplicity=1 if n_el % 2 == 0 else 2)
    triplet.info.update(charge=0, multiplicity=3 if n_el % 2 == 0 else 4)
    p = model.predict([singlet, triplet]).values.ravel()
    assert abs(p[1] - p[0]) > 1e-6


def test_learns_charge_dependence():
    """Trained on geometries in three charge states, the model with the state input fits the
    charge dependence that the model without it cannot represent (same geometry, same input)."""
    target = Target("y")
    frames = _with_charge_label(_charged_copies(molecules(2, 8)))
    train = {"dtype": "float64", "epochs": 60, "lr": 1e-2, "batch_size": 6, "val_fraction": 0.2}
    err = {}
    for mode in ("none", "charge"):
        model = fit_tiny(frames, target, net={"global_state": mode}, train=train)
        ref = np.array([a.info["y"] for a in frames])
        err[mode] = float(np.sqrt(np.mean((model.predict(frames).values.ravel() - ref) ** 2)))
    # without the state the best is the mean over charges: error ~ 3 * sqrt(8/3) = 4.9
    assert err["none"] > 3.0
    assert err["charge"] < 0.5 * err["none"]


def test_equivariance_with_state():
    target = Target("mu", tensor="i")
    frames = _charged_copies(label_frames(molecules(3, 4), "mu", "vector", "structure"))
    model = fit_tiny(frames, target, net={"global_state": "charge+spin"}, train={"dtype": "float64", "epochs": 1})
    probe = _charged_copies(molecules(11, 2))
    q = random_rotation(np.random.default_rng(3)) * np.array([1.0, 1.0, -1.0])[:, None]  # improper
    moved = transform_frames(probe, q, shift=(0.4, -1.0, 2.0))
    for a, b in zip(probe, moved):
        b.info.update(a.info)
    p0, p1 = model.predict(probe).values, model.predict(moved).values
    assert rel_dev(p1, p0 @ q.T) < 1e-10


def test_state_survives_save_and_load(tmp_path):
    target = Target("y")
    frames = _with_charge_label(_charged_copies(molecules(1, 4)))
    model = fit_tiny(frames, target, net={"global_state": "charge"}, train={"dtype": "float64", "epochs": 1})
    model.save(tmp_path / "m")
    back = load(tmp_path / "m")
    assert back.net_config.global_state == "charge"
    np.testing.assert_array_equal(back.predict(frames).values, model.predict(frames).values)


def test_impossible_state_and_bad_option():
    target = Target("y")
    frames = _with_charge_label(molecules(1, 4))
    model = fit_tiny(frames, target, net={"global_state": "charge"}, train={"epochs": 1})
    bad = frames[0].copy()
    bad.info["charge"] = int(bad.numbers.sum()) + 1  # removes more electrons than exist
    with pytest.raises(DataError, match="electron"):
        model.predict([bad])
    with pytest.raises(ValueError, match="global_state"):
        tiny_model(target, net={"global_state": "spin"}).fit(load_dataset(frames, target))
