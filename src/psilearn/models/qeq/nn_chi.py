"""Electronegativities from psilearn's equivariant network, plus optional learned element hardness.

chi_i = scale * readout(h_i) + b_Z(i)   (eV/e), with h_i the per-atom features of
:class:`psilearn.models._torch.network.EquivariantNetwork` and a single invariant (0e) output per
atom: ``scale`` and the element baseline ``b_Z`` are the network's ``scale``/``shift`` buffers
(set from the training data, not trained). With ``learn_hardness`` each element also gets a
hardness J_Z = HARDNESS_UNIT * softplus(rho_Z) >= 0 (eV/e^2), added to the diagonal of the QEq
matrix.
"""

from __future__ import annotations

import numpy as np
import torch

from psilearn.models._torch.graph import Batch
from psilearn.models._torch.network import EquivariantNetwork, NetworkConfig

#: eV/e^2 per unit of softplus(rho): makes O(1) changes of rho O(10 eV/e^2), the scale of the
#: Gaussian self-energies k_e / (sigma sqrt(pi)) that the hardness adds to
HARDNESS_UNIT = 10.0
CHI_IRREPS = [(0, 1)]  # one even scalar per atom


def inverse_softplus(y: np.ndarray) -> np.ndarray:
    """rho with softplus(rho) = y, for y > 0 (shape kept)."""
    y = np.asarray(y, float)
    return np.where(y > 20.0, y, np.log(np.expm1(np.maximum(y, 1e-12))))


class ChiNetwork(torch.nn.Module):
    """forward(batch) -> chi (N,) in eV/e (network dtype); :meth:`hardness` -> (n_species,) eV/e^2
    float64, or None when the hardness is not learned.

    ``hardness_init`` (n_species,) eV/e^2: starting values of the learned hardness (> 0)."""

    def __init__(self, cfg: NetworkConfig, n_species: int, avg_num_neighbors: float, learn_hardness: bool = False,
                 hardness_init: np.ndarray | None = None):
        super().__init__()
        self.network = EquivariantNetwork(cfg, n_species, CHI_IRREPS, avg_num_neighbors)
        if learn_hardness:
            j0 = np.full(n_species, 1.0) if hardness_init is None else np.asarray(hardness_init, float)
            if j0.shape != (n_species,) or np.any(j0 <= 0):
                raise ValueError("initial hardness must be one positive number per element")
            rho = torch.as_tensor(inverse_softplus(j0 / HARDNESS_UNIT), dtype=torch.get_default_dtype())
            self.raw_hardness = torch.nn.Parameter(rho)
        else:
            self.register_parameter("raw_hardness", None)

    @property
    def learns_hardness(self) -> bool:
        return self.raw_hardness is not None

    def forward(self, batch: Batch, features: torch.Tensor | None = None) -> torch.Tensor:
        return self.network.atom_outputs(batch, features)[:, 0]

    def hardness(self) -> torch.Tensor | None:
        """Element hardness J (n_species,) in eV/e^2, float64, differentiable; None if fixed."""
        if self.raw_hardness is None:
            return None
        return HARDNESS_UNIT * torch.nn.functional.softplus(self.raw_hardness.double())
