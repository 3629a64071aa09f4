"""Local SA-GPR models see the global state (total charge, spin) when global_state is set."""

import numpy as np
import pytest

from psilearn.data import DataError, load_dataset
from psilearn.features import SoapConfig
from psilearn.models import SAGPR, SAGPRConfig, load
from psilearn.targets import Target

from ._mols import label_qeq, molecules, with_charges

SOAP = SoapConfig(cutoff=3.5, max_radial=4, max_angular=3)
CHARGES = Target("q", per="atom", units="e")
DIPOLE = Target("mu", tensor="i", units="e*A")
# feature compression (when available) costs more than it saves on these tiny sets
FAST = {"feature_tol": 0.0} if "feature_tol" in SAGPRConfig.__dataclass_fields__ else {}


@pytest.fixture(scope="module")
def data():
    frames = label_qeq(with_charges(molecules(21, 60)))
    return frames[:45], frames[45:]


def _states(geom):
    out = []
    for charge, mult in ((0, None), (1, None), (-1, None), (0, "radical")):
        b = geom.copy()
        b.info["charge"] = charge
        b.info.pop("multiplicity", None)
        if mult:  # same charge, two more unpaired electrons
            n_elec = int(b.numbers.sum()) - charge
            b.info["multiplicity"] = 3 if n_elec % 2 == 0 else 4
        out.append(b)
    return out


@pytest.mark.parametrize("target", [CHARGES, DIPOLE])
def test_same_geometry_different_state_different_prediction(data, target, tmp_path):
    train, test = data
    model = SAGPR(target, SOAP, SAGPRConfig(n_sparse=40, global_state="charge+spin", **FAST)).fit(load_dataset(train, target))
    pred = model.predict(_states(test[0]))
    vals = pred.values.reshape(4, -1)
    for k in (1, 2, 3):
        assert np.abs(vals[k] - vals[0]).max() > 1e-4, f"state {k} not distinguished"
    model.save(tmp_path / "m")
    np.testing.assert_allclose(load(tmp_path / "m").predict(_states(test[0])).values, pred.values, rtol=1e-12, atol=1e-14)


def test_without_global_state_states_are_identical(data):
    train, test = data
    model = SAGPR(CHARGES, SOAP, SAGPRConfig(n_sparse=40, global_state="none", **FAST)).fit(load_dataset(train, CHARGES))
    vals = model.predict(_states(test[0])).values.reshape(4, -1)
    np.testing.assert_allclose(vals[1], vals[0], atol=1e-12)


def test_state_improves_local_charges_on_mixed_charge_data(data):
    train, test = data
    q_ref = np.concatenate([a.arrays["q"] for a in test])
    err = {}
    for mode in ("none", "charge"):
        model = SAGPR(CHARGES, SOAP, SAGPRConfig(n_sparse=40, global_state=mode, **FAST)).fit(load_dataset(train, CHARGES))
        err[mode] = np.sqrt(np.mean((model.predict(test, return_std=False).values[:, 0] - q_ref) ** 2))
    assert err["charge"] < 0.8 * err["none"]


def test_impossible_state_refused(data):
    train, test = data
    model = SAGPR(CHARGES, SOAP, SAGPRConfig(n_sparse=20, global_state="charge", **FAST)).fit(load_dataset(train[:10], CHARGES))
    bad = test[0].copy()
    bad.info["charge"] = int(bad.numbers.sum()) + 1
    with pytest.raises(DataError, match="impossible"):
        model.predict([bad])


def test_auto_global_state_follows_the_training_states(data, tmp_path):
    train, _ = data
    even = [a for a in train if int(a.numbers.sum()) % 2 == 0]  # neutral closed shells and their (doublet) ions
    model = SAGPR(CHARGES, SOAP, SAGPRConfig(n_sparse=40, **FAST)).fit(load_dataset(even, CHARGES))
    assert model.config.global_state == "charge"  # several charges; the unpaired electrons follow from them
    model.save(tmp_path / "m")
    assert load(tmp_path / "m").config.global_state == "charge"
    neutral = [a for a in even if a.info["charge"] == 0]
    assert SAGPR(CHARGES, SOAP, SAGPRConfig(n_sparse=20, **FAST)).fit(load_dataset(neutral, CHARGES)).config.global_state == "none"
    spins = [a.copy() for a in neutral]
    for a in spins[::2]:  # same charge, two more unpaired electrons
        a.info["multiplicity"] = 3
    spins = label_qeq(spins)
    assert SAGPR(CHARGES, SOAP, SAGPRConfig(n_sparse=20, **FAST)).fit(load_dataset(spins, CHARGES)).config.global_state == "charge+spin"
    mixed_parity = [a for a in train if a.info["charge"] == 0]  # closed shells and radicals (default multiplicities)
    assert len({int(a.numbers.sum()) % 2 for a in mixed_parity}) == 2
    assert SAGPR(CHARGES, SOAP, SAGPRConfig(n_sparse=20, **FAST)).fit(load_dataset(mixed_parity, CHARGES)).config.global_state == "charge+spin"
