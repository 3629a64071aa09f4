"""Checks every structure read by psilearn passes: frame selections (``file.xyz@0:50``), elements,
coordinates and cells. Each failure is a DataError naming the file and the frame.

* Selections: ``@N`` (one frame, negative from the end), ``@START:STOP[:STEP]`` (Python slice,
  STOP excluded); ASE databases also take a query (``labels.db@energy<0``). ``@0-50`` is refused
  with the right spelling suggested.
* Elements: a chemical element (atomic number 1 to 118); ASE's dummy 'X' (0) is refused.
* Coordinates and lattice vectors: finite and within 1e6 Angstrom of the origin (larger values
  are almost always another unit or a corrupt file).
* Periodic cells: the three lattice vectors span a volume (not coplanar or collinear); featomic
  cannot invert such a cell.
"""

from __future__ import annotations

import re

import numpy as np
from ase import Atoms

from psilearn.errors import DataError

#: largest coordinate or lattice-vector component accepted, Angstrom
MAX_COORDINATE = 1e6
#: smallest |det(cell)| / (|a| |b| |c|) of a periodic cell (the sine-like measure of coplanarity)
MIN_CELL_FLATNESS = 1e-6

_INT = re.compile(r"[+-]?\d+")
_SLICE = re.compile(r"([+-]?\d*)(:[+-]?\d*){1,2}")
SELECTION_HELP = "use @N for one frame (@-1: the last) or @START:STOP[:STEP] for a range (STOP excluded), e.g. @0:50"


def check_selection(index: str, path: str, database: bool = False) -> str:
    """``index`` if it is a valid frame selection, else DataError with the right syntax suggested.
    ``database``: ASE databases also accept a query (``id=3``, ``energy<0``), passed through."""
    if _INT.fullmatch(index):
        return index
    if _SLICE.fullmatch(index):
        parts = index.split(":")
        if len(parts) == 3 and parts[2] and int(parts[2]) == 0:
            raise DataError(f"{path}: invalid frame selection '@{index}': the step cannot be 0 ({SELECTION_HELP})")
        return index
    if database and index and not _looks_like_range(index):
        return index
    hint = ""
    guess = re.sub(r"(?<=\d)\s*(-|–|\.\.|,|;)\s*(?=[+-]?\d)", ":", index.strip(), count=1)
    if guess != index and _SLICE.fullmatch(guess):
        hint = f" (did you mean '@{guess}'? frames {guess.split(':')[0] or 0} to {guess.split(':')[1] or 'the end'}, the last one excluded)"
    raise DataError(f"{path}: invalid frame selection '@{index}'{hint}; {SELECTION_HELP}")


def _looks_like_range(index: str) -> bool:
    return bool(re.fullmatch(r"\s*[+-]?\d+\s*(-|–|\.\.|,|;)\s*[+-]?\d+\s*", index))


def selected(index: str, n_frames: int, path: str) -> range:
    """The frame numbers ``index`` (a checked selection) picks out of ``n_frames``; DataError for
    a frame that does not exist or an empty selection."""
    if _INT.fullmatch(index):
        i = int(index)
        if not -n_frames <= i < n_frames:
            valid = f"@0 to @{n_frames - 1}, or @-1 for the last" if n_frames else "none"
            raise DataError(f"{path}: no frame {i}: the file has {n_frames} frame{'s' * (n_frames != 1)} (valid: {valid})")
        return range(i % n_frames, i % n_frames + 1)
    parts = [int(p) if p.strip() else None for p in index.split(":")]
    chosen = range(n_frames)[slice(*parts)]
    if len(chosen) == 0:
        raise DataError(f"{path}: the selection '@{index}' is empty: the file has {n_frames} frame{'s' * (n_frames != 1)}")
    return chosen


def check_structure(atoms: Atoms, where: str) -> None:
    """DataError for a structure psilearn cannot use: no atoms, a non-element, non-finite or absurd
    coordinates, a non-finite or flat periodic cell. ``where``: 'file.xyz, frame 3'."""
    if len(atoms) == 0:
        raise DataError(f"{where}: no atoms")
    z = atoms.numbers
    if np.any((z < 1) | (z > 118)):
        i = int(np.flatnonzero((z < 1) | (z > 118))[0])
        raise DataError(f"{where}: atom {i} has atomic number {int(z[i])}, not a chemical element")
    pos = np.asarray(atoms.positions, dtype=np.float64)
    bad = ~np.isfinite(pos).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where}: atom {i} ({atoms[i].symbol}) has a non-finite position {pos[i].tolist()}")
    far = np.abs(pos).max(axis=1) > MAX_COORDINATE
    if far.any():
        i = int(np.flatnonzero(far)[0])
        raise DataError(f"{where}: atom {i} ({atoms[i].symbol}) is at {np.abs(pos[i]).max():.3g} Angstrom from the origin "
                        f"(over {MAX_COORDINATE:.0e} Angstrom: positions must be in Angstrom)")
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    if not np.isfinite(cell).all():
        raise DataError(f"{where}: the lattice (cell) has non-finite values")
    if np.abs(cell).max() > MAX_COORDINATE:
        raise DataError(f"{where}: a lattice vector is longer than {MAX_COORDINATE:.0e} Angstrom")
    if atoms.pbc.any() and cell.any():  # an all-zero lattice is a molecule (read_structures sets pbc=False)
        _check_periodic_cell(atoms, cell, where)


def _check_periodic_cell(atoms: Atoms, cell: np.ndarray, where: str) -> None:
    norms = np.linalg.norm(cell, axis=1)
    pbc = " ".join("T" if p else "F" for p in atoms.pbc)
    if np.any(norms == 0):
        zero = ", ".join("abc"[i] for i in np.flatnonzero(norms == 0))
        raise DataError(f"{where}: periodic (pbc {pbc}) but lattice vector {zero} is zero; give three lattice vectors, or "
                        f"an all-zero Lattice (or pbc F F F) for a molecule")
    flat = abs(np.linalg.det(cell)) / np.prod(norms)
    if flat < MIN_CELL_FLATNESS:
        raise DataError(f"{where}: periodic (pbc {pbc}) but the lattice vectors are coplanar or collinear (cell volume "
                        f"{abs(np.linalg.det(cell)):.3g} A^3); the cell cannot be inverted")
