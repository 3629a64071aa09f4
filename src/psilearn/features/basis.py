"""Relating featomic's real spherical harmonics to e3nn's.

featomic and e3nn both use real spherical harmonics, but with different orderings, signs and polar
axes. Equivariant features must live in the same basis as the target's irreps (which come from
e3nn.io.CartesianTensor), so we need, for each degree l, the orthogonal U_l with
``Y_e3nn(r) = U_l Y_featomic(r)``. Rather than encoding either convention by hand, we measure it:
featomic's spherical expansion of a single neighbour at direction r is R_nl(|r|) Y_lm(r), so
regressing e3nn's harmonics on it over many directions recovers U_l exactly (up to a global sign,
which cancels in every kernel).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from psilearn._tables import lookup


@lru_cache(maxsize=None)
def featomic_to_e3nn(l_max: int) -> tuple[np.ndarray, ...]:
    """Orthogonal matrices U_l (2l+1, 2l+1), l = 0..l_max, mapping featomic's m-components to e3nn's
    (from the shipped table of measured rotations when it covers l_max, see :mod:`psilearn._tables`)."""
    shipped = [lookup(f"featomic_to_e3nn/{l}", ("e3nn", "featomic")) for l in range(l_max + 1)]
    if all(u is not None for u in shipped):
        return tuple(shipped)
    return measure_featomic_to_e3nn(l_max)


def measure_featomic_to_e3nn(l_max: int) -> tuple[np.ndarray, ...]:
    """:func:`featomic_to_e3nn` measured with featomic and e3nn (imports torch)."""
    import ase
    import torch

    from psilearn.features._featomic import import_featomic

    featomic = import_featomic()
    from e3nn import o3

    rng = np.random.default_rng(12345)
    dirs = rng.normal(size=(4 * (2 * l_max + 1) + 8, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    systems = [ase.Atoms("HH", positions=[[0, 0, 0], 1.2 * d]) for d in dirs]
    calc = featomic.SphericalExpansion(
        cutoff={"radius": 3.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        density={"type": "Gaussian", "width": 0.3},
        basis={"type": "TensorProduct", "max_angular": l_max, "radial": {"type": "Gto", "max_radial": 1}},
    )
    expansion = calc.compute(systems)
    out = []
    for l in range(l_max + 1):
        block = expansion.block(o3_lambda=l)
        samples = block.samples.values
        keep = samples[:, 1] == 0  # expansion around atom 0 of each system
        yf = block.values[keep][:, :, 0]  # (n_dirs, 2l+1), proportional to Y_featomic
        if l == 0:
            out.append(np.ones((1, 1)))
            continue
        ye = o3.spherical_harmonics(l, torch.tensor(dirs), normalize=True).numpy()
        # ye = yf @ M, M = c U^T with a scalar c (radial value times normalisation)
        m, *_ = np.linalg.lstsq(yf, ye, rcond=None)
        resid = np.abs(yf @ m - ye).max() / np.abs(ye).max()
        u, s, vt = np.linalg.svd(m.T)
        if resid > 1e-8 or s.max() - s.min() > 1e-8 * s.max():
            raise RuntimeError(f"featomic and e3nn harmonics at l={l} are not related by a rotation")
        out.append(u @ vt)
    return tuple(out)
