"""Equivariant message-passing neural networks (e3nn) under the Target API: the `nn` model kind.

Modules: ``radial`` (Bessel basis, smooth cutoff), ``graph`` (neighbour lists, batching),
``network`` (the equivariant network), ``train`` (training loop), ``checkpoint`` (safetensors
checkpoints), ``uncertainty`` (LLPR, ensembles), ``estimator`` (NNModel), ``kind`` (registry entry).
Importing this package imports torch and e3nn.
"""

from psilearn.models.nn.estimator import NNModel
from psilearn.models.nn.network import EquivariantNetwork, NetworkConfig
from psilearn.models.nn.train import TrainConfig

__all__ = ["NNModel", "EquivariantNetwork", "NetworkConfig", "TrainConfig"]
