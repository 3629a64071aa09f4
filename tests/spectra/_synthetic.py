"""Synthetic spectra of random molecules: each atom contributes a Gaussian whose position depends on
its element and its local environment (smooth, rotation invariant), so a SOAP kernel can learn it."""

import numpy as np
from tests.core._synth import molecules

from psilearn.features import SoapConfig

GRID = np.linspace(-6.0, 6.0, 121)  # spacing 0.1
CENTRE = {1: -2.0, 6: 0.0, 8: 2.0}
SOAP = SoapConfig(cutoff=4.0, max_radial=4, max_angular=3)


def local_spectra(a, grid=GRID) -> np.ndarray:
    """(n_atoms, n_grid): one Gaussian per atom, its height and position set by its coordination."""
    d = np.linalg.norm(a.positions[:, None] - a.positions[None], axis=-1)
    coord = np.sum(np.exp(-((d / 1.5) ** 2)) * (d > 0), axis=1)
    mu = np.array([CENTRE[z] for z in a.numbers]) + 0.1 * coord
    height = 1.0 + 0.5 * coord
    return height[:, None] * np.exp(-0.5 * ((grid[None, :] - mu[:, None]) / 0.45) ** 2)


def labelled(n: int, seed: int = 0, shifts=None, key: str = "dos"):
    """Molecules with info[key] (total spectrum, moved by ``shifts`` if given) and arrays['ldos']."""
    from psilearn.spectral.shift import apply_shift

    frames = molecules(seed, n)
    for i, a in enumerate(frames):
        loc = local_spectra(a)
        total = loc.sum(0)
        if shifts is not None:
            total = apply_shift(GRID, total, shifts[i])
        a.info[key] = total
        a.info[key + "_grid"] = GRID
        a.arrays["ldos"] = loc
    return frames
