"""qeq-nn under DistributedDataParallel (2 gloo processes): the learned hardness, read outside the
network's forward, is reduced like every other weight; the result is the one-process fit."""

from __future__ import annotations

import numpy as np
import torch

from nn._ddp import run_two
from nn.conftest import TINY_NET
from psilearn.data import load_dataset
from psilearn.models.nn import NetworkConfig, TrainConfig
from psilearn.models.qeq.nn_model import QEqNNConfig, QEqNNModel
from psilearn.targets import Target

from ._mols import label_qeq, molecules, with_charges

DIPOLE = Target("mu", tensor="i", units="e*A")


def _fit(rank: int = 0) -> dict:
    torch.set_num_threads(1)
    frames = label_qeq(with_charges(molecules(7, 13)))
    model = QEqNNModel(DIPOLE, NetworkConfig(**TINY_NET), TrainConfig(epochs=3, batch_size=3, val_fraction=0.25, threads=1, dtype="float64"),
                       QEqNNConfig(learn_hardness=True, hardness_init=2.0), seed=0).fit(load_dataset(frames, DIPOLE))
    return {"weights": {k: v.clone() for k, v in model.net.state_dict().items()}, "hardness": model.net.hardness().detach().numpy()}


def test_two_processes_fit_the_one_process_qeq_nn(tmp_path):
    one = _fit()
    for two in run_two(_fit, (), tmp_path):
        np.testing.assert_allclose(two["hardness"], one["hardness"], rtol=1e-9)
        assert not np.allclose(one["hardness"], 2.0)  # the hardness was learned
        for k, w in one["weights"].items():
            np.testing.assert_allclose(two["weights"][k].numpy(), w.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)
