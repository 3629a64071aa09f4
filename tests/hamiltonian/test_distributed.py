"""The hamiltonian kind under DistributedDataParallel (2 gloo processes): parameters that get no
gradient (the body's readout, the O-O head of water) do not stop the reduction, and the network is
the one-process fit's."""

from __future__ import annotations

import numpy as np
import torch

from nn._ddp import run_two
from psilearn.data import load_hamiltonian_dataset
from psilearn.models.registry import model_class

from .conftest import TINY


def _fit(rank: int, frames) -> dict:
    torch.set_num_threads(1)
    ds = load_hamiltonian_dataset(frames)
    config = {k: dict(v) for k, v in TINY.items()}
    config["nn_train"].update(epochs=2, batch_size=5, dtype="float64")
    net = model_class("hamiltonian").build(ds.target, config, seed=0).fit(ds).net
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_two_processes_fit_the_one_process_hamiltonian(tmp_path, sto3g_waters):
    one = _fit(0, sto3g_waters)
    for two in run_two(_fit, (sto3g_waters,), tmp_path):
        for k, w in one.items():
            np.testing.assert_allclose(two[k].numpy(), w.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)
