"""Shared fixtures of the nn tests: one CPU thread (fastest on the shared 2-core machine), tiny
networks, helpers to fit and cache models."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)

from psilearn.data import load_dataset  # noqa: E402
from psilearn.models.nn import NetworkConfig, NNModel, TrainConfig  # noqa: E402

TINY_NET = dict(cutoff=3.5, channels=4, layers=2, correlation=2, lmax=2, n_basis=6, radial_hidden=16)
TINY_TRAIN = dict(epochs=2, batch_size=4, lr=5e-3, val_fraction=0.25, threads=1, checkpoint_every=1)


def tiny_model(target, seed: int = 0, net: dict | None = None, train: dict | None = None, **kw) -> NNModel:
    return NNModel(target, NetworkConfig(**{**TINY_NET, **(net or {})}), TrainConfig(**{**TINY_TRAIN, **(train or {})}),
                   seed=seed, **kw)


def fit_tiny(frames, target, **kw) -> NNModel:
    return tiny_model(target, **kw).fit(load_dataset(frames, target))


@pytest.fixture
def tiny():
    return tiny_model
