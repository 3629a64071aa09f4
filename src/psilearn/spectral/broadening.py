"""Gaussian broadening of discrete levels into a continuous spectrum (e.g. a density of states)."""

from __future__ import annotations

import numpy as np


def gaussian_broadening(levels: np.ndarray, weights: np.ndarray, energies: np.ndarray, sigma: float) -> np.ndarray:
    """Sum of normalised Gaussians of width ``sigma`` centred at ``levels``, weighted by ``weights``,
    on the grid ``energies`` (same units as ``levels``); shape (len(energies),), in weight per unit
    energy, so the integral over all energies is ``sum(weights)``. ``weights`` of shape (len(levels), k)
    (e.g. one column per atom of a projected DOS) give k spectra at once, shape (len(energies), k)."""
    e = np.asarray(energies, dtype=float)[:, None]
    g = np.exp(-0.5 * ((e - np.asarray(levels, dtype=float)[None, :]) / sigma) ** 2)
    g /= sigma * np.sqrt(2.0 * np.pi)
    return g @ np.asarray(weights, dtype=float)
