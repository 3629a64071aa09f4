"""Options of the ``hamiltonian`` model kind: the body network (section ``nn:``), training
(``nn_train:``) and the node/edge heads and loss (``hamiltonian:``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from psilearn.config import Checks, Options
from psilearn.models._torch.network import NetworkConfig
from psilearn.models._torch.train import TrainConfig


@dataclass
class HamiltonianNetConfig(NetworkConfig):
    """The message-passing body (as the ``nn`` kind's), with defaults for AO Hamiltonians: hidden
    irreps up to l = 4 (d x d blocks couple to L <= 4; raised to the basis's need if higher) of both
    parities (p x p blocks hold 1e parts), and a cutoff that also bounds the predicted pair blocks."""

    cutoff: float = 5.0  # Angstrom: message passing AND off-site blocks (pairs beyond it are zero blocks)
    lmax: int = 4
    channels: int = 16
    parity: str = "both"

    def check(self, c: Checks) -> None:
        super().check(c)
        c.require(self.global_state == "none", "global_state", "is not supported by the hamiltonian kind (closed shells only)")
        c.require(self.magnetic_moments == "none", "magnetic_moments", "is not supported by the hamiltonian kind")


@dataclass
class HamiltonianTrainConfig(TrainConfig):
    """Training, as the ``nn`` kind's, in float64 by default: the labels are needed to micro-Hartree
    on entries up to ~20 Ha (oxygen 1s), beyond float32's 7 significant digits."""

    dtype: str = "float64"
    uncertainty: str = "none"
    patience: int = 60

    def check(self, c: Checks) -> None:
        super().check(c)
        c.require(self.uncertainty == "none", "uncertainty", "must be 'none': the hamiltonian kind has no uncertainty estimate yet")


@dataclass
class HamiltonianConfig(Options):
    """The heads and the loss (YAML section ``hamiltonian:``). Energies in Hartree."""

    section: ClassVar[str] = "hamiltonian"

    edge_channels: int = 16  # copies of each irrep in the pair features
    loss_unit: float = 1e-3  # Hartree: errors are measured in this unit in the loss (1 mHa)
    # weight of the orbital-energy term: mean squared error (in loss_unit^2) of the occupied and
    # ``eigenvalue_virtual`` lowest virtual orbital energies of (F_pred, S), through a differentiable
    # generalised eigensolver; 0 trains on matrix entries only
    eigenvalue_weight: float = 0.0
    eigenvalue_virtual: int = 2

    def check(self, c: Checks) -> None:
        c.require(self.edge_channels >= 1, "edge_channels", "must be >= 1")
        c.require(self.loss_unit > 0, "loss_unit", "must be > 0")
        c.require(self.eigenvalue_weight >= 0, "eigenvalue_weight", "must be >= 0")
        c.require(self.eigenvalue_virtual >= 0, "eigenvalue_virtual", "must be >= 0")
