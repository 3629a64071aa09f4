"""The qeq model kind: training from charges, from dipoles, from both; symmetry, global state,
uncertainty, save/load. Synthetic data come from a known local electronegativity + QEq."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from psilearn.data import DataError, load_dataset
from psilearn.features import SoapConfig
from psilearn.models import load
from psilearn.models.qeq.model import QEqConfig, QEqModel
from psilearn.targets import Target

from ._mols import label_qeq, molecules, with_charges

SOAP = SoapConfig(cutoff=3.5, max_radial=4, max_angular=3)
CHARGES = Target("q", per="atom", units="e")
DIPOLE = Target("mu", tensor="i", units="e*A")


def _sums(q, frames):
    return np.add.reduceat(q, np.concatenate([[0], np.cumsum([len(a) for a in frames])[:-1]]))


@pytest.fixture(scope="module")
def data():
    frames = label_qeq(with_charges(molecules(7, 60)))
    return frames[:44], frames[44:]


@pytest.fixture(scope="module")
def from_charges(data):
    train, _ = data
    return QEqModel(CHARGES, SOAP, QEqConfig(n_sparse=60)).fit(load_dataset(train, CHARGES))


@pytest.fixture(scope="module")
def from_dipoles(data):
    train, _ = data
    return QEqModel(DIPOLE, SOAP, QEqConfig(n_sparse=60)).fit(load_dataset(train, DIPOLE))


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_from_charges_learns_charges_and_dipoles(data, from_charges):
    _, test = data
    pred = from_charges.predict(test)
    q_ref = np.concatenate([a.arrays["q"] for a in test])
    mu_ref = np.array([a.info["mu"] for a in test])
    assert _rmse(pred.values[:, 0], q_ref) < 0.15 * np.std(q_ref)
    assert _rmse(pred.dipoles, mu_ref) < 0.15 * np.std(mu_ref)
    totals = np.array([a.info["charge"] for a in test], float)
    np.testing.assert_allclose(_sums(pred.charges, test), totals, rtol=0, atol=1e-14)
    assert np.all(pred.std > 0) and np.all(np.isfinite(pred.std))
    held = from_charges.metadata["heldout_metrics"]
    assert held["cartesian"]["pct_rmse"] < 40


def test_from_dipoles_latent_charges(data, from_dipoles):
    """Trained on dipoles only, the model predicts dipoles and (latent) charges; the charges of
    cations and anions still sum exactly to their total charge."""
    _, test = data
    pred = from_dipoles.predict(test)
    mu_ref = np.array([a.info["mu"] for a in test])
    q_ref = np.concatenate([a.arrays["q"] for a in test])
    assert _rmse(pred.values, mu_ref) < 0.15 * np.std(mu_ref)
    assert _rmse(pred.charges, q_ref) < 0.2 * np.std(q_ref)  # identifiable: the truth is in the model class
    totals = np.array([a.info["charge"] for a in test], float)
    np.testing.assert_allclose(_sums(pred.charges, test), totals, rtol=0, atol=1e-14)
    # uncertainty: predicted dipole std is of the order of the actual errors
    z = (pred.values - mu_ref) / pred.std
    assert 0.2 < np.sqrt(np.mean(z**2)) < 5


def test_from_both(data):
    train, test = data
    model = QEqModel(DIPOLE, SOAP, QEqConfig(n_sparse=60, charges_key="q", charge_weight=1.0)).fit(load_dataset(train, DIPOLE))
    assert model.metadata["trained_on"] == ["charges", "dipole"]
    pred = model.predict(test)
    q_ref = np.concatenate([a.arrays["q"] for a in test])
    assert _rmse(pred.charges, q_ref) < 0.15 * np.std(q_ref)
    assert set(pred.extra_arrays) == {"q", "q_std", "qeq_electronegativity"}


def test_dipole_equivariant_and_translation_invariant(data, from_dipoles):
    _, test = data
    mols = [a for a in test if a.info["charge"] == 0][:3]
    ref = from_dipoles.predict(mols, return_cov=True)
    for seed, improper in ((1, False), (2, True)):
        rot = Rotation.random(random_state=seed).as_matrix() * (-1 if improper else 1)
        moved = []
        for a in mols:
            b = a.copy()
            b.positions = a.positions @ rot.T + np.array([3.0, -7.0, 1.5])
            moved.append(b)
        pred = from_dipoles.predict(moved, return_cov=True)
        np.testing.assert_allclose(pred.values, ref.values @ rot.T, atol=1e-8)
        np.testing.assert_allclose(pred.charges, ref.charges, atol=1e-9)
        np.testing.assert_allclose(pred.cov, rot @ ref.cov @ rot.T, atol=1e-9)  # the covariance rotates too
    # origin independence for neutral molecules
    for origin in ("nuclear_charge", "zero"):
        alt = QEqModel.__new__(QEqModel)
        alt.__dict__.update(from_dipoles.__dict__)
        alt.config = QEqConfig(**{**from_dipoles.config.__dict__, "origin": origin})
        np.testing.assert_allclose(alt.predict(mols, return_std=False).values, ref.values, atol=1e-10)


def test_charge_state_changes_prediction(data, from_charges, from_dipoles):
    """The same geometry as neutral, cation and anion: different charges (summing to 0, +1, -1)
    and dipoles."""
    _, test = data
    geom = test[0].copy()
    states = []
    for q in (0, 1, -1):
        b = geom.copy()
        b.info["charge"] = q
        b.info.pop("multiplicity", None)
        states.append(b)
    for model in (from_charges, from_dipoles):
        pred = model.predict(states)
        n = len(geom)
        qs = pred.charges.reshape(3, n)
        np.testing.assert_allclose(qs.sum(1), [0, 1, -1], atol=1e-14)
        assert np.abs(qs[1] - qs[0]).max() > 1e-3 and np.abs(qs[2] - qs[0]).max() > 1e-3
        assert np.abs(pred.dipoles[1] - pred.dipoles[0]).max() > 1e-3


def test_impossible_state_is_refused(data, from_charges):
    _, test = data
    bad = test[0].copy()
    bad.info["charge"] = 0
    bad.info["multiplicity"] = 2 if bad.numbers.sum() % 2 == 0 else 1
    with pytest.raises(DataError, match="multiplicity"):
        from_charges.predict([bad])


def test_charge_sum_must_match_total_charge(data):
    train, _ = data
    wrong = [a.copy() for a in train[:6]]
    wrong[1].info["charge"] = 0 if wrong[1].info["charge"] else 1
    wrong[1].info.pop("multiplicity", None)
    with pytest.raises(DataError, match="sum to"):
        QEqModel(CHARGES, SOAP, QEqConfig(n_sparse=10)).fit(load_dataset(wrong, CHARGES))


def test_dipole_units_required():
    with pytest.raises(ValueError, match="units"):
        QEqModel(Target("mu", tensor="i"), SOAP)
    with pytest.raises(ValueError, match="charges .* or dipoles"):
        QEqModel(Target("alpha", tensor="ij=ji"), SOAP)


def test_save_load_roundtrip(tmp_path, data, from_dipoles):
    _, test = data
    from_dipoles.save(tmp_path / "m")
    back = load(tmp_path / "m")
    assert type(back).__name__ == "QEqModel"
    a, b = from_dipoles.predict(test[:5]), back.predict(test[:5])
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.charges, b.charges)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-12)


def test_state_kernel_option(data):
    """global_state='kernel': chi itself depends on (charge, spin), stored and reloaded."""
    train, test = data
    model = QEqModel(CHARGES, SOAP, QEqConfig(n_sparse=40, global_state="kernel")).fit(load_dataset(train, CHARGES))
    geom = test[0].copy()
    neutral, cation = geom.copy(), geom.copy()
    neutral.info["charge"], cation.info["charge"] = 0, 1
    neutral.info.pop("multiplicity", None)
    cation.info.pop("multiplicity", None)
    pred = model.predict([neutral, cation])
    n = len(geom)
    assert np.abs(pred.chi[:n] - pred.chi[n:]).max() > 1e-6


def test_width_scale_selected_by_cross_validation(data, tmp_path):
    """The synthetic truth uses width_scale 1: k-fold selection among candidates finds it, and the
    choice is saved with the model."""
    train, test = data
    model = QEqModel(CHARGES, SOAP, QEqConfig(n_sparse=60, width_scales=[0.6, 1.0, 1.6])).fit(load_dataset(train, CHARGES))
    assert model.config.qeq["width_scale"] == 1.0
    assert set(model.metadata["hyperparameter_cv_rmse"]) == {"width=0.6", "width=1.0", "width=1.6"}
    model.save(tmp_path / "w")
    assert load(tmp_path / "w").params.width_scale == 1.0


def test_atomic_dipoles(data, tmp_path):
    """QEq + local atomic dipoles: fitted jointly, still exactly equivariant, saved and reloaded;
    on QEq-generated data the atomic dipoles stay small."""
    train, test = data
    model = QEqModel(DIPOLE, SOAP, QEqConfig(n_sparse=40, atomic_dipoles=True)).fit(load_dataset(train, DIPOLE))
    assert model.metadata["atomic_dipole_scale"] in (0.03, 0.1, 0.3)
    mols = [a for a in test if a.info["charge"] == 0][:3]
    pred = model.predict(mols, return_cov=True)
    assert pred.atomic_dipoles.shape == (sum(len(a) for a in mols), 3)
    mu_ref = np.array([a.info["mu"] for a in mols])
    assert _rmse(pred.values, mu_ref) < 0.3 * np.std(mu_ref)
    rot = Rotation.random(random_state=3).as_matrix() * -1  # improper
    moved = [a.copy() for a in mols]
    for b, a in zip(moved, mols):
        b.positions = a.positions @ rot.T + 2.0
    p2 = model.predict(moved, return_cov=True)
    np.testing.assert_allclose(p2.values, pred.values @ rot.T, atol=1e-8)
    np.testing.assert_allclose(p2.atomic_dipoles, pred.atomic_dipoles @ rot.T, atol=1e-8)
    np.testing.assert_allclose(p2.cov, rot @ pred.cov @ rot.T, atol=1e-9)
    assert np.all(np.linalg.eigvalsh(pred.cov) > 0)
    model.save(tmp_path / "ad")
    np.testing.assert_allclose(load(tmp_path / "ad").predict(mols).values, pred.values, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="atomic_dipoles"):
        QEqModel(CHARGES, SOAP, QEqConfig(atomic_dipoles=True))
