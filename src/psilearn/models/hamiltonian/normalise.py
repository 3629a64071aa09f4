"""Output normalisation of the heads from the training labels.

Per head (an element's on-site block, an ordered element pair's off-site block) and per irrep of its
layout: the shift is the training mean on invariant (0e) irreps, zero elsewhere (a constant vector or
tensor would break rotation equivariance); the scale is the root mean square of what remains, over
the irrep's 2L+1 components and all training samples (one number per irrep, so equivariant).
"""

from __future__ import annotations

import numpy as np

from psilearn.models._torch.graph import Graph
from psilearn.models.hamiltonian.layout import pair_name
from psilearn.targets.hamiltonian import HamiltonianTarget

#: structures used for the statistics (evenly spaced over the training set beyond this)
MAX_STAT_STRUCTURES = 2000


def _stats(target: HamiltonianTarget, row: str, col: str, onsite: bool, vectors: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    layout = target.pair_layout(row, col, onsite)
    d = layout[-1].start + layout[-1].dim
    shift, scale = np.zeros(d), np.ones(d)
    if not vectors:
        return shift, scale
    x = np.stack(vectors)
    for cb in layout:
        cols = x[:, cb.cols]
        if cb.L == 0 and cb.p == 1:
            shift[cb.cols] = cols.mean(0)
        rms = float(np.sqrt(np.mean((cols - shift[cb.cols]) ** 2)))
        scale[cb.cols] = rms if rms > 1e-12 else 1.0
    return shift, scale


def head_statistics(target: HamiltonianTarget, data, graphs: list[Graph], train_idx) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{head name: (shift, scale)} over the training structures ``train_idx`` of a HamiltonianDataset
    (heads never seen in training keep shift 0 and scale 1)."""
    idx = np.asarray(train_idx)
    if len(idx) > MAX_STAT_STRUCTURES:
        idx = idx[np.linspace(0, len(idx) - 1, MAX_STAT_STRUCTURES).astype(int)]
    vectors: dict[tuple[str, str, bool], list[np.ndarray]] = {}
    for i in idx:
        a = data.frames[i]
        syms = a.get_chemical_symbols()
        off = target.offsets(syms)
        h = data.matrix(i)
        for k, s in enumerate(syms):
            block = h[off[k]:off[k + 1], off[k]:off[k + 1]]
            vectors.setdefault((s, s, True), []).append(target.couple(s, s, block, True))
        for r, c in graphs[i].edge_index.T:
            block = h[off[r]:off[r + 1], off[c]:off[c + 1]]
            vectors.setdefault((syms[r], syms[c], False), []).append(target.couple(syms[r], syms[c], block, False))
    elements = sorted({s for a in data.frames for s in a.get_chemical_symbols()})
    out = {e: _stats(target, e, e, True, vectors.get((e, e, True), [])) for e in elements}
    for a in elements:
        for b in elements:
            out[pair_name(a, b)] = _stats(target, a, b, False, vectors.get((a, b, False), []))
    return out
