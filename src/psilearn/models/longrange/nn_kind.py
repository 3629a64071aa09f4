"""Registry entry of the QEq-NN model kind (``psilearn fit --long-range qeq --model nn`` / ``--model qeq-nn``).

YAML (``--config cfg.yaml``)::

    model:    {origin: com, charges_key: q, charge_weight: 0.5, learn_hardness: false, qeq: {width_scale: 0.75}}
    nn:       {cutoff: 5.0, lmax: 2, channels: 32, layers: 2, correlation: 2}
    nn_train: {epochs: 300, batch_size: 8, lr: 5.0e-3, uncertainty: llpr, dtype: float32, threads: 1}
"""

from __future__ import annotations

from psilearn.targets import Target


def build(target: Target, config: dict, seed: int = 0, progress: bool = False):
    """Unfitted :class:`~psilearn.models.longrange.nn_model.QEqNNModel` from the ``model`` (QEq),
    ``nn`` (architecture) and ``nn_train`` (training) sections."""
    from psilearn.models.longrange.nn_model import QEqNNConfig, QEqNNModel
    from psilearn.models.nn.network import NetworkConfig
    from psilearn.models.nn.train import TrainConfig

    return QEqNNModel(target, NetworkConfig.from_dict(config.get("nn")), TrainConfig.from_dict(config.get("nn_train")),
                      QEqNNConfig.from_dict(config.get("model")), seed=seed, progress=progress)


def load_from(meta: dict, arrays: dict):
    from psilearn.models.longrange.nn_model import QEqNNModel

    return QEqNNModel.load_from(meta, arrays)
