"""Values on atom pairs from the two atoms' environments: the network of per-pair targets.

For a pair (i, j) with r_ij = r_j - r_i (shortest image), from the body's per-atom features h
(:class:`~psilearn.models._torch.network.EquivariantNetwork`, all layers):

1. two linear mixes a = A h, b = B h to ``channels`` copies of each irrep up to the body's l;
2. pair features e(i, j) = W [ a_i (x) b_j  ,  (a_i + b_j) (x) Y(r_ij) ], the first a channel-wise
   tensor product of the two environments, the second their coupling to the pair's direction, with
   path weights from an MLP of a Bessel basis of |r_ij| (its own radial cutoff: the longest
   training pair, plus a margin, not the message-passing cutoff);
3. exchange symmetry: s(i, j) = (e(i, j) + sigma e(j, i)) / 2 with sigma = +1 or -1 per irrep
   type, the sign the target block of that type takes when the pair is reversed
   (:attr:`psilearn.targets.Target.swap_signs`: a transposed rank-2 tensor keeps its l = 0, 2 parts
   and flips its l = 1 part), so s(j, i) = sigma s(i, j) exactly;
4. a linear readout of s to the target irreps, times a per-irrep scale, plus a per-element-pair
   shift on the even scalars.

Everything is an e3nn equivariant map or acts on invariants, so rotating or reflecting a structure
rotates every pair value exactly, and the readout is linear in s, so the last-layer uncertainty
(:mod:`psilearn.models._torch.uncertainty`) applies to s as it applies to atom features.
"""

from __future__ import annotations

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet

from psilearn.models._torch.graph import Batch
from psilearn.models._torch.network import EquivariantNetwork, NetworkConfig
from psilearn.models._torch.products import channelwise_product, direction_product, merge_irreps
from psilearn.models._torch.radial import RadialEmbedding
from psilearn.models.composition import element_pair_types


class PairNetwork(torch.nn.Module):
    """forward(batch, per='pair', pool=None) -> (n_pairs, n_out) target irreps of the batch's pairs.

    ``out_irreps`` the target blocks (l, p) in order, ``swap_signs`` their signs under reversal of
    the pair, ``pair_cutoff`` the radial cutoff of the pair head (Angstrom). Buffers ``scale``
    (n_out,), ``shift`` (n_pair_types, n_out) and ``pair_type`` (n_species, n_species) map the
    readout to the target's units (set from the training data)."""

    def __init__(self, cfg: NetworkConfig, n_species: int, out_irreps: list[tuple[int, int]], swap_signs: list[int],
                 avg_num_neighbors: float, pair_cutoff: float):
        super().__init__()
        self.body = EquivariantNetwork(cfg, n_species, out_irreps, avg_num_neighbors)
        # the environments keep every l of the body: a scalar pair value still depends on how the two
        # environments are oriented relative to each other (e.g. a dihedral angle, through l >= 1)
        lmax = max([cfg.lmax] + [l for l, _ in out_irreps])
        allowed = set(out_irreps)
        edge = o3.Irreps([(cfg.channels, (l, p)) for l in range(lmax + 1) for p in (1, -1)]).sort().irreps.simplify()
        feats = self.body.irreps_features
        self.mix_a, self.mix_b = o3.Linear(feats, edge), o3.Linear(feats, edge)
        self.product = channelwise_product(edge, allowed)
        self.geometry = direction_product(edge, self.body.sh_irreps, allowed)
        self.radial = RadialEmbedding(pair_cutoff, cfg.n_basis, cfg.envelope_p)
        self.radial_net = FullyConnectedNet([cfg.n_basis, cfg.radial_hidden, self.geometry.weight_numel], torch.nn.functional.silu)
        self.merged = (self.product.irreps_out.simplify() + self.geometry.irreps_out.simplify()).sort().irreps.simplify()
        # the readout's input: `channels` copies of each target irrep type
        self.irreps_features = o3.Irreps([(cfg.channels, ir) for ir in sorted(allowed)]).simplify()
        self.pair_mix = o3.Linear(self.merged, self.irreps_features)
        sign_of = {ir: s for ir, s in zip(out_irreps, swap_signs)}
        sigma = torch.cat([torch.full((mul * ir.dim,), float(sign_of[(ir.l, ir.p)])) for mul, ir in self.irreps_features])
        self.register_buffer("sigma", sigma)
        self.irreps_out = o3.Irreps([(1, ir) for ir in out_irreps])
        self.readout = o3.Linear(self.irreps_features, self.irreps_out)
        # the rows of `shift` are the composition baseline's element pairs, in its order (species
        # indices follow the sorted atomic numbers, so the order of index pairs is the same)
        types = element_pair_types(list(range(n_species)))
        self.register_buffer("scale", torch.ones(self.irreps_out.dim))
        self.register_buffer("shift", torch.zeros(len(types), self.irreps_out.dim))
        table = torch.zeros(n_species, n_species, dtype=torch.long)
        for k, (a, b) in enumerate(types):
            table[a, b] = table[b, a] = k
        self.register_buffer("pair_type", table)

    def _directed(self, a: torch.Tensor, b: torch.Tensor, i: torch.Tensor, j: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
        prod = self.product(a[i], b[j])
        sh = self.body.sh(vec)
        geo = self.geometry(a[i] + b[j], sh, self.radial_net(self.radial(torch.linalg.norm(vec, dim=1))))
        return self.pair_mix(merge_irreps(prod, self.product.irreps_out, geo, self.geometry.irreps_out, self.merged))

    def features(self, batch: Batch) -> torch.Tensor:
        """Exchange-symmetrised pair features s (n_pairs, irreps_features.dim): the readout's input."""
        if batch.pairs is None:
            raise ValueError("this network predicts values on atom pairs: the batch has no pairs")
        h = self.body.features(batch)
        a, b = self.mix_a(h), self.mix_b(h)
        i, j = batch.pairs[:, 0], batch.pairs[:, 1]
        forward = self._directed(a, b, i, j, batch.pair_vec)
        backward = self._directed(a, b, j, i, -batch.pair_vec)
        return 0.5 * (forward + self.sigma * backward)

    def forward(self, batch: Batch, per: str = "pair", pool: str | None = None) -> torch.Tensor:
        s = self.features(batch)
        types = self.pair_type[batch.species[batch.pairs[:, 0]], batch.species[batch.pairs[:, 1]]]
        return self.readout(s) * self.scale + self.shift[types]
