"""Reproducible train/test splits: random, farthest-point sampling on descriptors, or by group."""

from __future__ import annotations

from collections.abc import Callable

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


def farthest_point_order(x: np.ndarray, first: int = 0, n: int | None = None,
                         dots: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
    """Greedy farthest-point ordering of the rows of ``x`` (Euclidean), starting at ``first``.
    Stops early once every remaining row duplicates a selected one. ``dots(j)``: the inner products
    of every row with row j (default ``x @ x[j]``): a row of a precomputed Gram matrix (one row
    instead of a bandwidth-bound pass over ``x``), or of any kernel whose diagonal is |x_i|^2, in
    whose feature space the distances are then taken."""
    n = len(x) if n is None else min(n, len(x))
    sq = np.einsum("ij,ij->i", x, x)
    if dots is None:
        dots = lambda j: x @ x[j]  # noqa: E731
    chosen = [first]
    d = sq + sq[first] - 2 * dots(first)
    while len(chosen) < n:
        j = int(np.argmax(d))
        if d[j] <= 1e-12 * max(sq.max(), 1e-300):
            break
        chosen.append(j)
        d = np.minimum(d, sq + sq[j] - 2 * dots(j))
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


# ---- several parts by fractions (psilearn split: train / validation / test) ----------------------
def check_fractions(fractions) -> list[float]:
    """Two or more fractions, each in (0, 1), summing to 1 (to 1e-6); ValueError otherwise."""
    try:
        out = [float(f) for f in fractions]
    except (TypeError, ValueError):
        raise ValueError(f"fractions must be numbers, got {fractions!r}") from None
    if len(out) < 2 or any(not 0 < f < 1 for f in out) or abs(sum(out) - 1) > 1e-6:
        raise ValueError(f"fractions must be two or more numbers in (0, 1) summing to 1 (e.g. 0.8,0.1,0.1), got {out}")
    return out


def fraction_counts(n: int, fractions) -> np.ndarray:
    """Sizes of the parts of ``n`` items split by ``fractions`` (largest remainders, so they sum to
    ``n``); every part gets at least one item. ValueError when ``n`` is smaller than the number of parts."""
    f = np.asarray(check_fractions(fractions))
    if n < len(f):
        raise ValueError(f"cannot split {n} structures into {len(f)} non-empty parts")
    exact = f * n
    counts = np.maximum(np.floor(exact).astype(int), 1)
    while counts.sum() < n:  # hand out the rest by largest remainder
        counts[int(np.argmax(exact - counts))] += 1
    while counts.sum() > n:  # only after the minimum of one: take from the most over-served part
        over = np.where(counts > 1, counts - exact, -np.inf)
        counts[int(np.argmax(over))] -= 1
    return counts


def random_fraction_split(n: int, fractions, seed: int = 0) -> list[np.ndarray]:
    """Indices 0..n-1 shuffled with ``seed`` and cut into parts of ``fractions`` of n (each sorted)."""
    perm = np.random.default_rng(seed).permutation(n)
    ends = np.cumsum(fraction_counts(n, fractions))
    return [np.sort(p) for p in np.split(perm, ends[:-1])]


def group_fraction_split(groups, fractions, seed: int = 0) -> list[np.ndarray]:
    """Parts of about ``fractions`` of the structures such that all structures of a group (equal
    values of ``groups``, one per structure) land in the same part. Groups are taken in an order
    shuffled with ``seed``, each going to the part furthest below its share; a part left empty takes
    the last group given to the part with the most groups. ValueError with fewer groups than parts."""
    groups = np.asarray([str(g) for g in groups])
    f = np.asarray(check_fractions(fractions))
    uniq, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    if len(uniq) < len(f):
        raise ValueError(f"a split by group into {len(f)} parts needs at least {len(f)} groups, found {len(uniq)}")
    order = np.random.default_rng(seed).permutation(len(uniq))
    target, filled = f * len(groups), np.zeros(len(f))
    part_of, members = np.empty(len(uniq), int), [[] for _ in f]
    for g in order:
        k = int(np.argmax(target - filled))
        part_of[g], filled[k] = k, filled[k] + sizes[g]
        members[k].append(g)
    for k in range(len(f)):
        if not members[k]:
            donor = max(range(len(f)), key=lambda j: len(members[j]))
            g = members[donor].pop()
            part_of[g] = k
            members[k].append(g)
    return [np.flatnonzero(part_of[inverse] == k) for k in range(len(f))]


def farthest_point_fraction_split(descriptors: np.ndarray, fractions, seed: int = 0) -> list[np.ndarray]:
    """First part (the training set) = farthest-point sampling on per-structure ``descriptors``
    (n, d), starting from a structure drawn with ``seed``, so it spans the data; the remaining
    structures are shuffled with ``seed`` into the other parts. Duplicates that FPS cannot tell
    apart are added to the first part at random."""
    x = np.asarray(descriptors, float)
    counts = fraction_counts(len(x), fractions)
    rng = np.random.default_rng(seed)
    picked = farthest_point_order(x, int(rng.integers(len(x))), int(counts[0]))
    rest = rng.permutation(np.setdiff1d(np.arange(len(x)), picked))
    short = int(counts[0]) - len(picked)
    first, rest = np.concatenate([picked, rest[:short]]), rest[short:]
    ends = np.cumsum(counts[1:])
    return [np.sort(first), *[np.sort(p) for p in np.split(rest, ends[:-1])]]
