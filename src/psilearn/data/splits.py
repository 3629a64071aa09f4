"""Reproducible train/test splits: random, farthest-point sampling on descriptors, or by group."""

from __future__ import annotations

import numpy as np
from ase import Atoms


def _n_test(n: int, test_fraction: float) -> int:
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    return min(n - 1, max(1, int(round(n * test_fraction))))


def random_split(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle indices 0..n-1 with ``seed``; returns (train, test) index arrays, each sorted."""
    perm = np.random.default_rng(seed).permutation(n)
    k = _n_test(n, test_fraction)
    return np.sort(perm[k:]), np.sort(perm[:k])


def structure_folds(n: int, n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold (0 .. min(n_folds, n) - 1) of each of n structures for k-fold cross-validation by
    structure: balanced, shuffled with ``seed``."""
    return np.random.default_rng(seed).permutation(n) % min(n_folds, n)


def farthest_point_order(x: np.ndarray, first: int = 0, n: int | None = None) -> np.ndarray:
    """Greedy farthest-point ordering of the rows of ``x`` (Euclidean), starting at ``first``.
    Stops early once every remaining row duplicates a selected one."""
    n = len(x) if n is None else min(n, len(x))
    sq = np.einsum("ij,ij->i", x, x)
    chosen = [first]
    d = sq + sq[first] - 2 * x @ x[first]
    while len(chosen) < n:
        j = int(np.argmax(d))
        if d[j] <= 1e-12 * max(sq.max(), 1e-300):
            break
        chosen.append(j)
        d = np.minimum(d, sq + sq[j] - 2 * x @ x[j])
    return np.array(chosen, dtype=int)


def farthest_point_split(descriptors: np.ndarray, n_train: int) -> tuple[np.ndarray, np.ndarray]:
    """Training set = the ``n_train`` structures picked by farthest-point sampling on per-structure
    ``descriptors`` (n, d); the rest is the test set. Deterministic."""
    order = farthest_point_order(np.asarray(descriptors, float), 0, n_train)
    train = np.sort(order)
    test = np.setdiff1d(np.arange(len(descriptors)), train)
    return train, test


def group_split(frames: list[Atoms], key: str, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split so that all structures sharing ``atoms.info[key]`` (e.g. a molecule id or trajectory)
    land on the same side."""
    missing = [i for i, a in enumerate(frames) if key not in a.info]
    if missing:
        raise ValueError(f"group key {key!r} missing from atoms.info of frame {missing[0]}")
    groups = np.array([str(a.info[key]) for a in frames])
    uniq = np.unique(groups)
    if len(uniq) < 2:
        raise ValueError(f"group split needs at least two groups of {key!r}, found {len(uniq)}")
    g_train, g_test = random_split(len(uniq), test_fraction, seed)
    test = np.flatnonzero(np.isin(groups, uniq[g_test]))
    train = np.flatnonzero(np.isin(groups, uniq[g_train]))
    return train, test
