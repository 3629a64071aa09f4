"""A multi-fidelity equivariant network: one shared message-passing body, a learned level embedding,
one equivariant readout per level of theory, and the loss that scores each structure on its own level.

For a structure computed at level k (``Batch.fidelity``), the per-atom output is

    y_i = readout_k(f_i) * scale_k + shift_k[Z_i],    f = body(Z, r; e_k),

where ``body`` is the :class:`~psilearn.models._torch.network.EquivariantNetwork` body whose initial
node scalars (0e channels) get the level's learned vector e_k added (zero at initialisation), and
``readout_k`` is an ``o3.Linear`` from the same feature irreps to the Target's irreps. The embedding
enters invariant channels only and every readout is an equivariant linear map, so each level's output
is exactly O(3)-equivariant. ``scale_k`` (n_out,) and ``shift_k`` (n_species, n_out) are each level's
own normalisation (set from that level's training data). With one level the network is the plain one
(same parameters, drawn from the same random numbers: the extra readouts are copies of the first, made
without random numbers, and there is no embedding), so a one-level fit is the plain nn fit.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from e3nn import o3

from psilearn.config import Checks, Options
from psilearn.models._torch.graph import Batch
from psilearn.models._torch.network import EquivariantNetwork, NetworkConfig
from psilearn.models._torch.train import TargetLoss


@dataclass
class FidelityHeadsConfig(Options):
    """Multi-fidelity network options (YAML section ``nn_fidelity:``)."""

    section: ClassVar[str] = "nn_fidelity"

    # 'samples': every sample weighs 1 (a level counts in proportion to its number of samples);
    # 'balanced': each level's samples weigh n_total / (n_levels * n_level), so every level counts as
    # much as any other (measured: docs/fidelity.md)
    level_weights: str = "samples"
    # what early stopping (and the kept epoch) watches: 'all' levels' validation loss, or the 'target'
    # level's only (its validation structures; all levels when it has none)
    early_stopping: str = "all"

    def check(self, c: Checks) -> None:
        c.one_of("level_weights", ("balanced", "samples"))
        c.one_of("early_stopping", ("all", "target"))


def level_weights(mode: str, counts: np.ndarray) -> np.ndarray:
    """Loss weight of one sample of each level, (n_levels,), from the number of samples per level."""
    counts = np.asarray(counts, float)
    if mode == "samples":
        return np.ones(len(counts))
    return counts.sum() / (len(counts) * np.maximum(counts, 1.0))


class FidelityHeadsNetwork(EquivariantNetwork):
    """:class:`EquivariantNetwork` with ``n_levels`` readouts and a level embedding.

    Buffers ``scale`` (n_levels, n_out) and ``shift`` (n_levels, n_species, n_out)."""

    def __init__(self, cfg: NetworkConfig, n_species: int, out_irreps: list[tuple[int, int]], avg_num_neighbors: float, n_levels: int):
        super().__init__(cfg, n_species, out_irreps, avg_num_neighbors)
        if n_levels < 1:
            raise ValueError("a multi-fidelity network needs at least one level")
        self.n_levels = int(n_levels)
        # readouts of levels 1.. start as copies of level 0's (no random numbers drawn: a one-level
        # network is parameter for parameter the plain one)
        self.extra_readouts = torch.nn.ModuleList([copy.deepcopy(self.readout) for _ in range(self.n_levels - 1)])
        # the level embedding: one learned vector of invariant (0e) channels per level, zero at start
        self.level_embedding = torch.nn.Parameter(torch.zeros(self.n_levels, cfg.channels)) if self.n_levels > 1 else None
        n_out = self.irreps_out.dim
        self.register_buffer("scale", torch.ones(self.n_levels, n_out))
        self.register_buffer("shift", torch.zeros(self.n_levels, n_species, n_out))

    @property
    def readouts(self) -> list[o3.Linear]:
        return [self.readout, *self.extra_readouts]

    @staticmethod
    def _atom_levels(batch: Batch) -> torch.Tensor:
        if batch.fidelity is None:
            raise ValueError("a multi-fidelity network needs each structure's level (Batch.fidelity)")
        return batch.fidelity[batch.batch]

    def initial_scalars(self, x: torch.Tensor, batch: Batch) -> torch.Tensor:
        h = self.embedding(x)
        if self.level_embedding is None:
            return h
        return h + self.level_embedding[self._atom_levels(batch)].to(h.dtype)

    def atom_outputs(self, batch: Batch, features: torch.Tensor | None = None) -> torch.Tensor:
        """Per-atom target irreps of each atom's own level (its structure's), (N, n_out)."""
        f = self.features(batch) if features is None else features
        level = self._atom_levels(batch)
        if self.n_levels == 1:
            out = self.readout(f)
        else:  # every head on every atom (linear maps: cheap), then each atom's own
            heads = torch.stack([r(f) for r in self.readouts])  # (n_levels, N, n_out)
            out = heads[level, torch.arange(f.shape[0], device=f.device)]
        return out * self.scale[level] + self.shift[level, batch.species]


class FidelityLoss(TargetLoss):
    """:class:`TargetLoss` with a loss scale per level: ``loss_scale`` (n_levels, n_out), each level's
    spread of the normalised residual per column (so every level's samples are weighted by the inverse
    of its own label variance), and a weight per level ``level_weight`` (n_levels,) multiplying each
    sample's loss. Samples are those of :class:`TargetLoss`; the level of each comes from ``Batch.fidelity``.

    ``watch`` (a level index, or None): in evaluation mode (``net.training`` False, as in
    :meth:`Trainer.evaluate`, the validation loss that early stopping and the kept epoch follow) only
    that level's samples are scored, so early stopping watches that level alone; training is unchanged."""

    def __init__(self, per: str, pool: str, loss_scale: np.ndarray, col_weight: np.ndarray, level_weight: np.ndarray | None = None,
                 watch: int | None = None):
        super().__init__(per, pool, np.ones(np.shape(loss_scale)[-1]), col_weight)
        self.level_scale = np.atleast_2d(np.asarray(loss_scale, float))
        self.level_weight = np.ones(len(self.level_scale)) if level_weight is None else np.asarray(level_weight, float)
        self.watch = watch

    def terms(self, net: torch.nn.Module, batch) -> torch.Tensor:
        b, y, mask = batch
        level = b.fidelity if self.per == "structure" else b.fidelity[b.batch]
        if mask is not None:
            level = level[mask]
        terms = self.scaled_terms(net, batch, torch.as_tensor(self.level_scale, dtype=y.dtype, device=y.device)[level])
        if not np.all(self.level_weight == 1.0):  # (one level: exactly the TargetLoss)
            terms = terms * torch.as_tensor(self.level_weight, dtype=y.dtype, device=y.device)[level]
        if self.watch is not None and not net.training:  # validation: the watched level's samples only
            terms = terms[level == self.watch]
        return terms
