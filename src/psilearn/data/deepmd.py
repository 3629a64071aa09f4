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
    types = np.loadtxt(os.path.join(path, "type.raw"), dtype=int, ndmin=1)
    map_file = os.path.join(path, "type_map.raw")
    if not os.path.isfile(map_file):
        raise DataError(f"{path}: type_map.raw is missing, element names unknown")
    with open(map_file) as fh:
        type_map = fh.read().split()
    try:
        symbols = [type_map[t] for t in types]
    except IndexError:
        raise DataError(f"{path}: type.raw refers to a type not in type_map.raw") from None
    periodic = not os.path.exists(os.path.join(path, "nopbc"))
    n_atoms = len(symbols)
    frames: list[Atoms] = []
    for set_dir in sorted(glob.glob(os.path.join(path, "set.*"))):
        coord = np.load(os.path.join(set_dir, "coord.npy"), allow_pickle=False)
        n = len(coord)
        if coord.shape[1] != 3 * n_atoms:
            raise DataError(f"{set_dir}/coord.npy: {coord.shape[1]} numbers per frame, expected {3 * n_atoms}")
        box_file = os.path.join(set_dir, "box.npy")
        box = np.load(box_file, allow_pickle=False).reshape(n, 3, 3) if os.path.exists(box_file) else None
        labels = {}
        for f in sorted(glob.glob(os.path.join(set_dir, "*.npy"))):
            name = os.path.basename(f)[:-4]
            if name in ("coord", "box", "real_atom_types"):
                continue
            arr = np.load(f, allow_pickle=False)
            labels[name] = arr.reshape(n, -1)
        for i in range(n):
            cell = box[i] if box is not None else np.zeros((3, 3))
            pbc = periodic and box is not None and abs(np.linalg.det(cell)) > 1e-8
            atoms = Atoms(symbols, positions=coord[i].reshape(n_atoms, 3), cell=cell, pbc=pbc)
            for name, arr in labels.items():
                row = arr[i]
                if name.startswith("atom") and row.size % n_atoms == 0:
                    atoms.arrays[name] = row.reshape(n_atoms, -1).squeeze(-1) if row.size == n_atoms else row.reshape(n_atoms, -1)
                else:
                    atoms.info[name] = row if row.size > 1 else float(row[0])
            atoms.info["source"] = f"{os.path.basename(os.path.normpath(path))}/{os.path.basename(set_dir)}:{i}"
            frames.append(atoms)
    if not frames:
        raise DataError(f"{path}: no set.* folders with coord.npy")
    if not periodic and box is not None and _fills_cell(frames[0]):
        warnings.warn(f"{path}: marked nopbc, but its atoms fill a 3D box (a bulk cell?); read as non-periodic as "
                      "marked. Set atoms.pbc = True on the frames to treat them as periodic.", stacklevel=2)
    return frames


def _fills_cell(atoms: Atoms, span: float = 0.8) -> bool:
    """True if the atoms span at least ``span`` of every cell vector (fractional coordinates)."""
    if abs(np.linalg.det(atoms.cell[:])) < 1e-8:
        return False
    frac = atoms.cell.scaled_positions(atoms.positions)
    return bool(np.all(frac.max(axis=0) - frac.min(axis=0) >= span))
