"""Optional local atomic dipoles added to the QEq dipole: mu = f sum_i q_i (r_i - o) + sum_i p_i.

p_i is a sparse-GP vector model on the l=1 (polar) lambda-SOAP channel of atom i, exactly as a
local SA-GPR dipole model, so the combined model contains both the local model and QEq; both are
linear in their weights and are fitted jointly. Atomic dipoles are in the units of the dipole
Target. ``scale`` (a) is the prior amplitude of the p-weights relative to the chi-weights
(units: label units per eV/e), chosen by k-fold CV in :class:`.model.QEqModel`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psilearn.features import AtomFeatures
from psilearn.models._kernel.kernels import self_kernel, sparse_kernel, sparse_sparse_kernel
from psilearn.targets.cartesian import cartesian_basis

DIP_CHANNEL = (1, 1)  # l = 1, featomic sigma = +1: a polar vector


def _to_cartesian_rows(k: np.ndarray, n: int) -> np.ndarray:
    """Rows ordered (sample, m) in e3nn's l=1 basis -> (sample, x/y/z), shape kept (n*3, C)."""
    to_cart = cartesian_basis("i").to_cartesian  # (3 irreps, 3 Cartesian)
    return np.einsum("nmc,mx->nxc", k.reshape(n, 3, -1), to_cart).reshape(n * 3, -1)


@dataclass
class AtomicDipoleKernel:
    """Sparse environments (same as the chi model's) and kernels of the atomic-dipole model.

    ``sparse1[Z]`` (M_Z, 3, Q1) l=1 lambda-SOAP, ``sparse0[Z]`` (M_Z, 1, Q0) invariant SOAP (for
    the zeta power); ``scale`` the prior amplitude a."""

    zeta: float
    sparse1: dict[int, np.ndarray]
    sparse0: dict[int, np.ndarray]
    scale: float = 1.0

    @classmethod
    def select(cls, feats: AtomFeatures, chosen: dict[int, np.ndarray], zeta: float, scale: float = 1.0) -> "AtomicDipoleKernel":
        return cls(zeta, {z: feats.blocks[DIP_CHANNEL][z][idx] for z, idx in chosen.items()},
                   {z: feats.blocks[(0, 1)][z][idx] for z, idx in chosen.items()}, scale)

    @property
    def _sparse(self) -> dict:
        return {DIP_CHANNEL: self.sparse1, (0, 1): self.sparse0}

    @property
    def n_columns(self) -> int:
        return 3 * sum(len(v) for v in self.sparse1.values())

    def structure_sparse(self, feats: AtomFeatures) -> np.ndarray:
        """a * kernel between each structure's summed atomic dipole (rows: structure, x/y/z) and
        the sparse functions, (n_structures * 3, M * 3)."""
        k = sparse_kernel(feats, self._sparse, DIP_CHANNEL, self.zeta, "structure", "sum")
        return self.scale * _to_cartesian_rows(k, feats.n_structures)

    def atoms_sparse(self, feats: AtomFeatures) -> np.ndarray:
        """a * kernel between each atom's dipole (rows: atom, x/y/z) and the sparse functions."""
        k = sparse_kernel(feats, self._sparse, DIP_CHANNEL, self.zeta, "atom", "sum")
        return self.scale * _to_cartesian_rows(k, len(feats.numbers))

    def sparse_sparse(self) -> list[np.ndarray]:
        """K_MM blocks (one per element), in the weights' (irreps) basis."""
        return sparse_sparse_kernel(self._sparse, DIP_CHANNEL, self.zeta)

    def structure_self(self, feats: AtomFeatures) -> np.ndarray:
        """a^2 * prior covariance of each structure's summed atomic dipole, (n_structures, 3, 3) Cartesian."""
        k = self_kernel(feats, DIP_CHANNEL, self.zeta, "structure", "sum")
        to_cart = cartesian_basis("i").to_cartesian
        return self.scale**2 * np.einsum("mx,nmk,ky->nxy", to_cart, k, to_cart)
