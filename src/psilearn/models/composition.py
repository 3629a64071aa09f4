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
