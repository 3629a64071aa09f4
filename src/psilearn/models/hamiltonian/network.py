"""The Hamiltonian network: an equivariant message-passing body, node heads for on-site blocks and
edge heads for atom-pair blocks.

* body: :class:`psilearn.models._torch.network.EquivariantNetwork` (its per-atom features h_i of
  all layers; its own readout is not used);
* node head, per element e: an equivariant linear map h_i -> the on-site irreps of e, times a
  per-irrep scale, plus the training mean on the invariant (0e) components;
* edge features, per directed edge (i, j) within the cutoff: the channel-wise tensor product
  a_i (x) b_j of two linear mixes of h_i and h_j, and (a_i + b_j) (x) Y(r_ij) with path weights from
  an MLP of the radial basis of |r_ij|;
* edge head, per ordered element pair (A, B): an equivariant linear map -> the off-site irreps, scaled
  and shifted as the node heads;
* the fixed maps of :mod:`psilearn.models.hamiltonian.layout` turn irreps into AO blocks and place
  them in the flat matrices (symmetric by construction).

Every operation is an e3nn equivariant map or acts on invariants, so a rotated or reflected molecule
gets exactly the rotated Hamiltonian (tests/hamiltonian/test_model.py checks 1e-8 in float64).
"""

from __future__ import annotations

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet

from psilearn.models._torch.graph import Batch
from psilearn.models._torch.network import EquivariantNetwork
from psilearn.models._torch.products import channelwise_product, direction_product, merge_irreps
from psilearn.models.hamiltonian.config import HamiltonianConfig, HamiltonianNetConfig
from psilearn.models.hamiltonian.layout import BatchIndex, pair_name
from psilearn.targets.hamiltonian import HamiltonianTarget


def _irreps(target: HamiltonianTarget, row: str, col: str, onsite: bool) -> o3.Irreps:
    return o3.Irreps(target.irreps_of_pair(row, col, onsite))


class HamiltonianNetwork(torch.nn.Module):
    """forward(batch, index) -> (index.total,) the flat matrices of the batch's structures (Hartree).

    ``elements``: the model's element symbols in the order of its species indices. Buffers
    ``scale_*``/``shift_*`` map each head's output to Hartree (set from the training labels)."""

    def __init__(self, net_cfg: HamiltonianNetConfig, cfg: HamiltonianConfig, target: HamiltonianTarget,
                 elements: list[str], avg_num_neighbors: float):
        super().__init__()
        self.elements = list(elements)
        self.pairs = [pair_name(a, b) for a in elements for b in elements]
        outs = {e: _irreps(target, e, e, True) for e in elements}
        outs.update({pair_name(a, b): _irreps(target, a, b, False) for a in elements for b in elements})
        out_irreps = sorted({(ir.l, ir.p) for irs in outs.values() for _, ir in irs})
        self.body = EquivariantNetwork(net_cfg, len(elements), out_irreps, avg_num_neighbors)
        feats = self.body.irreps_features
        lmax = max(l for l, _ in out_irreps)
        edge = o3.Irreps([(cfg.edge_channels, (l, p)) for l in range(lmax + 1) for p in (1, -1)]).sort().irreps.simplify()
        self.edge_a, self.edge_b = o3.Linear(feats, edge), o3.Linear(feats, edge)
        allowed = set(out_irreps)
        self.product = channelwise_product(edge, allowed)
        self.sh_irreps = self.body.sh_irreps
        self.edge_tp = direction_product(edge, self.sh_irreps, allowed)
        mid = self.edge_tp.irreps_out
        self.edge_radial = FullyConnectedNet([net_cfg.n_basis, net_cfg.radial_hidden, self.edge_tp.weight_numel], torch.nn.functional.silu)
        pair_feats = (self.product.irreps_out.simplify() + mid.simplify()).sort().irreps.simplify()
        self.pair_feats = pair_feats
        # one mix to a compact width first, then the small per-element / per-pair heads: each e3nn op
        # costs a backward pass over its whole input per irrep slice, so wide inputs are mixed once
        self.node_mix, self.edge_mix = o3.Linear(feats, edge), o3.Linear(pair_feats, edge)
        self.node_heads = torch.nn.ModuleDict({e: o3.Linear(edge, outs[e]) for e in elements})
        self.edge_heads = torch.nn.ModuleDict({t: o3.Linear(edge, outs[t]) for t in self.pairs})
        for name, irs in outs.items():
            onsite = "-" not in name
            a, b = (name, name) if onsite else name.split("-")
            self.register_buffer(f"map_{name}", torch.tensor(target.coupling_maps(a, b, onsite)[1], dtype=torch.get_default_dtype()))
            self.register_buffer(f"scale_{name}", torch.ones(irs.dim))
            self.register_buffer(f"shift_{name}", torch.zeros(irs.dim))

    def _head(self, name: str, head: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Blocks (k, n_row*n_col) in Hartree from head inputs x (k, ...)."""
        c = head(x) * getattr(self, f"scale_{name}") + getattr(self, f"shift_{name}")
        return c @ getattr(self, f"map_{name}").T

    def edge_features(self, h: torch.Tensor, batch: Batch) -> torch.Tensor:
        """(E, edge irreps dim) features of every directed edge (receiver i, sender j)."""
        i, j = batch.edge_index[0], batch.edge_index[1]
        a, b = self.edge_a(h), self.edge_b(h)
        vec = batch.edge_vec
        sh = self.body.sh(vec)
        radial = self.body.radial(torch.linalg.norm(vec, dim=1))
        prod = self.product(a[i], b[j])
        geo = self.edge_tp(a[i] + b[j], sh, self.edge_radial(radial))
        return self.edge_mix(merge_irreps(prod, self.product.irreps_out, geo, self.edge_tp.irreps_out, self.pair_feats))

    def forward(self, batch: Batch, index: BatchIndex) -> torch.Tensor:
        h = self.body.features(batch)
        hc = self.node_mix(h)
        dev = h.device
        out = torch.zeros(index.total, dtype=h.dtype, device=dev)
        t = lambda a: torch.as_tensor(a, device=dev)  # noqa: E731
        for e in self.elements:
            if e in index.nodes:
                blocks = self._head(e, self.node_heads[e], hc[t(index.nodes[e])])
                out = out.index_add(0, t(index.node_idx[e]).reshape(-1), blocks.reshape(-1))
        if index.edges:
            x = self.edge_features(h, batch)
            for name, eid in index.edges.items():
                half = 0.5 * self._head(name, self.edge_heads[name], x[t(eid)]).reshape(-1)
                out = out.index_add(0, t(index.edge_idx[name]).reshape(-1), half)
                out = out.index_add(0, t(index.edge_idx_t[name]).reshape(-1), half)
        return out
