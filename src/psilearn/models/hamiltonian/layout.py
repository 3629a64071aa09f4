"""Fixed linear maps between a network's irreps outputs and AO blocks, and the scatter indices that
place blocks into each structure's flat n_ao x n_ao matrix.

For an element e, the on-site map M_e (n_e*n_e, d_e) takes the on-site irreps vector (layout
``target.pair_layout(e, e, onsite=True)``) to the symmetric block in PySCF's AO order; for an ordered
element pair (A, B), M_AB (n_A*n_B, d_AB) takes the off-site irreps vector to the n_A x n_B block.
Both are :meth:`HamiltonianTarget.coupling_maps` (``uncouple`` applied to unit vectors), so the network
reuses the target's measured AO-order maps and Wigner 3j couplings and cannot disagree with them.

A directed edge (i, j) of the neighbour graph gets a block P_ij (rows: AOs of i); the matrix gets
0.5 P_ij at (i, j) and 0.5 P_ij^T at (j, i). With both directions of every edge present,
F_ij = (P_ij + P_ji^T) / 2 and F_ji = F_ij^T: symmetric by construction, and permuting atoms
permutes blocks (each edge is predicted from its own two atoms' features, whatever their numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from psilearn.models._torch.graph import Graph
from psilearn.targets.hamiltonian import HamiltonianTarget


def pair_name(a: str, b: str) -> str:
    return f"{a}-{b}"


@dataclass
class StructureIndex:
    """Per structure: where each output goes in its flat F (row-major, n_ao * n_ao entries).

    ``nodes[e]`` (k,) atoms of element e; ``node_idx[e]`` (k, n_e*n_e) flat positions of their
    on-site blocks; ``edges[t]`` (m,) graph edges of ordered element pair t; ``edge_idx[t]`` and
    ``edge_idx_t[t]`` (m, n_A*n_B): flat positions of P_ij at (i, j) and of P_ij^T at (j, i), both
    indexed by the entries of P_ij in row-major order."""

    n_ao: int
    nodes: dict
    node_idx: dict
    edges: dict
    edge_idx: dict
    edge_idx_t: dict


def structure_index(target: HamiltonianTarget, atoms: Atoms, graph: Graph) -> StructureIndex:
    """The :class:`StructureIndex` of one structure and its neighbour graph."""
    syms = atoms.get_chemical_symbols()
    off = target.offsets(syms)
    n = int(off[-1])
    nodes, node_idx, edges, edge_idx, edge_idx_t = {}, {}, {}, {}, {}
    for e in sorted(set(syms)):
        k = np.array([i for i, s in enumerate(syms) if s == e], dtype=np.int64)
        m = target.atom_size(e)
        r, c = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
        nodes[e] = k
        node_idx[e] = ((off[k][:, None] + r.ravel()) * n + off[k][:, None] + c.ravel()).astype(np.int64)
    recv, send = graph.edge_index
    types = np.array([pair_name(syms[i], syms[j]) for i, j in zip(recv, send)], dtype=object)
    for t in sorted(set(types)):
        eid = np.flatnonzero(types == t).astype(np.int64)
        a, b = t.split("-")
        na, nb = target.atom_size(a), target.atom_size(b)
        r, c = np.meshgrid(np.arange(na), np.arange(nb), indexing="ij")
        i, j = off[recv[eid]][:, None], off[send[eid]][:, None]
        edges[t] = eid
        edge_idx[t] = ((i + r.ravel()) * n + j + c.ravel()).astype(np.int64)
        edge_idx_t[t] = ((j + c.ravel()) * n + i + r.ravel()).astype(np.int64)
    return StructureIndex(n, nodes, node_idx, edges, edge_idx, edge_idx_t)


@dataclass
class BatchIndex:
    """:class:`StructureIndex` of several structures offset into one batch: node and edge numbers
    into the collated graph, flat positions into the concatenated flat matrices (``total`` entries);
    ``entry_structure`` (total,) the structure of each entry; ``starts`` (S + 1,) each one's slice."""

    nodes: dict
    node_idx: dict
    edges: dict
    edge_idx: dict
    edge_idx_t: dict
    entry_structure: np.ndarray
    starts: np.ndarray

    @property
    def total(self) -> int:
        return int(self.starts[-1])


def collate_index(items: list[StructureIndex], graphs: list[Graph]) -> BatchIndex:
    """One :class:`BatchIndex` for structures collated in this order (see ``collate``)."""
    sizes = np.array([it.n_ao ** 2 for it in items], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    node_off = np.concatenate([[0], np.cumsum([g.n_atoms for g in graphs])])
    edge_off = np.concatenate([[0], np.cumsum([g.n_edges for g in graphs])])
    out: dict[str, dict] = {k: {} for k in ("nodes", "node_idx", "edges", "edge_idx", "edge_idx_t")}
    for s, it in enumerate(items):
        for name, shift, src in (("nodes", node_off[s], it.nodes), ("node_idx", starts[s], it.node_idx),
                                 ("edges", edge_off[s], it.edges), ("edge_idx", starts[s], it.edge_idx),
                                 ("edge_idx_t", starts[s], it.edge_idx_t)):
            for key, v in src.items():
                out[name].setdefault(key, []).append(v + shift)
    cat = {name: {k: np.concatenate(v) for k, v in d.items()} for name, d in out.items()}
    return BatchIndex(**cat, entry_structure=np.repeat(np.arange(len(items)), sizes), starts=starts)
