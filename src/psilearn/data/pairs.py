"""Per-pair labels: values that belong to atom pairs (J couplings, exchange constants).

Layout (docs/pairs.md), for a per-pair Target with key KEY and P pairs in a structure:

- ``atoms.info["KEY_pairs"]``: 2P integers, the flattened (P, 2) list of 0-based atom indices;
- ``atoms.info["KEY"]``: P * 3**rank numbers, the flattened (P, 3**rank) values, row-major; a rank-2
  value T[a, b] has ``a`` belonging to the pair's first atom and ``b`` to its second.

Pairs are read in canonical form, i < j: a pair given as (j, i) is flipped and its value transposed
(the exchange of the two atoms, :attr:`psilearn.targets.Target.swap_signs`), so a file may list
either order. A structure without both keys has no pair (P = 0; extxyz cannot hold an empty
array, so nothing is written for it); one with values but no pair list is an error.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.data.errors import DataError, frame_location


def transpose_rows(values: np.ndarray, rank: int) -> np.ndarray:
    """Each row's tensor exchanged between the two atoms of its pair: transposed for rank 2."""
    if rank == 0:
        return values
    return values.reshape(-1, 3, 3).transpose(0, 2, 1).reshape(-1, 9)


def pair_offsets(pairs: list[np.ndarray]) -> np.ndarray:
    """(n_structures + 1,) start of each structure's rows in per-pair values concatenated over structures."""
    return np.concatenate([[0], np.cumsum([len(p) for p in pairs])]).astype(int)


def _as_pairs(raw, where: str, key: str, n_atoms: int) -> np.ndarray:
    try:
        arr = np.atleast_1d(np.asarray(raw, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise DataError(f"{where}: pair list {key!r} is not numeric") from None
    if arr.size % 2 or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise DataError(f"{where}: pair list {key!r} needs an even number of integer atom indices (flattened (P, 2))")
    pairs = arr.astype(np.int64).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n_atoms):
        raise DataError(f"{where}: pair list {key!r} has atom index {int(pairs.max() if pairs.max() >= n_atoms else pairs.min())} "
                        f"outside 0..{n_atoms - 1}")
    if np.any(pairs[:, 0] == pairs[:, 1]):
        raise DataError(f"{where}: pair list {key!r} pairs an atom with itself (atom {int(pairs[pairs[:, 0] == pairs[:, 1]][0, 0])})")
    return pairs


def read_frame_pairs(atoms: Atoms, i: int, target, with_values: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """The canonical pairs (P, 2) of one structure and, with ``with_values``, their values
    (P, 3**rank). DataError naming file, frame and key for a missing or malformed list, a repeated
    pair, a value count that does not match, or a non-finite value."""
    where, pkey, key = frame_location(atoms, i), target.pairs_key, target.key
    if pkey not in atoms.info:
        if with_values and key in atoms.arrays:
            raise DataError(f"{where}: {key!r} is a per-atom label here; declare the target with per='atom' (--per atom)")
        if with_values and key in atoms.info:
            raise DataError(f"{where}: no pair list {pkey!r} (a per-pair label {key!r} needs the pairs it belongs to, docs/pairs.md)")
        return np.zeros((0, 2), dtype=np.int64), (np.zeros((0, target.size)) if with_values else None)
    pairs = _as_pairs(atoms.info[pkey], where, pkey, len(atoms))
    flip = pairs[:, 0] > pairs[:, 1]
    pairs = np.sort(pairs, axis=1)
    codes = pairs[:, 0] * len(atoms) + pairs[:, 1]
    if len(np.unique(codes)) != len(codes):
        raise DataError(f"{where}: pair list {pkey!r} lists a pair twice")
    if not with_values:
        return pairs, None
    if key not in atoms.info:
        if len(pairs) == 0:
            return pairs, np.zeros((0, target.size))
        raise DataError(f"{where}: pair list {pkey!r} but no per-pair label {key!r}")
    try:
        raw = np.atleast_1d(np.asarray(atoms.info[key], dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise DataError(f"{where}: label {key!r} is not numeric") from None
    if raw.size != target.size * len(pairs):
        raise DataError(f"{where}: per-pair label {key!r} has {raw.size} numbers for {len(pairs)} pairs, expected {target.size} per pair "
                        f"for a {repr(target.tensor) if target.tensor else 'scalar'} (row-major, flattened)")
    values = raw.reshape(len(pairs), target.size)
    if not np.all(np.isfinite(values)):
        raise DataError(f"{where}: label {key!r} contains NaN or infinite values")
    if flip.any():
        values = values.copy()
        values[flip] = transpose_rows(values[flip], target.rank)
    return pairs, values


def extract_pair_values(frames: list[Atoms], target) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per-pair labels of all structures: values (n_pairs_total, 3**rank) in frame and pair order,
    and each structure's canonical pairs (P_s, 2). DataError if no structure has a pair."""
    rows, pairs = [], []
    for i, atoms in enumerate(frames):
        p, v = read_frame_pairs(atoms, i, target)
        pairs.append(p)
        rows.append(v)
    if not any(len(p) for p in pairs):
        have = sorted({k for a in frames for k in a.info if k not in ("source",)})
        raise DataError(f"per-pair label {target.key!r}: no structure has a pair list {target.pairs_key!r} with a pair "
                        f"(info keys present: {', '.join(have[:12]) or 'none'})")
    return np.concatenate(rows), pairs


def pair_vectors(atoms: Atoms, pairs: np.ndarray, where: str = "") -> np.ndarray:
    """r_j - r_i of each pair (P, 3), Angstrom; the shortest periodic image for periodic structures.
    DataError (naming ``where``) when a periodic pair is at least half the cell's smallest width
    apart: then another image is as close, and which one the pair means is ambiguous."""
    vec = atoms.positions[pairs[:, 1]] - atoms.positions[pairs[:, 0]]
    if atoms.pbc.any() and len(vec):
        from ase.geometry import find_mic

        vec, d = find_mic(vec, atoms.cell, atoms.pbc)
        cell = np.asarray(atoms.cell[:])
        widths = [abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3) if atoms.pbc[k]]
        if d.max() >= 0.5 * min(widths):
            k = int(np.argmax(d))
            raise DataError(f"{where or 'periodic structure'}: pair ({pairs[k, 0]}, {pairs[k, 1]}) is {d[k]:.3f} A apart, at least half the cell's "
                            f"smallest width ({min(widths):.3f} A / 2): several periodic images are as close; use a larger supercell")
    return np.asarray(vec, dtype=np.float64).reshape(-1, 3)


def pairs_within(atoms: Atoms, cutoff: float, element_pairs: set[tuple[int, int]] | None = None, where: str = "") -> np.ndarray:
    """All canonical pairs (i < j) closer than ``cutoff`` (Angstrom; shortest periodic image) whose
    (sorted) element pair is in ``element_pairs`` (all when None), (P, 2) in lexicographic order.
    Periodic structures: DataError (:func:`pair_vectors`) when a selected pair's image is ambiguous."""
    i, j = np.triu_indices(len(atoms), k=1)
    pairs = np.stack([i, j], axis=1).astype(np.int64)
    if not len(pairs):
        return pairs
    d = np.linalg.norm(atoms.positions[j] - atoms.positions[i], axis=1)
    if atoms.pbc.any():
        from ase.geometry import find_mic

        _, d = find_mic(atoms.positions[j] - atoms.positions[i], atoms.cell, atoms.pbc)
    keep = d <= cutoff
    if element_pairs is not None:
        zz = np.sort(atoms.numbers[pairs], axis=1)
        keep &= np.array([(int(a), int(b)) in element_pairs for a, b in zz], dtype=bool)
    pairs = pairs[keep]
    if atoms.pbc.any() and len(pairs):
        pair_vectors(atoms, pairs, where)  # refuses ambiguous images
    return pairs
