"""Reading structures from any ASE-readable file (with ASE's ``path@slice`` syntax) or a DeePMD set."""

from __future__ import annotations

import os
from pathlib import Path

from ase import Atoms

from psilearn.data.errors import DataError


def split_spec(spec: str) -> tuple[str, str]:
    """'coords.xyz@:200' -> ('coords.xyz', ':200'); a path without '@' selects every frame.
    Only an '@' in the file name counts, so folders like 'user@host/' are fine."""
    spec = str(spec)
    head, tail = os.path.split(spec)
    name, sep, index = tail.rpartition("@")
    if not sep or not name:
        return spec, ":"
    return os.path.join(head, name), index or ":"


def read_structures(spec: str | os.PathLike, format: str | None = None) -> list[Atoms]:
    """Read structures from ``spec``: any ASE-readable file (extxyz, ASE db, magres, ...) with an
    optional ``@slice`` (``coords.xyz@:200``, ``coords.xyz@800:``, ``coords.xyz@-1``), or a DeePMD
    npy system directory (one holding ``type.raw``). Positions in Angstrom as in the file.

    Structures whose lattice is all zeros are treated as non-periodic (``pbc=False``).
    Raises DataError for a missing, empty or unreadable file.
    """
    path, index = split_spec(str(spec))
    if not os.path.exists(path):
        raise DataError(f"{path}: not found (no such file or directory)")
    if os.path.isdir(path):
        from psilearn.data.deepmd import is_deepmd_system, read_deepmd

        if is_deepmd_system(path):
            frames = read_deepmd(path)
            return _normalise(_apply_index(frames, index, path), path)
        raise DataError(f"{path}: a directory, but not a DeePMD system (no type.raw)")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: the file is empty")
    import ase.io

    try:
        frames = ase.io.read(path, index=index, format=format)
    except StopIteration:
        frames = []
    except Exception as exc:  # ASE raises many types for malformed files; report them uniformly
        raise DataError(f"{path}: cannot read structures ({type(exc).__name__}: {exc})") from None
    if isinstance(frames, Atoms):
        frames = [frames]
    if not frames:
        raise DataError(f"{spec}: no structures (empty file or empty selection {index!r})")
    return _normalise(list(frames), path)


def _apply_index(frames: list[Atoms], index: str, path: str) -> list[Atoms]:
    try:
        if ":" in index:
            parts = [int(p) if p else None for p in index.split(":")]
            return frames[slice(*parts)]
        return [frames[int(index)]]
    except (ValueError, IndexError):
        raise DataError(f"{path}: invalid frame selection {index!r}") from None


def _restore_calculator_labels(atoms: Atoms) -> None:
    """ASE's extxyz reader moves keys it knows (energy, forces, dipole, charges, stress, ...) into a
    SinglePointCalculator. psilearn treats every key as a plain label, so put them back: per-atom
    arrays into ``atoms.arrays``, the rest into ``atoms.info`` (values unchanged; stress, which ASE
    stores in Voigt form, back as a flattened 3x3)."""
    calc = atoms.calc
    if calc is None or not getattr(calc, "results", None):
        return
    import numpy as np

    for key, value in calc.results.items():
        arr = np.asarray(value)
        if arr.ndim >= 1 and arr.shape[0] == len(atoms) and key in ("forces", "charges", "magmoms", "energies", "stresses"):
            atoms.arrays.setdefault(key, arr)
        else:
            if key == "stress" and arr.size == 6:
                from ase.stress import voigt_6_to_full_3x3_stress

                arr = voigt_6_to_full_3x3_stress(arr).ravel()
            atoms.info.setdefault(key, arr if arr.ndim else float(arr))
    atoms.calc = None


def _normalise(frames: list[Atoms], path: str) -> list[Atoms]:
    for i, atoms in enumerate(frames):
        _restore_calculator_labels(atoms)
        if atoms.pbc.any() and atoms.cell.rank < 3:
            if atoms.cell.rank == 0:
                atoms.pbc = False  # extxyz 'Lattice' of zeros: a molecule
            else:
                raise DataError(f"{path}, frame {i}: periodic along some axes but the cell is degenerate")
        if len(atoms) == 0:
            raise DataError(f"{path}, frame {i}: no atoms")
        atoms.info.setdefault("source", f"{Path(path).name}:{i}")
    return frames


def write_structures(path: str | os.PathLike, frames: list[Atoms], format: str | None = None) -> None:
    """Write structures to extxyz (or ``format``, or any format ASE infers from the name),
    atomically (:func:`psilearn.data.outputs.atomic_write`): a crash or Ctrl-C mid-write never
    leaves a truncated file in place of a good one. Missing directories are created."""
    import ase.io

    from psilearn.data.outputs import atomic_write

    path = str(path)
    fmt = format or ("extxyz" if path.endswith((".xyz", ".extxyz")) else None)
    clean = []
    for a in frames:
        b = a.copy()
        b.calc = None
        b.info.pop("source", None)
        clean.append(b)
    with atomic_write(path) as tmp:
        try:
            ase.io.write(tmp, clean, format=fmt)
        except (ValueError, KeyError) as exc:  # e.g. a format ASE cannot infer from the name
            raise DataError(f"{path}: cannot write structures ({type(exc).__name__}: {exc})") from None
