"""Per-element composition baseline, written once for every model kind.

The invariant (0e) part of most observables is dominated by a constant per element: per structure
``y ~ sum_Z n_Z c_Z`` (pool ``sum``) or ``sum_Z (n_Z / n) c_Z`` (pool ``mean``), per atom ``y ~ c_Z``
of the atom's element. sagpr, nn and spectrum subtract it before learning the rest, qeq uses the
same one-hot for its electronegativity baseline, and the ``baseline`` kind is nothing else.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms


def element_onehot(numbers: np.ndarray, species: list[int]) -> np.ndarray:
    """(n_atoms, n_species) one-hot of each atom's element among ``species``."""
    return (np.asarray(numbers)[:, None] == np.asarray(species)[None]).astype(float)


def composition_design(frames: list[Atoms], species: list[int], per: str, pool: str = "sum") -> np.ndarray:
    """Design matrix of the composition baseline: per atom (n_atoms, n_species) one-hot; per
    structure (n_structures, n_species) element counts, or fractions for pool ``mean``."""
    if per == "atom":
        return element_onehot(np.concatenate([a.numbers for a in frames]), species)
    counts = np.array([[np.sum(a.numbers == z) for z in species] for a in frames], float).reshape(len(frames), len(species))
    return counts / counts.sum(1, keepdims=True) if pool == "mean" else counts


def fit_composition(design: np.ndarray, y: np.ndarray, ridge: float = 1e-8) -> np.ndarray:
    """Least-squares coefficients (n_species,) or (n_species, m) of ``y ~ design @ coef``.

    A tiny ridge, relative to the mean diagonal of the Gram matrix (so independent of units and of
    the number of samples), makes the normal equations solvable when compositions are linearly
    dependent, which is common: a data set of one molecule type (water only) fixes 2 c_H + c_O but
    not c_H and c_O apart. The ridge then picks the (near) minimum-norm split while changing fitted
    values by a relative ~``ridge``; with full-rank data it is negligible."""
    gram = design.T @ design
    scale = float(np.trace(gram)) / max(len(gram), 1)
    lam = ridge * scale if scale > 0 else ridge
    return np.linalg.solve(gram + lam * np.eye(len(gram)), design.T @ y)
