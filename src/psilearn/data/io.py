"""Reading structures from any ASE-readable file (with ASE's ``path@slice`` syntax) or a DeePMD set."""

from __future__ import annotations

import os
from pathlib import Path

from ase import Atoms

from psilearn.data.errors import DataError
from psilearn.data.frame_checks import check_selection, check_structure, selected
from psilearn.data.magres_scan import diagnose_magres, is_magres
from psilearn.data.periodicity import apply_periodicity
from psilearn.data.sidecar import restore_large, sidecar_path, split_large
from psilearn.data.xyz_scan import is_xyz


def split_spec(spec: str) -> tuple[str, str]:
    """'coords.xyz@:200' -> ('coords.xyz', ':200'); a path without '@' selects every frame.
    Only an '@' in the file name counts, so folders like 'user@host/' are fine, and an existing
    file whose name holds an '@' is read whole."""
    spec = str(spec)
    head, tail = os.path.split(spec)
    name, sep, index = tail.rpartition("@")
    if not sep or not name or os.path.exists(spec):
        return spec, ":"
    return os.path.join(head, name), index or ":"


def read_structures(spec: str | os.PathLike, format: str | None = None) -> list[Atoms]:
    """Read structures from ``spec``: any ASE-readable file (extxyz, ASE db, magres, ...) with an
    optional ``@slice`` (``coords.xyz@:200``, ``coords.xyz@800:``, ``coords.xyz@-1``), or a DeePMD
    npy system directory (one holding ``type.raw``). Positions in Angstrom as in the file.

    The periodicity rule of :mod:`psilearn.data.periodicity` is applied: a frame whose lattice is
    all zeros is a molecule (``pbc=False``); a periodic frame with a degenerate cell is refused.
    Matrices moved to a ``FILE.arrays.npz`` beside the file (:mod:`psilearn.data.sidecar`: large
    Hamiltonian labels) are put back into ``info``. Raises DataError, naming the file, the frame and for XYZ files the line, for a missing, empty or
    unreadable file, a bad selection (``@0-50``), or a structure psilearn cannot use (unknown
    element, non-finite or absurd coordinates, a flat periodic cell: :mod:`psilearn.data.frame_checks`).
    """
    path, index = split_spec(str(spec))
    if not os.path.exists(path):
        raise DataError(f"{path}: not found (no such file or directory)")
    if os.path.isdir(path):
        from psilearn.data.deepmd import is_deepmd_system, read_deepmd

        if not is_deepmd_system(path):
            raise DataError(f"{path}: a directory, but not a DeePMD system (no type.raw)")
        frames = read_deepmd(path)
        chosen = selected(check_selection(index, path), len(frames), path)
        return _normalise([frames[i] for i in chosen], path, chosen, keep_source=True)
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: the file is empty")
    index = check_selection(index, path, database=_is_database(path, format))
    if is_xyz(path, format):
        return _read_xyz(path, index, format)
    import ase.io

    try:
        frames = ase.io.read(path, index=index, format=format, do_not_split_by_at_sign=True)
    except StopIteration:
        frames = []
    except Exception as exc:  # ASE raises many types for malformed files; report them uniformly
        if is_magres(path, format):
            raise DataError(diagnose_magres(path, exc)) from None
        raise DataError(f"{path}: cannot read structures ({_reason(exc)})") from None
    if isinstance(frames, Atoms):
        frames = [frames]
    if not frames:
        raise DataError(f"{spec}: no structures (empty file or empty selection {index!r})")
    return _normalise(list(frames), path)


def _is_database(path: str, format: str | None) -> bool:
    return format in ("db", "json") if format else path.lower().endswith((".db", ".json"))


def _reason(exc: Exception) -> str:
    from ase.io.formats import UnknownFileTypeError

    if isinstance(exc, UnknownFileTypeError):
        return f"unknown file format ({exc}); use a name ending in .xyz, .extxyz, .db, .traj, .magres, ... or a DeePMD folder"
    return f"{type(exc).__name__}: {exc}"


def _read_xyz(path: str, index: str, format: str | None) -> list[Atoms]:
    """An (extended) XYZ file, its layout checked first so that errors name frame and line."""
    import ase.io

    from psilearn.data.xyz_scan import diagnose_xyz, scan_xyz

    layout = scan_xyz(path)
    if not layout.starts:
        raise DataError(f"{path}: no structures (only blank lines)")
    chosen = selected(index, len(layout.starts), path)
    try:
        frames = ase.io.read(path, index=index, format=format, do_not_split_by_at_sign=True)
    except Exception as exc:  # noqa: BLE001 -- explained frame by frame
        raise DataError(diagnose_xyz(layout, chosen, exc)) from None
    return _normalise([frames] if isinstance(frames, Atoms) else list(frames), path, chosen)


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
            atoms.info.setdefault(key, arr if arr.ndim else (float(arr) if arr.dtype.kind in "biuf" else arr.item()))
    atoms.calc = None


#: per-pair label keys (psilearn.label.jcoupling) that are arrays even for one pair: extxyz writes a
#: one-element array as a bare number, which ASE reads back as a scalar
PAIR_ARRAY_KEYS: tuple[str, ...] = ("jcoupling_pairs", "jcoupling", "jcoupling_iso")


def _restore_pair_arrays(atoms: Atoms) -> None:
    import numpy as np

    for key in PAIR_ARRAY_KEYS:
        if key in atoms.info and np.ndim(atoms.info[key]) == 0:
            atoms.info[key] = np.atleast_1d(atoms.info[key])


def _normalise(frames: list[Atoms], path: str, numbers=None, keep_source: bool = False) -> list[Atoms]:
    """Labels out of ASE's calculator, the zero-lattice rule, the checks of every structure, and
    'source' ('file.xyz:7', ``numbers``: the frame numbers in the file when known). A 'source' the file itself
    carries (written by plain ase.io.write from frames psilearn had read) is replaced: messages name the file
    read; ``keep_source``: the reader set a more precise one (DeePMD: the set folder)."""
    numbers = range(len(frames)) if numbers is None else numbers
    for i, atoms in zip(numbers, frames):
        _restore_calculator_labels(atoms)
        _restore_pair_arrays(atoms)
        apply_periodicity(atoms, f"{path}, frame {i}")  # the one periodicity rule (data/periodicity.py)
        check_structure(atoms, f"{path}, frame {i}")
        if not keep_source or "source" not in atoms.info:
            atoms.info["source"] = f"{Path(path).name}:{i}"
    return restore_large(frames, path)


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
    large = split_large(clean, path) if fmt == "extxyz" else {}
    if large:  # the npz first: a file that names it never exists without it
        import numpy as np

        with atomic_write(sidecar_path(path)) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **large)
    with atomic_write(path) as tmp:
        try:
            ase.io.write(tmp, clean, format=fmt)
        except (ValueError, KeyError) as exc:  # e.g. a format ASE cannot infer from the name
            raise DataError(f"{path}: cannot write structures ({type(exc).__name__}: {exc})") from None
