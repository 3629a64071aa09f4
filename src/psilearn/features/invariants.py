"""One invariant descriptor per structure (for farthest-point splits and maps of a data set)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.features.lsoap import LambdaSoap, SoapConfig

#: a small descriptor: enough to tell structures apart for sampling, quick on a laptop
SPLIT_SOAP = dict(cutoff=5.0, max_radial=4, max_angular=3)


def structure_invariants(frames: list[Atoms], config: SoapConfig | None = None, progress: bool = False) -> np.ndarray:
    """(n_structures, d) invariant SOAP (the lambda-SOAP 0e channel) averaged over the atoms of each
    structure, one column block per centre element (so compositions stay apart), each row scaled to
    unit norm. Rotation, translation and permutation invariant."""
    config = config or SoapConfig(**SPLIT_SOAP)
    species = sorted({int(z) for a in frames for z in a.numbers})
    feats = LambdaSoap(config, species).compute(frames, [(0, 1)], progress=progress)
    blocks = feats.blocks[(0, 1)]
    n = len(frames)
    counts = np.array([len(a) for a in frames], dtype=float)
    parts = []
    for z in species:
        x = blocks[z][:, 0, :]  # (n_atoms_z, Q)
        per_structure = np.zeros((n, x.shape[1]))
        np.add.at(per_structure, feats.structure[feats.index[z]], x)
        parts.append(per_structure / counts[:, None])
    out = np.concatenate(parts, axis=1)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norm > 0, norm, 1.0)
