"""The qeq-nn kind's joint posterior across samples (LLPR through QEq, ``posterior_factors``): its
diagonal is the model's own predictive variance, conditioning on a label with the stated noise equals
refitting the LLPR covariance with that sample's weighted rows, the dipole covariance rotates exactly,
the charges' is invariant; None without LLPR."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from nn.conftest import TINY_NET, TINY_TRAIN
from psilearn.data import load_dataset
from psilearn.models.nn import NetworkConfig, TrainConfig
from psilearn.models.qeq.nn_llpr import jacobians
from psilearn.models.qeq.nn_model import QEqNNConfig, QEqNNModel
from psilearn.targets import Target

from ._mols import label_qeq, molecules, with_charges

torch.set_num_threads(1)

TARGETS = {"dipole": Target("mu", tensor="i", units="e*A"), "charges": Target("q", per="atom", units="e")}
_cache: dict = {}


def fitted(name: str, uncertainty: str = "llpr"):
    key = (name, uncertainty)
    if key not in _cache:
        frames = label_qeq(with_charges(molecules(7, 24)))
        target = TARGETS[name]
        model = QEqNNModel(target, NetworkConfig(**TINY_NET), TrainConfig(**{**TINY_TRAIN, "dtype": "float64", "epochs": 3,
                                                                             "uncertainty": uncertainty}), QEqNNConfig(), seed=0)
        _cache[key] = (model.fit(load_dataset(frames[:20], target)), frames[20:])
    return _cache[key]


def _joint(model, frames) -> np.ndarray:
    (r, _), = model.posterior_factors(frames)
    flat = r.reshape(-1, r.shape[-1])
    return flat @ flat.T


@pytest.mark.parametrize("name", list(TARGETS))
def test_diagonal_is_the_model_variance(name):
    model, test = fitted(name)
    (r, _), = model.posterior_factors(test)
    var = model.predict(test, return_std=True).irreps_std ** 2
    assert r.shape[:2] == var.shape
    np.testing.assert_allclose(np.einsum("nmr,nmr->nm", r, r), var, rtol=1e-8, atol=1e-12 * var.max())


@pytest.mark.parametrize("name", list(TARGETS))
def test_conditioning_with_the_stated_noise_equals_refitting_llpr(name):
    model, test = fitted(name)
    (r, s2), = model.posterior_factors(test)
    c = _joint(model, test)
    _, g, maps = model._run(test, features=True)
    gq, gmu = jacobians(maps, g, model.dipole_factor)
    jac = np.concatenate(gmu if model.is_dipole else gq)  # rows of every sample's observed components
    rows = np.arange(3) if model.is_dipole else np.arange(len(test[0]))  # the first structure labelled
    row_w = 1.0 / model.metadata["loss_scales"]["dipole" if model.is_dipole else "charges"]  # the LLPR's weight of such a row
    a2 = model.llpr.factor("dipole" if model.is_dipole else "charges")
    refit = a2 * jac @ np.linalg.solve(np.linalg.inv(model.llpr.inv) + row_w**2 * jac[rows].T @ jac[rows], jac.T)
    cond = c - c[:, rows] @ np.linalg.solve(c[np.ix_(rows, rows)] + s2 * np.eye(len(rows)), c[rows, :])
    assert np.abs(cond - refit).max() <= 1e-7 * np.abs(c).max()
    assert np.abs(cond - c).max() > 1e-3 * np.abs(c).max()


def test_dipole_covariance_rotates_and_charge_covariance_is_invariant():
    rot = Rotation.random(random_state=3).as_matrix()
    for name in TARGETS:
        model, test = fitted(name)
        ref = _joint(model, test)
        assert np.abs(ref - np.diag(np.diag(ref))).max() > 1e-3 * np.abs(ref).max()  # samples are correlated
        for q in (rot, -rot):
            moved = []
            for a in test:
                b = a.copy()
                b.positions = a.positions @ q.T
                moved.append(b)
            got = _joint(model, moved)
            if model.is_dipole:
                big = np.kron(np.eye(len(test)), q)
                expect = big @ ref @ big.T
            else:
                expect = ref
            assert np.abs(got - expect).max() <= 1e-8 * np.abs(ref).max()


def test_none_without_llpr():
    model, test = fitted("dipole", "none")
    assert model.posterior_factors(test) is None
