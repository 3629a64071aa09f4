"""lambda-SOAP of atoms and of ordered atom pairs, for quantities that live on pairs (AO Hamiltonian blocks).

A pair centre (i -> j) is atom i's neighbour density with atom j moved into a channel of its own, the
*partner* channel: featomic's per-neighbour terms g_ik (SphericalExpansionByPair) sum to atom i's
expansion rho_i (SphericalExpansion) exactly, so the pair's density is rho_i - g_ij in j's element
channel plus g_ij in the partner channel. Its lambda-SOAP blocks X_ij (2l+1, Q) rotate with D^l like an
atom's (the partner channel is one more neighbour type), so a kernel model on them is exactly equivariant,
and (i -> j) differs from (j -> i) (centre and partner swap) as the blocks F_ij and F_ji = F_ij^T do.

This is the lambda-SOAP of atom i in a copy of the structure whose atom j has the partner type (tested),
for one expansion and one by-pair expansion per structure instead of one expansion per pair. Molecules
only (no periodic images of a pair). Written here because featomic computes atom-centred expansions and
their per-pair terms, but not the expansion of a pair with its partner singled out.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.errors import ConfigError
from psilearn.features.basis import featomic_to_e3nn
from psilearn.features.lsoap import LambdaSoap, SoapConfig, _featomic_ready

#: featomic neighbour type of the partner atom j of a pair centre (i -> j); no element has number 0
PARTNER = 0

#: a block type: (Z of the row atom i, Z of the column atom j, on-site)
BlockKey = tuple[int, int, bool]


def block_centres(frames: list[Atoms], cutoff: float) -> dict[BlockKey, np.ndarray]:
    """Every on-site centre (i, i) and every ordered pair (i, j), i != j, closer than ``cutoff``
    (Angstrom), grouped by block type: {(Z_i, Z_j, onsite): (n, 3) int array of (structure, i, j)},
    in structure order. Keys are sorted."""
    rows: dict[BlockKey, list[tuple[int, int, int]]] = {}
    for s, a in enumerate(frames):
        z = a.numbers
        d = a.get_all_distances() if len(a) > 1 else np.zeros((1, 1))
        for i in range(len(a)):
            rows.setdefault((int(z[i]), int(z[i]), True), []).append((s, i, i))
            for j in np.flatnonzero((d[i] < cutoff) & (np.arange(len(a)) != i)):
                rows.setdefault((int(z[i]), int(z[j]), False), []).append((s, i, int(j)))
    return {k: np.array(rows[k], dtype=int).reshape(-1, 3) for k in sorted(rows)}


class PairSoap:
    """Expansion coefficients (and from them lambda-SOAP blocks) of atom and pair centres.

    The coefficients of a centre (C,) are :class:`LambdaSoap`'s kept expansion coefficients with the
    partner channel added (``LambdaSoap(config, [PARTNER, *species])``); :meth:`blocks` turns any set
    of them into normalised lambda-SOAP blocks, so a model may keep the (small) coefficients of its
    sparse centres and rebuild their blocks when it is loaded."""

    def __init__(self, config: SoapConfig, species: list[int]):
        if config.species_embedding:
            raise ConfigError("soap.species_embedding: not supported for pair centres (hamiltonian kernels); set it to 0")
        self.config = config
        self.species = sorted(int(z) for z in species)
        self.soap = LambdaSoap(config, [PARTNER, *self.species])

    @property
    def n_coefficients(self) -> int:
        return self.soap.n_coefficients

    def coefficients(self, frames: list[Atoms], centres: dict[BlockKey, np.ndarray], progress: bool = False) -> dict[BlockKey, np.ndarray]:
        """{key: (n, C)} expansion coefficients of ``centres`` (as :func:`block_centres` gives) of ``frames``."""
        feats = self.soap.compute(frames, [(0, 1)], progress=progress, keep_coefficients=True)
        atom = np.zeros((len(feats.numbers), self.n_coefficients))
        for z, rows in feats.coefficients.items():
            atom[feats.index[z]] = rows
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
        out = {k: atom[offsets[c[:, 0]] + c[:, 1]].copy() for k, c in centres.items()}
        pairs = {(int(s), int(i), int(j)): (k, r) for k, c in centres.items() if not k[2] for r, (s, i, j) in enumerate(c)}
        if pairs:
            self._tag_partners(frames, pairs, out)
        return out

    def blocks(self, coefficients: np.ndarray, channels: list[tuple[int, int]]) -> dict[tuple[int, int], np.ndarray]:
        """{(l, sigma): (n, 2l+1, Q)} normalised lambda-SOAP blocks of centres given by their coefficients (n, C)."""
        return self.soap.from_coefficients(coefficients, channels)

    def _tag_partners(self, frames: list[Atoms], pairs: dict, out: dict) -> None:
        """Move each pair's g_ij from j's element channel to the partner channel of its coefficient row."""
        c = self.config
        n_rad, L = c.max_radial, c.max_angular
        k = len(self.soap.species) * n_rad
        U = featomic_to_e3nn(L)
        l_start = np.concatenate([[0], np.cumsum([(2 * l + 1) * k for l in range(L + 1)])])
        per_scale = self.n_coefficients // len(c.cutoffs)
        partner = self.soap.species.index(PARTNER)
        bs = max(1, c.batch_size)
        for scale, rc in enumerate(c.cutoffs):
            calc = self.soap._expansion(rc, by_pair=True)
            for start in range(0, len(frames), bs):
                chunk = [_featomic_ready(a, start + j) for j, a in enumerate(frames[start : start + bs])]
                if any(a.pbc.any() for a in chunk):
                    raise ValueError("pair centres are defined for molecules only (no periodic images)")
                tmap = calc.compute(chunk)
                for key, block in tmap.items():
                    l, zj = int(key["o3_lambda"]), int(key["second_atom_type"])
                    samples = block.samples.values
                    if len(samples) == 0:
                        continue
                    values = np.einsum("mk,nkq->nmq", U[l], np.asarray(block.values))  # (n, 2l+1, n_rad), e3nn's m
                    t_j = self.soap.species.index(zj)
                    for (s, i, j), g in zip(samples[:, :3], values):
                        hit = pairs.get((int(s) + start, int(i), int(j)))
                        if hit is None:
                            continue  # self terms, or pairs beyond the centres' cutoff
                        key_, row = hit
                        base = scale * per_scale + l_start[l]
                        m = np.arange(2 * l + 1)[:, None] * k
                        cols_j = base + m + t_j * n_rad + np.arange(n_rad)
                        cols_p = base + m + partner * n_rad + np.arange(n_rad)
                        out[key_][row, cols_j] -= g
                        out[key_][row, cols_p] += g
