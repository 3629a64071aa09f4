"""The invariant SOAP kernel of the electronegativity model chi_i (one l=0 channel, per atom).

k(i, j) = (x_i . x_j)^zeta * k_state(s_i, s_j) for atoms of the same element (0 otherwise), with
x the normalised invariant lambda-SOAP vector and k_state the optional kernel on the global state
(total charge, unpaired electrons) of each atom's structure. Reuses the SA-GPR kernels
(:mod:`psilearn.models._kernel.kernels`) with ``per='atom'``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psilearn.features import AtomFeatures
from psilearn.models._kernel.kernels import sparse_kernel, sparse_sparse_kernel
from psilearn.models._kernel.sparse import check_elements_known, select_sparse_by_state, sparse_sizes
from psilearn.models._kernel.state_kernel import scale_kernel_by_state, state_kernel

CHANNEL = (0, 1)


def choose_sparse(feats: AtomFeatures, species: list[int], n_sparse, method: str,
                  states: np.ndarray | None = None, width: float = 1.0) -> dict[int, np.ndarray]:
    """Environments per element (the ``n_sparse`` option: a number, per element, or the data-scaled
    default; FPS or CUR on the invariant SOAP): indices into the atoms of each element. With the
    structures' ``states`` (n_structures, 2) of a state kernel of ``width``, chosen in the product
    kernel's space (:func:`~psilearn.models._kernel.sparse.select_sparse_by_state`)."""
    x0 = feats.blocks[CHANNEL]
    check_elements_known(n_sparse, species)
    sizes = sparse_sizes(n_sparse, {z: len(x0[z]) for z in species})
    return {z: select_sparse_by_state(x0[z][:, 0, :], None if states is None else states[feats.structure[feats.index[z]]], sizes[z], method, width)
            for z in species}


@dataclass
class ChiKernel:
    """Sparse environments of the chi model and the kernels built on them.

    ``sparse[Z]`` (M_Z, 1, Q) invariant SOAP of the sparse environments; ``sparse_state[Z]``
    (M_Z, 2) their structures' states (only used when ``state_width`` is set)."""

    zeta: float
    sparse: dict[int, np.ndarray]
    sparse_state: dict[int, np.ndarray]
    state_width: float | None = None

    @classmethod
    def select(cls, feats: AtomFeatures, states: np.ndarray, chosen: dict[int, np.ndarray], zeta: float,
               state_width: float | None) -> "ChiKernel":
        """Kernel on the sparse environments ``chosen[Z]`` (indices into the atoms of element Z,
        see :func:`choose_sparse`)."""
        x0 = feats.blocks[CHANNEL]
        sparse = {z: x0[z][idx] for z, idx in chosen.items()}
        sstate = {z: states[feats.structure[feats.index[z][idx]]] for z, idx in chosen.items()}
        return cls(zeta, sparse, sstate, state_width)

    @property
    def species(self) -> list[int]:
        return sorted(self.sparse)

    @property
    def n_sparse(self) -> int:
        return sum(len(v) for v in self.sparse.values())

    def _sparse_states(self) -> np.ndarray:
        return np.concatenate([self.sparse_state[z] for z in self.species]) if self.species else np.zeros((0, 2))

    def atoms_sparse(self, feats: AtomFeatures, states: np.ndarray) -> np.ndarray:
        """Phi (n_atoms, M): kernel between every atom and the sparse environments.
        ``states`` (n_structures, 2) are the structures' global states."""
        phi = sparse_kernel(feats, {CHANNEL: self.sparse}, CHANNEL, self.zeta, "atom", "sum")
        if self.state_width:
            phi = scale_kernel_by_state(phi, states[feats.structure], self._sparse_states(), 1, self.state_width)
        return phi

    def sparse_sparse(self) -> list[np.ndarray]:
        """K_MM as diagonal blocks, one per element (sorted)."""
        blocks = sparse_sparse_kernel({CHANNEL: self.sparse}, CHANNEL, self.zeta)
        if self.state_width:
            blocks = [b * state_kernel(self.sparse_state[z], self.sparse_state[z], self.state_width)
                      for b, z in zip(blocks, self.species)]
        return blocks

    def within_structure(self, feats: AtomFeatures, s: int, atoms: np.ndarray) -> np.ndarray:
        """Prior kernel (n_s, n_s) between the atoms ``atoms`` (global indices, in order) of
        structure ``s``; all share one state, so the state factor is 1."""
        n = len(atoms)
        k = np.zeros((n, n))
        x0 = feats.blocks[CHANNEL]
        for z, idx in feats.index.items():
            sel = np.flatnonzero(feats.numbers[atoms] == z)
            if len(sel) == 0:
                continue
            rows = np.searchsorted(idx, atoms[sel])
            x = x0[z][rows, 0, :]
            k[np.ix_(sel, sel)] = np.clip(x @ x.T, 0.0, None) ** self.zeta
        return k
