"""Registry entry for the `nn` kind: building from a config dict and loading from a model file.

YAML (``psilearn fit ... --model nn --config nn.yaml``)::

    nn:       {cutoff: 5.0, lmax: 2, channels: 32, layers: 2, correlation: 2}
    nn_train: {epochs: 300, batch_size: 8, lr: 5.0e-3, schedule: plateau, patience: 40,
               uncertainty: llpr, dtype: float32, device: auto}
"""

from __future__ import annotations

from psilearn.targets import Target


def build(target: Target, config: dict, seed: int = 0, progress: bool = False):
    """Unfitted NNModel from the ``nn`` (architecture) and ``nn_train`` (training) sections."""
    from psilearn.models.nn.estimator import NNModel
    from psilearn.models.nn.network import NetworkConfig
    from psilearn.models.nn.train import TrainConfig

    return NNModel(target, NetworkConfig.from_dict(config.get("nn")), TrainConfig.from_dict(config.get("nn_train")),
                   seed=seed, progress=progress)


def load_from(meta: dict, arrays: dict):
    from psilearn.models.nn.estimator import NNModel

    return NNModel.load_from(meta, arrays)
