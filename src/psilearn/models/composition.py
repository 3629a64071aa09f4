"""Per-element composition baseline, written once for every model kind.

The invariant (0e) part of most observables is dominated by a constant per element: per structure
``y ~ sum_Z n_Z c_Z`` (pool ``sum``) or ``sum_Z (n_Z / n) c_Z`` (pool ``mean``), per atom ``y ~ c_Z``
of the atom's element, per atom pair ``y ~ c_{Z_i Z_j}`` of the pair's two elements. sagpr, nn and spectrum subtract it before learning the rest, qeq uses the
same one-hot for its electronegativity baseline, and the ``baseline`` kind is nothing else.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms


def element_onehot(numbers: np.ndarray, species: list[int]) -> np.ndarray:
    """(n_atoms, n_species) one-hot of each atom's element among ``species``."""
    return (np.asarray(numbers)[:, None] == np.asarray(species)[None]).astype(float)


def element_pair_types(species: list[int]) -> list[tuple[int, int]]:
    """The unordered element pairs (Z_a <= Z_b) of ``species``, in a fixed order."""
    species = sorted(int(z) for z in species)
    return [(a, b) for k, a in enumerate(species) for b in species[k:]]


def pair_onehot(frames: list[Atoms], pairs: list[np.ndarray], species: list[int]) -> np.ndarray:
    """(n_pairs_total, n_pair_types) one-hot of each pair's element pair (:func:`element_pair_types`)."""
    index = {t: k for k, t in enumerate(element_pair_types(species))}
    rows = []
    for a, p in zip(frames, pairs):
        z = np.sort(np.asarray(a.numbers)[np.asarray(p, dtype=int).reshape(-1, 2)], axis=1)
        rows.extend(index[(int(x), int(y))] for x, y in z)
    out = np.zeros((len(rows), len(index)))
    out[np.arange(len(rows)), rows] = 1.0
    return out


def composition_design(frames: list[Atoms], species: list[int], per: str, pool: str = "sum",
                       pairs: list[np.ndarray] | None = None) -> np.ndarray:
    """Design matrix of the composition baseline: per atom (n_atoms, n_species) one-hot; per
    structure (n_structures, n_species) element counts, or fractions for pool ``mean``; per pair
    (n_pairs, n_pair_types) one-hot of the element pair (``pairs``: each structure's (P, 2) pairs)."""
    if per == "pair":
        if pairs is None:
            raise ValueError("a per-pair composition design needs the pairs")
        return pair_onehot(frames, pairs, species)
    if per == "atom":
        return element_onehot(np.concatenate([a.numbers for a in frames]), species)
    counts = np.array([[np.sum(a.numbers == z) for z in species] for a in frames], float).reshape(len(frames), len(species))
    return counts / counts.sum(1, keepdims=True) if pool == "mean" else counts


#: shrinkage strengths tried by :func:`choose_shrinkage`, relative to the mean diagonal of the Gram matrix
SHRINK_GRID = (0.0, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0)


def _solve(gram: np.ndarray, rhs: np.ndarray, lam_zero: float, lam_common: float) -> np.ndarray:
    """(G + lam_zero I + lam_common P)^-1 rhs, P = I - 11^T/s the projector off the common value."""
    s = len(gram)
    a = gram + lam_zero * np.eye(s) + lam_common * (np.eye(s) - np.full((s, s), 1.0 / s))
    return np.linalg.solve(a, rhs)


def loo_residuals(design: np.ndarray, y: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """Exact leave-one-out residuals (n, m) of the linear fit y (n, m) ~ design @ (inv @ design^T y), ``inv``
    the inverse of the regularised Gram matrix: the fitted residuals divided by 1 - leverage."""
    hat = np.sum((design @ inv) * design, axis=1)  # leverages
    return (y - design @ (inv @ (design.T @ y))) / np.maximum(1.0 - hat, 1e-12)[:, None]


def choose_shrinkage(design: np.ndarray, y: np.ndarray, ridge: float = 1e-8) -> float:
    """The strength (relative to the mean Gram diagonal, from :data:`SHRINK_GRID`) with which the
    per-element coefficients are pulled towards one common value, chosen by exact leave-one-out
    error (summed over the columns of ``y``, each relative to its variance). 0 (no pull) unless it
    lowers that error, which it does when elements are seen in few samples: 71 elements in 80
    crystals make the unshrunk fit interpolate its training set and extrapolate by hundreds of GPa.
    Searched only when there are fewer than 10 samples per coefficient and at most 300 coefficients
    (cost n s^2 per grid point); else 0: well-determined fits stay plain least squares."""
    n, s = design.shape
    if s < 2 or n >= 10 * s or s > 300:
        return 0.0
    y2 = y.reshape(n, -1)
    if y2.size == 0:  # no columns to fit (a target without invariant parts)
        return 0.0
    gram = design.T @ design
    scale = float(np.trace(gram)) / s
    if scale <= 0:
        return 0.0
    var = y2.var(0)
    keep = var > 1e-12 * var.max()  # constant columns (spectrum tails) do not vote
    weight = np.zeros_like(var)
    weight[keep] = 1.0 / var[keep]
    best, best_err = 0.0, np.inf
    for rel in SHRINK_GRID:
        loo = loo_residuals(design, y2, _solve(gram, np.eye(s), ridge * scale, rel * scale))
        err = float(np.sum(np.mean(loo**2, axis=0) * weight))
        if err < best_err * (1 - 1e-9):
            best, best_err = rel, err
    return best


def fit_composition(design: np.ndarray, y: np.ndarray, ridge: float = 1e-8, shrink: bool = True) -> np.ndarray:
    """Least-squares coefficients (n_species,) or (n_species, m) of ``y ~ design @ coef``.

    A tiny ridge, relative to the mean diagonal of the Gram matrix (so independent of units and of
    the number of samples), makes the normal equations solvable when compositions are linearly
    dependent, which is common: a data set of one molecule type (water only) fixes 2 c_H + c_O but
    not c_H and c_O apart. The ridge then picks the (near) minimum-norm split while changing fitted
    values by a relative ~``ridge``; with full-rank data it is negligible. ``shrink``: also pull the
    coefficients towards their common value with the strength :func:`choose_shrinkage` picks by
    leave-one-out (0 unless elements are seen in few samples; a common value is a constant per
    atom, or for pool ``mean`` the mean, so the pull never moves the fit off the data's mean)."""
    gram = design.T @ design
    scale = float(np.trace(gram)) / max(len(gram), 1)
    lam = ridge * scale if scale > 0 else ridge
    common = choose_shrinkage(design, y, ridge) * scale if shrink and scale > 0 else 0.0
    return _solve(gram, design.T @ y, lam, common)


def scaled_composition(design: np.ndarray, y: np.ndarray, coef_big: np.ndarray) -> np.ndarray:
    """Composition coefficients (n_species, n_cols) of ``y`` (n, n_cols) given another level's ``coef_big``
    (multi-fidelity ICM): those, scaled per column by least
    squares, plus a composition correction kept only when it lowers the leave-one-out error (a few
    labels would otherwise spend n_species parameters of the level's signal on its mean)."""
    m = design @ coef_big
    s = np.array([float(m[:, c] @ y[:, c]) / max(float(m[:, c] @ m[:, c]), 1e-300) for c in range(y.shape[1])])
    rem = y - m * s
    delta = fit_composition(design, rem)
    gram = design.T @ design
    inv = np.linalg.pinv(gram + 1e-8 * max(np.trace(gram) / max(len(gram), 1), 1e-300) * np.eye(len(gram)))
    loo = loo_residuals(design, rem, inv)
    keep = float(np.mean(loo**2)) < float(np.mean(rem**2))
    return coef_big * s + (delta if keep else 0.0)


def composition_record(target, data) -> dict | None:
    """The composition baseline of the invariant (0e) blocks of ``target`` fitted on ``data`` (a
    Dataset), as JSON-able metadata that every model file keeps, so that test errors can be
    reported relative to it (:func:`psilearn.evaluation.evaluate`). None for spectrum targets.

    ``species`` (atomic numbers), ``columns`` (irreps columns of the 0e blocks), ``coef``
    (n_species x n_columns; per-pair targets: n_pair_types x n_columns) in the label's units."""
    if target.is_spectrum:
        return None
    species = [int(z) for z in data.species]
    columns = [b.start for b in target.blocks if b.l == 0 and b.p == 1]
    coef = np.zeros((len(species), len(columns)))
    if columns:
        design = composition_design(data.frames, species, target.per, target.pool, getattr(data, "pairs", None))
        if getattr(data, "labelled", None) is not None:  # labels on only some atoms
            design = design[data.labelled]
        coef = fit_composition(design, target.to_irreps(data.values)[:, columns]).reshape(design.shape[1], len(columns))
    return {"species": species, "columns": columns, "coef": coef.tolist()}


def composition_predict(record: dict, target, frames: list[Atoms], pairs: list[np.ndarray] | None = None) -> np.ndarray:
    """Irreps (n_samples, n_irreps) predicted by a :func:`composition_record`: the 0e columns from
    the composition, zero elsewhere (the only O(3)-equivariant function of a composition).
    Per-pair targets: ``pairs`` as in :func:`composition_design`."""
    design = composition_design(frames, record["species"], target.per, target.pool, pairs)
    n_irreps = max(b.start + b.dim for b in target.blocks)
    out = np.zeros((len(design), n_irreps))
    if record["columns"]:
        out[:, record["columns"]] = design @ np.asarray(record["coef"], float)
    return out
