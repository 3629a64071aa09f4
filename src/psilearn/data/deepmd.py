"""Reader for DeePMD-kit npy systems (``type.raw``, ``type_map.raw``, ``set.*/{coord,box,...}.npy``).

Coordinates and boxes are in Angstrom. Every other ``.npy`` in a set becomes a label: arrays whose
name starts with ``atom`` (``atomic_dipole``, ``atom_dos``) and whose width divides by the number of
atoms are per-atom (``atoms.arrays``); all others are per-structure (``atoms.info``).

A ``nopbc`` marker makes the frames non-periodic, as in DeePMD-kit. Some sets carry it next to a
full 3D box that the atoms fill (bulk liquid boxes with molecules made whole); those are read as
marked, with a warning, because treating a bulk box as a cluster truncates the environments near
its faces (set ``atoms.pbc = True`` to read them as periodic).
"""

from __future__ import annotations

import glob
import os
import warnings

import numpy as np
from ase import Atoms

from psilearn.data.errors import DataError


def is_deepmd_system(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "type.raw"))


def read_deepmd(path: str) -> list[Atoms]:
    symbols = _symbols(path)
    periodic = not os.path.exists(os.path.join(path, "nopbc"))
    n_atoms = len(symbols)
    frames: list[Atoms] = []
    box = None
    for set_dir in sorted(d for d in glob.glob(os.path.join(path, "set.*")) if os.path.isdir(d)):
        coord_file = os.path.join(set_dir, "coord.npy")
        if not os.path.isfile(coord_file):
            raise DataError(f"{set_dir}: no coord.npy")
        raw = _load_npy(coord_file)
        n = len(raw) if raw.ndim else 0
        coord = _per_frame(raw, n, coord_file)
        if coord.shape[1] != 3 * n_atoms:
            raise DataError(f"{coord_file}: {coord.shape[1]} numbers per frame, expected {3 * n_atoms} (3 per atom of type.raw)")
        box_file = os.path.join(set_dir, "box.npy")
        box = _per_frame(_load_npy(box_file), n, box_file, width=9).reshape(n, 3, 3) if os.path.exists(box_file) else None
        labels = {}
        for f in sorted(glob.glob(os.path.join(set_dir, "*.npy"))):
            name = os.path.basename(f)[:-4]
            if name not in ("coord", "box", "real_atom_types"):
                labels[name] = _per_frame(_load_npy(f), n, f)
        for i in range(n):
            frames.append(_frame(symbols, coord[i], box[i] if box is not None else None, periodic, labels, i))
            frames[-1].info["source"] = f"{os.path.basename(os.path.normpath(path))}/{os.path.basename(set_dir)}:{i}"
    if not frames:
        raise DataError(f"{path}: no set.* folders with coord.npy")
    if not periodic and box is not None and _fills_cell(frames[0]):
        warnings.warn(f"{path}: marked nopbc, but its atoms fill a 3D box (a bulk cell?); read as non-periodic as "
                      "marked. Set atoms.pbc = True on the frames to treat them as periodic.", stacklevel=2)
    return frames


def _frame(symbols: list[str], coord: np.ndarray, cell: np.ndarray | None, periodic: bool, labels: dict, i: int) -> Atoms:
    n_atoms = len(symbols)
    cell = np.zeros((3, 3)) if cell is None else cell
    pbc = bool(periodic and abs(np.linalg.det(cell)) > 1e-8)
    atoms = Atoms(symbols, positions=coord.reshape(n_atoms, 3), cell=cell, pbc=pbc)
    for name, arr in labels.items():
        row = arr[i]
        if name.startswith("atom") and row.size % n_atoms == 0:
            atoms.arrays[name] = row.reshape(n_atoms, -1).squeeze(-1) if row.size == n_atoms else row.reshape(n_atoms, -1)
        else:
            atoms.info[name] = row if row.size > 1 else row[0].item()
    return atoms


def _read_tokens(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().split()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None


def _symbols(path: str) -> list[str]:
    """Element symbols of the atoms, from type.raw (integers) and type_map.raw (symbols)."""
    from ase.data import chemical_symbols

    type_file, map_file = os.path.join(path, "type.raw"), os.path.join(path, "type_map.raw")
    if not os.path.isfile(map_file):
        raise DataError(f"{path}: type_map.raw is missing, element names unknown")
    tokens = _read_tokens(type_file)
    if not tokens:
        raise DataError(f"{type_file}: no atom types (one integer per atom expected)")
    bad = next((t for t in tokens if not t.isascii() or not t.isdigit()), None)
    if bad is not None:
        raise DataError(f"{type_file}: {bad!r} is not an atom type (a non-negative integer indexing type_map.raw)")
    type_map = _read_tokens(map_file)
    if not type_map:
        raise DataError(f"{map_file}: empty (one element symbol per atom type expected)")
    unknown = next((t for t in type_map if t not in chemical_symbols[1:]), None)
    if unknown is not None:
        raise DataError(f"{map_file}: {unknown[:20]!r} is not an element symbol")
    types = [int(t) for t in tokens]
    if max(types) >= len(type_map):
        raise DataError(f"{type_file}: type {max(types)} is not in type_map.raw ({len(type_map)} types: {' '.join(type_map[:10])})")
    return [type_map[t] for t in types]


def _load_npy(path: str) -> np.ndarray:
    """A numeric array from a .npy file (never unpickled); DataError otherwise."""
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 -- numpy raises many types for a corrupt file
        raise DataError(f"{path}: not a readable .npy array ({type(exc).__name__}: {exc})") from None
    if not isinstance(arr, np.ndarray):  # an .npz archive under a .npy name
        arr.close()
        raise DataError(f"{path}: an .npz archive, expected one .npy array")
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{path}: holds {arr.dtype} values, expected numbers")
    return arr


def _per_frame(arr: np.ndarray, n: int, path: str, width: int | None = None) -> np.ndarray:
    """``arr`` as (n_frames, values per frame); DataError if its first axis is not the frame count."""
    if arr.ndim == 0:
        raise DataError(f"{path}: a single number, expected one row per frame")
    if len(arr) != n:
        raise DataError(f"{path}: {len(arr)} frames, expected {n} (as coord.npy)")
    out = arr.reshape(n, int(np.prod(arr.shape[1:])))
    if n and (out.shape[1] == 0 or (width is not None and out.shape[1] != width)):
        raise DataError(f"{path}: {out.shape[1]} numbers per frame, expected {width or 'at least 1'}")
    return out


def _fills_cell(atoms: Atoms, span: float = 0.8) -> bool:
    """True if the atoms span at least ``span`` of every cell vector (fractional coordinates)."""
    if abs(np.linalg.det(atoms.cell[:])) < 1e-8:
        return False
    frac = atoms.cell.scaled_positions(atoms.positions)
    return bool(np.all(frac.max(axis=0) - frac.min(axis=0) >= span))
