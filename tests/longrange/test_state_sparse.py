"""Sparse points of kernel models with a state kernel are shared among the electronic states.

One geometry as a cation and as an anion has the same structural features; farthest-point sampling
on them alone never picks the second copy, so without a state-aware choice one state got (almost)
no sparse points and its predictions fell back to the element baseline (PlusSet + MinusSet)."""

import numpy as np
import pytest

from psilearn.data import load_dataset
from psilearn.features import SoapConfig
from psilearn.models import SAGPR, SAGPRConfig
from psilearn.models._kernel.sparse import _proportional_shares, select_sparse, select_sparse_by_state
from psilearn.models._kernel.state_kernel import SPARSE_STATE_KEY
from psilearn.models.qeq.model import QEqConfig, QEqModel
from psilearn.targets import Target

from ._mols import label_qeq, molecules

SOAP = SoapConfig(cutoff=3.5, max_radial=4, max_angular=3)
CHARGES = Target("q", per="atom", units="e")


def _both_states(frames):
    out = []
    for charge in (1, -1):  # every cation first: the order in which plain FPS met duplicates
        for a in frames:
            b = a.copy()
            b.info["charge"] = charge
            out.append(b)
    return label_qeq(out)


@pytest.fixture(scope="module")
def ions():
    geoms = molecules(5, 48, elements=("H", "C", "O"))
    return _both_states(geoms[:40]), _both_states(geoms[40:])


def test_shares_are_proportional_and_bounded():
    share = _proportional_shares(np.array([300, 100, 1]), 40)
    assert share.sum() == 40 and share[2] == 1 and share[0] == 29 and share[1] == 10
    assert list(_proportional_shares(np.array([2, 50]), 10)) == [1, 9]
    assert _proportional_shares(np.array([3, 3]), 1).sum() == 1


def test_duplicated_geometry_gets_points_in_every_state():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 40))  # full rank: CUR can pick 30
    xx = np.concatenate([x, x])  # one set of environments in two states
    states = np.repeat([[1.0, 1.0], [-1.0, 1.0]], 30, axis=0)
    plain = select_sparse(xx, 20)
    assert (plain >= 30).sum() == 0  # duplicates are never chosen: one state only
    for method in ("fps", "cur"):
        picked = select_sparse_by_state(xx, states, 20, method)
        assert len(picked) == 20 and len(np.unique(picked)) == 20
        assert 5 <= (picked >= 30).sum() <= 15, (method, picked)
    assert (select_sparse_by_state(xx, states, 20, "cur") >= 30).sum() == 10  # shares in proportion
    np.testing.assert_array_equal(select_sparse_by_state(x, np.ones((30, 2)), 7), select_sparse(x, 7))


def test_product_fps_distance_is_the_kernel_distance():
    """The first pick after the start is the row farthest in the product kernel's feature space."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 4))
    states = np.repeat([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0]], 4, axis=0)
    width = 0.7
    picked = select_sparse_by_state(x, states, 2, "fps", width)
    first = int(np.argmax(np.linalg.norm(x - x.mean(0), axis=1)))
    ks = np.exp(-0.5 * (states[:, None, 0] - states[None, :, 0]) ** 2 / width**2)
    k = (x @ x.T) * ks
    d2 = np.diag(k) + k[first, first] - 2 * k[first]
    assert set(picked) == {first, int(np.argmax(d2))}


@pytest.mark.parametrize("kind", ["sagpr", "qeq"])
def test_both_charge_states_learned(ions, kind):
    train, test = ions
    if kind == "sagpr":
        model = SAGPR(CHARGES, SOAP, SAGPRConfig(n_sparse=60, global_state="charge", feature_tol=0.0))
    else:
        model = QEqModel(CHARGES, SOAP, QEqConfig(n_sparse=60, global_state="kernel", width_scales=[1.0]))
    model.fit(load_dataset(train, CHARGES))
    sparse = model.sparse[SPARSE_STATE_KEY] if kind == "sagpr" else model.kernel.sparse_state
    for z, st in sparse.items():
        if len(st) >= 4:
            assert 0.3 < np.mean(st[:, 0] < 0) < 0.7, f"element {z}: sparse states {st[:, 0]}"
    pred = model.predict(test)
    q = pred.charges if kind == "qeq" else pred.values[:, 0]
    ref = np.concatenate([a.arrays["q"] for a in test])
    anion = np.concatenate([np.full(len(a), a.info["charge"] < 0) for a in test])
    rel = {s: np.sqrt(np.mean((q - ref)[anion == s] ** 2)) / ref[anion == s].std() for s in (False, True)}
    # both states learned about equally well (measured: anion/cation 1.2 sagpr, 0.8 qeq; with the
    # state-blind choice 2.9 and 2.5, the anions near their spread for sagpr)
    assert rel[True] < 1.6 * rel[False] and rel[True] < 0.6, (kind, rel)


def test_qeq_auto_turns_the_state_kernel_on_for_mixed_states(ions):
    train, _ = ions
    mixed = QEqModel(CHARGES, SOAP, QEqConfig(n_sparse=20, width_scales=[1.0])).fit(load_dataset(train[::4], CHARGES))
    assert mixed.config.global_state == "kernel" and mixed.kernel.state_width == 1.0
    cations = [a for a in train if a.info["charge"] == 1 and int(a.numbers.sum()) % 2 == 0]  # all doublets: one state
    alone = QEqModel(CHARGES, SOAP, QEqConfig(n_sparse=20, width_scales=[1.0])).fit(load_dataset(cations, CHARGES))
    assert alone.config.global_state == "constraint" and not alone.kernel.state_width
