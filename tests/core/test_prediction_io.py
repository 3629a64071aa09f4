"""The one Prediction -> Atoms writer (psilearn.data.prediction_io): predict -> write -> read back
KEY, KEY_std and KEY_reference per structure and per atom, QEq by-products, spectra, and the
per-structure Cartesian shapes used by the ASE calculator."""

import numpy as np
import pytest

from psilearn.data import load_dataset, read_structures, write_structures
from psilearn.data.prediction import Prediction
from psilearn.data.prediction_io import cartesian_per_structure, predictions_to_atoms
from psilearn.models import SAGPR
from psilearn.targets import Target

from ._synth import label_frames, molecules, small_model, small_soap


@pytest.fixture(scope="module")
def labelled():
    frames = label_frames(molecules(5, 16), "alpha", "sym2", "structure")
    return label_frames(frames, "q", "scalar", "atom")


def _fit(frames, target):
    return SAGPR(target, small_soap(), small_model()).fit(load_dataset(frames, target))


def test_structure_target_round_trip(labelled, tmp_path):
    target = Target("alpha", tensor="ij=ji")
    model = _fit(labelled[:12], target)
    test = labelled[12:]
    pred = model.predict(test)
    path = tmp_path / "p.xyz"
    write_structures(path, predictions_to_atoms(test, pred, target))
    back = read_structures(str(path))
    for i, (b, a) in enumerate(zip(back, test)):
        np.testing.assert_allclose(b.info["alpha"], pred.values[i], rtol=1e-7)
        np.testing.assert_allclose(b.info["alpha_std"], pred.std[i], rtol=1e-7)
        np.testing.assert_allclose(b.info["alpha_reference"], a.info["alpha"], rtol=1e-7)
        np.testing.assert_allclose(b.positions, a.positions)
    assert "alpha_reference" not in test[0].info and test[0].info["alpha"] is not None  # inputs untouched
    # without std, and without a reference label in the input
    bare = [a.copy() for a in test]
    for a in bare:
        del a.info["alpha"]
    out = predictions_to_atoms(bare, model.predict(bare, return_std=False), target, with_std=False)
    assert all("alpha_std" not in a.info and "alpha_reference" not in a.info for a in out)


def test_atom_target_round_trip(labelled, tmp_path):
    target = Target("q", per="atom")
    model = _fit(labelled[:12], target)
    test = labelled[12:]
    pred = model.predict(test)
    path = tmp_path / "q.xyz"
    write_structures(path, predictions_to_atoms(test, pred, target))
    start = 0
    for b, a in zip(read_structures(str(path)), test):
        sl = slice(start, start + len(a))
        start += len(a)
        assert b.arrays["q"].shape == (len(a),) and "q" not in b.info
        np.testing.assert_allclose(b.arrays["q"], pred.values[sl, 0], rtol=1e-7)
        np.testing.assert_allclose(b.arrays["q_std"], pred.std[sl, 0], rtol=1e-7)
        np.testing.assert_allclose(b.arrays["q_reference"], a.arrays["q"], rtol=1e-7)


def test_qeq_extras_next_to_a_dipole(tmp_path):
    from psilearn.models.qeq.prediction import QEqPrediction

    frames = molecules(9, 2)
    frames[0].info["mu"] = np.ones(3)  # a reference dipole
    frames[0].arrays["qeq_charges"] = np.full(len(frames[0]), 0.5)  # and reference charges under the extra's name
    n_atoms = sum(len(a) for a in frames)
    rng = np.random.default_rng(0)
    mu, q = rng.normal(size=(2, 3)), rng.normal(size=n_atoms)
    pred = QEqPrediction(values=mu, std=np.full((2, 3), 0.1), irreps=mu, irreps_std=np.full((2, 3), 0.1),
                         charges=q, charges_std=np.full(n_atoms, 0.01), dipoles=mu, dipoles_std=np.full((2, 3), 0.1),
                         chi=rng.normal(size=n_atoms), energy=np.array([1.5, -2.0]), electrostatic_energy=np.array([0.5, 0.25]),
                         dipole_name="mu", target_key="mu")
    path = tmp_path / "qeq.xyz"
    write_structures(path, predictions_to_atoms(frames, pred, Target("mu", tensor="i")))
    a, b = read_structures(str(path))
    np.testing.assert_allclose(a.info["mu"], mu[0], rtol=1e-7)
    np.testing.assert_allclose(a.info["mu_reference"], 1.0)
    assert "mu_reference" not in b.info
    np.testing.assert_allclose(a.arrays["qeq_charges"], q[: len(a)], rtol=1e-7)
    np.testing.assert_allclose(b.arrays["qeq_charges"], q[len(a):], rtol=1e-7)
    np.testing.assert_allclose(a.arrays["qeq_charges_reference"], 0.5)
    assert a.arrays["qeq_charges_std"].shape == (len(a),) and b.arrays["qeq_electronegativity"].shape == (len(b),)
    assert a.info["qeq_energy"] == pytest.approx(1.5) and b.info["qeq_electrostatic_energy"] == pytest.approx(0.25)


def test_spectrum_target_records_its_grid():
    grid = np.linspace(0.0, 1.0, 5)
    target = Target("dos", grid=grid, grid_units="eV")
    frames = molecules(3, 2)
    frames[1].info["dos"] = np.zeros(5)
    v = np.arange(10.0).reshape(2, 5)
    out = predictions_to_atoms(frames, Prediction(v, v / 10, v, v / 10), target)
    np.testing.assert_allclose(out[0].info["dos_grid"], grid)
    np.testing.assert_allclose(out[1].info["dos"], v[1])
    np.testing.assert_allclose(out[1].info["dos_reference"], 0.0)


def test_cartesian_per_structure_shapes():
    frames = molecules(4, 2)
    n = [len(a) for a in frames]
    scalar = Prediction(np.array([[1.0], [2.0]]), np.array([[0.1], [0.2]]), np.zeros((2, 1)), np.zeros((2, 1)))
    (v0, s0), (v1, _) = cartesian_per_structure(frames, scalar, Target("e"))
    assert isinstance(v0, float) and isinstance(s0, float) and v1 == 2.0
    rank2 = Prediction(np.arange(18.0).reshape(2, 9), np.ones((2, 9)), np.zeros((2, 6)), np.zeros((2, 6)))
    (v, s), _ = cartesian_per_structure(frames, rank2, Target("alpha", tensor="ij=ji"))
    assert v.shape == s.shape == (3, 3) and v[1, 0] == 3.0
    vec = Prediction(np.ones((sum(n), 3)), np.ones((sum(n), 3)), np.zeros((sum(n), 3)), np.zeros((sum(n), 3)))
    shapes = [v.shape for v, _ in cartesian_per_structure(frames, vec, Target("mu", per="atom", tensor="i"))]
    assert shapes == [(n[0], 3), (n[1], 3)]


def test_refuses_predictions_of_another_length():
    frames = molecules(4, 2)
    p = Prediction(np.ones((3, 1)), np.ones((3, 1)), np.ones((3, 1)), np.ones((3, 1)))
    with pytest.raises(ValueError, match="3 predicted values for 2 structures"):
        predictions_to_atoms(frames, p, Target("e"))
