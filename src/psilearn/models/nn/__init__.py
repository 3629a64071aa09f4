"""The `nn` model kind: an E(3)-equivariant message-passing network (e3nn) under the Target API,
with LLPR or ensemble uncertainty. The network, graphs, training loop, checkpoints and uncertainty
machinery are shared with the QEq-NN kind and live in :mod:`psilearn.models._torch`.
Importing this package imports torch and e3nn.
"""

from psilearn.models._torch.network import EquivariantNetwork, NetworkConfig
from psilearn.models._torch.train import TrainConfig
from psilearn.models.nn.model import NNModel

__all__ = ["NNModel", "EquivariantNetwork", "NetworkConfig", "TrainConfig"]
