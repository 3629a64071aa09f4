"""The recursive multi-fidelity model's joint posterior, level by level (cost-aware active learning).

Under the recursive scheme (:mod:`psilearn.models.fidelity.multifidelity`) the target level is, per
irreducible block b,

    f_T = sum_k P_k delta_k (+ the levels' means),   P_k = rho_{k+1} ... rho_T (1 for the target level),

with the levels' corrections delta_k independent. So the target level's posterior covariance between
the noise-free irreps of samples a and b is

    C_T(a, b) = sum_k P_k^2 C_k(a, b),

C_k that of level k's own model (its ``posterior_factors``: C_k = R_k R_k^T), and in the model's own
accounting a level-k label at x observes delta_k(x) with level k's noise sigma2_k: it conditions C_k
only. Scaling R_k by P_k and sigma2_k by P_k^2 (block by block) puts every level in target-level units,
so that conditioning level k's scaled factors on a scaled noisy label gives exactly the reduction of
the target level's covariance that the label brings.

What no label reduces is left out, as in ``posterior_factors``: the noise, and the prior variance
outside the sparse points' span. **Affine levels** (an experiment: y_k = rho_k f_{k-1} + offset + noise,
:mod:`psilearn.models.fidelity.calibration`) have no correction model: their own term of the target
variance is the calibration's white noise, and their label conditions no level's correction (the
recursive scheme lets a level-k label inform level k only), so in the model's accounting it reduces
nothing; such a level has no factors (None).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms


def level_scales(model) -> list[np.ndarray]:
    """Per level k (cheapest first, up to the target level): (n_blocks,) P_k = rho_{k+1} ... rho_T,
    the factor that carries level k's correction into the target level, block by block."""
    top = model.levels.index(model.target_level)
    scale, out = np.ones(len(model.target.blocks)), []
    for k in range(top, -1, -1):
        out.append(scale.copy())
        if k:
            scale = scale * np.asarray(model.rho[k - 1], float)
    return out[::-1]


def level_posterior_factors(model, frames: list[Atoms]) -> list[list[tuple[np.ndarray, float]] | None] | None:
    """Per level k (cheapest first, up to the target level): a list of (R, sigma2) per irrep occurrence
    of level k's model, scaled into the target level (R by P_k, sigma2 by P_k^2 of its block), so that
    sum_k R_k(a) R_k(b)^T is the target level's posterior covariance of samples a and b of ``frames``
    (label units squared, orthonormal irreps basis; see the module docstring); None for an affine level
    (no correction model: its labels reduce nothing in the model's accounting). None altogether when a
    level's kind has no joint posterior (active learning then uses its surrogate kernel)."""
    if not model.models:
        raise RuntimeError("model is not fitted")
    scales = level_scales(model)
    out: list[list[tuple[np.ndarray, float]] | None] = []
    for k, p in enumerate(scales):
        inner = model.models[k]
        if inner is None:  # an affine calibration
            out.append(None)
            continue
        inner.progress = model.progress
        factors = inner.posterior_factors(frames)
        if factors is None:
            return None
        blocks = inner.posterior_blocks()
        if len(blocks) != len(factors):
            raise RuntimeError(f"level {model.levels[k]}: {len(factors)} posterior factors for {len(blocks)} blocks")
        out.append([(r * p[b], float(s2 * p[b] ** 2)) for (r, s2), b in zip(factors, blocks)])
    return out
