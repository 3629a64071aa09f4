"""Atomic graphs: neighbour lists of (periodic) structures and their batching.

A graph holds, for one structure of n atoms with E directed edges within the cutoff,

- ``species`` (n,) int64: index of each atom's element in the model's element list;
- ``edge_index`` (2, E) int64: rows (receiver i, sender j);
- ``edge_vec`` (E, 3) float64: r_j - r_i + S @ cell, in Angstrom (periodic images included);
- ``state`` (2,) float64: the structure's total charge Q (e) and number of unpaired electrons
  (multiplicity - 1), from ``atoms.info`` (zeros unless the model uses a global state);
- ``moments`` (n,) or (n, 3) float64: collinear or non-collinear magnetic moments
  (``initial_magmoms``) when the model takes them as inputs, else None;
- ``pairs`` (P, 2) int64 and ``pair_vec`` (P, 3) float64: the atom pairs of a per-pair target and
  r_j - r_i of each (shortest image), else None;
- ``labelled`` (n,) bool: for training on per-atom labels present on only some atoms (a label
  mask), which atoms carry a label (the loss sees those only), else None;
- ``fidelity`` int: index of the structure's level of theory in a multi-fidelity network (0 otherwise).

Neighbour lists come from ``ase.neighborlist.neighbor_list`` (a cell-list algorithm, linear in the
number of atoms, no Python loop over pairs). Edge vectors are computed once in float64 and cast to
the model's dtype when batched: the network never needs position gradients for these targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from ase import Atoms

from psilearn.data import DataError
from psilearn.models.checks import check_known_elements


@dataclass
class Graph:
    """Neighbour graph of one structure (shapes in the module docstring)."""

    species: np.ndarray
    edge_index: np.ndarray
    edge_vec: np.ndarray
    state: np.ndarray = field(default_factory=lambda: np.zeros(2))
    moments: np.ndarray | None = None
    pairs: np.ndarray | None = None
    pair_vec: np.ndarray | None = None
    labelled: np.ndarray | None = None
    fidelity: int = 0

    @property
    def n_atoms(self) -> int:
        return len(self.species)

    @property
    def n_pairs(self) -> int:
        return 0 if self.pairs is None else len(self.pairs)

    @property
    def n_edges(self) -> int:
        return self.edge_index.shape[1]


@dataclass
class Batch:
    """Several graphs as one disconnected graph, as torch tensors on one device.

    ``species`` (N,), ``edge_index`` (2, E), ``edge_vec`` (E, 3) [Angstrom], ``batch`` (N,) index of
    the structure of each atom, ``n_atoms`` (S,) atoms per structure, ``n_structures`` = S,
    ``state`` (S, 2) total charge and unpaired electrons of each structure, ``moments`` (N,) or None,
    ``pairs`` (P, 2) batch atom indices and ``pair_vec`` (P, 3) of a per-pair target, or None,
    ``fidelity`` (S,) level index of each structure (multi-fidelity networks; zeros otherwise).
    """

    species: torch.Tensor
    edge_index: torch.Tensor
    edge_vec: torch.Tensor
    batch: torch.Tensor
    n_atoms: torch.Tensor
    n_structures: int
    state: torch.Tensor | None = None
    moments: torch.Tensor | None = None
    pairs: torch.Tensor | None = None
    pair_vec: torch.Tensor | None = None
    fidelity: torch.Tensor | None = None


def build_graph(atoms: Atoms, species: list[int], cutoff: float) -> Graph:
    """Neighbour graph of ``atoms`` with all pairs closer than ``cutoff`` (Angstrom), periodic
    images included along periodic directions. ``species``: sorted atomic numbers known to the model."""
    from ase.neighborlist import neighbor_list

    z = np.asarray(atoms.numbers)
    lookup = np.full(max(int(z.max()), max(species)) + 1, -1, dtype=np.int64)
    lookup[np.asarray(species)] = np.arange(len(species))
    spec = lookup[z]
    if (spec < 0).any():
        check_known_elements([atoms], species)
    if atoms.pbc.any() and atoms.cell.rank < 3:
        raise DataError("periodic structure with a degenerate cell")
    i, j, s = neighbor_list("ijS", atoms, float(cutoff), self_interaction=False)
    pos = atoms.positions
    vec = pos[j] - pos[i] + s @ np.asarray(atoms.cell[:])
    return Graph(spec, np.stack([i, j]).astype(np.int64), vec.astype(np.float64))


def build_graphs(frames: list[Atoms], species: list[int], cutoff: float, progress: bool = False,
                 global_state: str = "none", magnetic_moments: str = "none") -> list[Graph]:
    """Graphs of many structures; checks every element first so the error names the frame.
    ``global_state`` 'charge' or 'charge+spin' records (and validates) each structure's total
    charge and unpaired electrons in ``Graph.state`` (DataError naming the frame if impossible);
    ``magnetic_moments`` 'collinear' or 'noncollinear' the ``initial_magmoms`` in ``Graph.moments``
    (DataError naming file, frame and key if absent or of the other kind)."""
    check_known_elements(frames, species)
    from tqdm.auto import tqdm

    graphs = [build_graph(a, species, cutoff) for a in tqdm(frames, desc="neighbour lists", disable=not progress, leave=False)]
    if global_state != "none":
        from psilearn.data.electronic_state import state_vectors

        for g, st in zip(graphs, state_vectors(frames, global_state)):
            g.state = st
    if magnetic_moments != "none":
        from psilearn.features.magnetic import read_moments

        for g, m in zip(graphs, read_moments(frames, magnetic_moments)):
            g.moments = m[:, 0] if magnetic_moments == "collinear" else m
    return graphs


def collate(graphs: list[Graph], device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Batch:
    """Concatenate graphs into one Batch (atom indices offset per structure). Raises ValueError on
    an empty list: there is nothing to predict."""
    if not graphs:
        raise ValueError("empty batch: no structures given")
    n_atoms = np.array([g.n_atoms for g in graphs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
    species = np.concatenate([g.species for g in graphs])
    edge_index = np.concatenate([g.edge_index + o for g, o in zip(graphs, offsets)], axis=1)
    edge_vec = np.concatenate([g.edge_vec for g in graphs], axis=0)
    batch = np.repeat(np.arange(len(graphs)), n_atoms)
    t = lambda a, dt: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
    state = np.stack([g.state for g in graphs])
    moments = None if any(g.moments is None for g in graphs) else t(np.concatenate([g.moments for g in graphs]), dtype)
    pairs = pair_vec = None
    if all(g.pairs is not None for g in graphs):
        pairs = t(np.concatenate([g.pairs.reshape(-1, 2) + o for g, o in zip(graphs, offsets)]), torch.long)
        pair_vec = t(np.concatenate([g.pair_vec.reshape(-1, 3) for g in graphs]), dtype)
    return Batch(t(species, torch.long), t(edge_index, torch.long), t(edge_vec, dtype), t(batch, torch.long),
                 t(n_atoms, torch.long), len(graphs), t(state, dtype), moments, pairs, pair_vec,
                 t(np.array([g.fidelity for g in graphs], dtype=np.int64), torch.long))
