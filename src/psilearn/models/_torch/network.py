"""The E(3)-equivariant message-passing network (built on e3nn).

Per layer t, for atom i with neighbours j within the cutoff (edge vector r_ij = r_j - r_i):

1. messages   m_ij = TP( W_up h_j , Y(r_ij) ; R(|r_ij|) )     tensor product of the sender's features
   with the spherical harmonics of the edge, path weights from an MLP of the radial basis R
   (Bessel functions times a smooth polynomial cutoff);
2. density    A_i  = W_A sum_j m_ij / <n_neighbours>;
3. correlation B_1 = A_i, B_{k+1} = W_k (B_k (x) W'_k A_i) (channel-wise tensor products), so the
   layer output is a polynomial of order ``correlation`` in the neighbour density (``correlation=1``:
   NequIP-like two-body messages; 2-3: MACE-like many-body features);
4. update     h_i <- Gate( W_out sum_k B_k + W_self(Z_i) h_i ) with element-dependent
   self-connection and gated nonlinearities (SiLU on even scalars, tanh on odd scalars, sigmoid gates
   on l > 0).

Hidden features carry ``channels`` copies of each irrep l <= lmax (natural parity (-1)^l, or both
parities when the target needs pseudo-tensors). The readout is one equivariant linear map from the
features of all layers to exactly the Target's irreps, in e3nn's basis and the order of
``target.blocks``, so ``Target.to_cartesian`` applies unchanged. Per-atom outputs are
``scale * readout + shift[element]`` (shift only on even scalars); structure outputs pool them by sum
or mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet, Gate

from psilearn.config import Checks, Options
from psilearn.models._torch.graph import Batch
from psilearn.models._torch.radial import RadialEmbedding

# number of global-state scalars fed to the element embedding (Q; Q and unpaired electrons)
STATE_INPUTS = {"none": 0, "charge": 1, "charge+spin": 2}


@dataclass
class NetworkConfig(Options):
    """Architecture (YAML section ``nn:``). Lengths in Angstrom."""

    section: ClassVar[str] = "nn"

    cutoff: float = 5.0  # neighbour cutoff radius
    n_basis: int = 8  # Bessel functions
    envelope_p: int = 6  # polynomial cutoff exponent
    lmax: int = 2  # highest l of hidden features and edge harmonics (raised to the target's if lower)
    channels: int = 32  # copies of each hidden irrep
    layers: int = 2  # message-passing layers
    correlation: int = 2  # polynomial order in the neighbour density per layer (1 = two-body)
    radial_hidden: int = 64  # width of the radial MLP (two hidden layers)
    parity: str = "auto"  # 'natural' (l with parity (-1)^l), 'both', or 'auto' (both only if needed)
    global_state: str = "none"  # 'none', 'charge' or 'charge+spin': total charge / unpaired electrons as inputs
    # 'none', 'collinear' (each atom's initial_magmoms as a scalar node input) or 'noncollinear' (as a
    # 1e node input, an axial vector); the features averaged over m and -m (exact time-reversal
    # invariance; docs/magnetic.md)
    magnetic_moments: str = "none"

    def check(self, c: Checks) -> None:
        c.require(self.cutoff > 0, "cutoff", "must be > 0")
        for name in ("n_basis", "channels", "layers", "correlation", "radial_hidden"):
            c.require(getattr(self, name) >= 1, name, "must be >= 1")
        c.require(self.lmax >= 0, "lmax", "must be >= 0")
        c.one_of("parity", ("auto", "natural", "both"))
        c.one_of("global_state", tuple(STATE_INPUTS))
        c.one_of("magnetic_moments", ("none", "collinear", "noncollinear"))


def hidden_irreps(out_irreps: list[tuple[int, int]], cfg: NetworkConfig) -> o3.Irreps:
    """``channels`` copies of each irrep the hidden features carry, for target irreps (l, p)."""
    lmax = max([cfg.lmax] + [l for l, _ in out_irreps])
    natural = all(p == (-1) ** l for l, p in out_irreps)
    # axial moments (1e) need both parities to meet as m_i . m_j (1e x 1e -> 0e)
    both = cfg.parity == "both" or (cfg.parity == "auto" and (not natural or cfg.magnetic_moments == "noncollinear"))
    if cfg.parity == "natural" and not natural:
        raise ValueError("nn.parity 'natural' cannot represent this target (it has pseudo-tensor parts); use 'auto'")
    irs = []
    for l in range(lmax + 1):
        for p in ((1, -1) if both else ((-1) ** l,)):
            irs.append((cfg.channels, (l, p)))
    return o3.Irreps(irs).sort().irreps.simplify()


def _sorted_with_instructions(irreps_out: list, instructions: list) -> tuple[o3.Irreps, list]:
    sorted_irreps, perm, _ = o3.Irreps(irreps_out).sort()
    return sorted_irreps, [(i1, i2, perm[k], mode, w) for i1, i2, k, mode, w in instructions]


class Interaction(torch.nn.Module):
    """One message-passing layer (steps 1-4 of the module docstring).

    forward(h (N, irreps_in.dim), onehot (N, n_species), sh (E, sh.dim), radial (E, n_basis),
    edge_index (2, E)) -> (N, irreps_out.dim)."""

    def __init__(self, irreps_in: o3.Irreps, sh_irreps: o3.Irreps, hidden: o3.Irreps, n_species: int,
                 cfg: NetworkConfig, avg_num_neighbors: float):
        super().__init__()
        allowed = {ir for _, ir in hidden}
        self.avg_num_neighbors = float(avg_num_neighbors)
        self.linear_up = o3.Linear(irreps_in, irreps_in)
        mid, instr = [], []
        for i, (mul, ir_in) in enumerate(irreps_in):
            for j, (_, ir_sh) in enumerate(sh_irreps):
                for ir_out in ir_in * ir_sh:
                    if ir_out in allowed:
                        instr.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir_out))
        irreps_mid, instr = _sorted_with_instructions(mid, instr)
        self.tp = o3.TensorProduct(irreps_in, sh_irreps, irreps_mid, instr, shared_weights=False, internal_weights=False)
        self.radial_net = FullyConnectedNet([cfg.n_basis, cfg.radial_hidden, cfg.radial_hidden, self.tp.weight_numel],
                                            torch.nn.functional.silu)
        self.linear_density = o3.Linear(irreps_mid.simplify(), hidden)

        # correlation: channel-wise products of the running product with a fresh mix of the density
        self.corr_mix = torch.nn.ModuleList()
        self.corr_tp = torch.nn.ModuleList()
        self.corr_out = torch.nn.ModuleList()
        for _ in range(cfg.correlation - 1):
            prod, pinstr = [], []
            for i1, (mul, ir1) in enumerate(hidden):
                for i2, (_, ir2) in enumerate(hidden):
                    for ir_out in ir1 * ir2:
                        if ir_out in allowed:
                            pinstr.append((i1, i2, len(prod), "uuu", True))
                            prod.append((mul, ir_out))
            irreps_prod, pinstr = _sorted_with_instructions(prod, pinstr)
            self.corr_mix.append(o3.Linear(hidden, hidden))
            self.corr_tp.append(o3.TensorProduct(hidden, hidden, irreps_prod, pinstr))
            self.corr_out.append(o3.Linear(irreps_prod.simplify(), hidden))

        scalars = o3.Irreps([(mul, ir) for mul, ir in hidden if ir.l == 0])
        gated = o3.Irreps([(mul, ir) for mul, ir in hidden if ir.l > 0])
        acts = {1: torch.nn.functional.silu, -1: torch.tanh}
        self.gate = Gate(scalars, [acts[ir.p] for _, ir in scalars],
                         o3.Irreps(f"{gated.num_irreps}x0e") if gated.num_irreps else o3.Irreps(""),
                         [torch.sigmoid] if gated.num_irreps else [], gated)
        self.linear_out = o3.Linear(hidden, self.gate.irreps_in)
        self.self_connection = o3.FullyConnectedTensorProduct(irreps_in, o3.Irreps(f"{n_species}x0e"), self.gate.irreps_in)
        self.irreps_out = self.gate.irreps_out

    def forward(self, h, onehot, sh, radial, edge_index):
        receiver, sender = edge_index[0], edge_index[1]
        x = self.linear_up(h)
        msg = self.tp(x[sender], sh, self.radial_net(radial))
        dens = torch.zeros(h.shape[0], msg.shape[1], dtype=msg.dtype, device=msg.device)
        dens = dens.index_add(0, receiver, msg) / self.avg_num_neighbors
        a = self.linear_density(dens)
        out, b = a, a
        for mix, tp, lin in zip(self.corr_mix, self.corr_tp, self.corr_out):
            b = lin(tp(b, mix(a)))
            out = out + b
        return self.gate(self.linear_out(out) + self.self_connection(h, onehot))


class EquivariantNetwork(torch.nn.Module):
    """Element embedding, ``layers`` Interaction blocks, linear readout to the target irreps.

    ``out_irreps``: the target blocks as (l, p), in order. ``n_species``: number of elements (inputs
    are indices into the model's sorted element list). Buffers ``scale`` (n_out,) and ``shift``
    (n_species, n_out) map the readout to the target's units (set from the training data).
    """

    def __init__(self, cfg: NetworkConfig, n_species: int, out_irreps: list[tuple[int, int]], avg_num_neighbors: float):
        super().__init__()
        self.cfg = cfg
        self.n_species = n_species
        hidden = hidden_irreps(out_irreps, cfg)
        lmax = max(ir.l for _, ir in hidden)
        self.sh_irreps = o3.Irreps.spherical_harmonics(lmax)
        self.sh = o3.SphericalHarmonics(self.sh_irreps, normalize=True, normalization="component")
        self.radial = RadialEmbedding(cfg.cutoff, cfg.n_basis, cfg.envelope_p)
        # the structure's total charge / unpaired electrons (invariant scalars) join the element
        # one-hot in the embedding, so every layer sees them and equivariance is untouched
        self.n_state = STATE_INPUTS[cfg.global_state]
        # a collinear moment (a scalar under O(3)) joins them too
        self.n_moment = 1 if cfg.magnetic_moments == "collinear" else 0
        self.embedding = o3.Linear(o3.Irreps(f"{n_species + self.n_state + self.n_moment}x0e"), o3.Irreps(f"{cfg.channels}x0e"))
        layers, irreps = [], o3.Irreps(f"{cfg.channels}x0e")
        # non-collinear moments: an axial vector (1e; e3nn's l = 1 basis is Cartesian x, y, z) per atom
        self.vector_moments = cfg.magnetic_moments == "noncollinear"
        if self.vector_moments:
            self.moment_embedding = o3.Linear(o3.Irreps("1x1e"), o3.Irreps(f"{cfg.channels}x1e"))
            irreps = o3.Irreps(f"{cfg.channels}x0e + {cfg.channels}x1e")
        for _ in range(cfg.layers):
            layers.append(Interaction(irreps, self.sh_irreps, hidden, n_species, cfg, avg_num_neighbors))
            irreps = layers[-1].irreps_out
        self.layers = torch.nn.ModuleList(layers)
        self.irreps_features = sum((layer.irreps_out for layer in layers), o3.Irreps(""))
        self.irreps_out = o3.Irreps([(1, (l, p)) for l, p in out_irreps])
        have = {ir for _, ir in self.irreps_features}
        missing = [str(ir) for _, ir in self.irreps_out if ir not in have]
        if missing:
            raise ValueError(f"hidden features lack target irreps {missing}")
        self.readout = o3.Linear(self.irreps_features, self.irreps_out)
        n_out = self.irreps_out.dim
        self.register_buffer("scale", torch.ones(n_out))
        self.register_buffer("shift", torch.zeros(n_species, n_out))

    def features(self, batch: Batch) -> torch.Tensor:
        """Per-atom features of all layers concatenated, (N, irreps_features.dim): the input of the
        linear readout (used by the last-layer uncertainty estimate). With magnetic moments: the
        mean of the features for m and -m, so everything downstream is exactly time-reversal even."""
        if self.n_moment or self.vector_moments:
            if batch.moments is None:
                raise ValueError("this network takes magnetic moments as inputs: the batch has none")
            return 0.5 * (self._features(batch, batch.moments) + self._features(batch, -batch.moments))
        return self._features(batch, None)

    def _features(self, batch: Batch, moments: torch.Tensor | None) -> torch.Tensor:
        vec = batch.edge_vec
        sh = self.sh(vec)
        radial = self.radial(torch.linalg.norm(vec, dim=1))
        onehot = torch.nn.functional.one_hot(batch.species, self.n_species).to(vec.dtype)
        x = onehot
        if self.n_state:
            x = torch.cat([onehot, batch.state[batch.batch, : self.n_state].to(vec.dtype)], dim=1)
        if moments is not None and not self.vector_moments:
            x = torch.cat([x, moments.to(vec.dtype)[:, None]], dim=1)
        h = self.initial_scalars(x, batch)
        if self.vector_moments:
            h = torch.cat([h, self.moment_embedding(moments.to(vec.dtype))], dim=1)
        feats = []
        for layer in self.layers:
            h = layer(h, onehot, sh, radial, batch.edge_index)
            feats.append(h)
        return torch.cat(feats, dim=1)

    def initial_scalars(self, x: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The initial node features (N, channels) (all 0e) from the invariant inputs ``x`` (N, n_inputs);
        a multi-fidelity network adds its level embedding here (:mod:`.fidelity_heads`)."""
        return self.embedding(x)

    def atom_outputs(self, batch: Batch, features: torch.Tensor | None = None) -> torch.Tensor:
        """Per-atom target irreps in the target's units, (N, n_out)."""
        f = self.features(batch) if features is None else features
        return self.readout(f) * self.scale + self.shift[batch.species]

    def forward(self, batch: Batch, per: str = "structure", pool: str = "sum") -> torch.Tensor:
        """(S, n_out) pooled structure values, or (N, n_out) per-atom values for ``per='atom'``."""
        out = self.atom_outputs(batch)
        if per == "atom":
            return out
        return pool_atoms(out, batch, pool)


def pool_atoms(x: torch.Tensor, batch: Batch, pool: str) -> torch.Tensor:
    """Sum (or mean) of per-atom rows (N, ...) over each structure -> (S, ...)."""
    out = torch.zeros((batch.n_structures,) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device)
    out = out.index_add(0, batch.batch, x)
    if pool == "mean":
        out = out / batch.n_atoms.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
    return out
