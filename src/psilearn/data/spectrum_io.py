"""Readers and writers of spectrum data: spectrum tables (grid column + spectra), the Fe K-edge
XANES set (one xyz + one spectrum text file per complex), DeePMD DOS sets (no grid stored: give
one, or a point index is used), and any of these (or a structure file) as one array of spectra
on a common grid (:func:`load_spectra`, for compare and PCA).
"""

from __future__ import annotations

import glob
import os
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms

from psilearn.data.errors import DataError
from psilearn.data.grids import GRID_SUFFIX, GridWarning, common_grid, frame_grid


# ---- spectrum tables -------------------------------------------------------------------------------
def _numeric(tokens: list[str]) -> list[float] | None:
    try:
        return [float(t) for t in tokens]
    except ValueError:
        return None


def read_spectrum_table(path, allow_grid_only: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A text/CSV table: first column the grid, each further column one spectrum. Non-numeric
    lines (titles such as FDMNES's, '#' comments, a header row) are skipped; the last header row
    before the data names the columns. Returns (grid (n,), spectra (n_spectra, n), names)."""
    path = str(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    from psilearn.data.xyz_scan import read_text

    rows, header = [], None
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        toks = [t for t in s.replace(",", " ").replace(";", " ").split()]
        vals = _numeric(toks)
        if vals is None:
            if rows:
                raise DataError(f"{path}, line {number}: non-numeric line inside the data: {s[:60]!r}")
            header = toks
            continue
        rows.append(vals)
    if not rows:
        raise DataError(f"{path}: no numeric data")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise DataError(f"{path}: rows have different numbers of columns {sorted(widths)}")
    data = np.array(rows)
    if data.shape[1] < 2 and not allow_grid_only:
        raise DataError(f"{path}: needs a grid column and at least one spectrum column")
    grid, spectra = data[:, 0], data[:, 1:].T
    if not np.all(np.isfinite(data)):
        raise DataError(f"{path}: contains NaN or infinite values")
    if np.any(np.diff(grid) <= 0):
        raise DataError(f"{path}: the first column (grid) must be strictly increasing")
    stem = Path(path).stem
    default = [stem if data.shape[1] == 2 else f"{stem}:{j}" for j in range(1, data.shape[1])]
    names = header[1:] if header and len(header) == data.shape[1] else default
    return grid, spectra, [n.strip("<>") for n in names]


def write_spectrum_table(path, grid, spectra, names: list[str], grid_name: str = "grid", comments: dict | None = None) -> None:
    """CSV: '#' comment lines, a header row, then one row per grid point."""
    spectra = np.atleast_2d(spectra)
    from psilearn.data.outputs import open_atomic

    with open_atomic(path) as fh:
        for k, v in (comments or {}).items():
            fh.write(f"# {k}: {v}\n")
        fh.write(",".join([grid_name, *names]) + "\n")
        for i, x in enumerate(grid):
            fh.write(",".join([f"{x:.10g}", *[f"{v:.8g}" for v in spectra[:, i]]]) + "\n")


# ---- readers -----------------------------------------------------------------------------------
def read_plain_xyz(path) -> Atoms:
    """One structure from a plain xyz file whose atoms are element symbols *or* atomic numbers
    (as in the XANES set: ``26  0.0 0.0 0.0``). Positions in Angstrom, non-periodic."""
    from ase.data import atomic_numbers

    from psilearn.data.frame_checks import check_structure
    from psilearn.data.xyz_scan import read_text

    path = str(path)
    lines = read_text(path).split("\n")
    try:
        n = int(lines[0].split()[0])
        body = lines[2 : 2 + n]
        numbers, pos = [], []
        for l in body:
            t = l.split()
            numbers.append(int(t[0]) if t[0].isdigit() else atomic_numbers[t[0].capitalize()])
            pos.append([float(x) for x in t[1:4]])
    except (IndexError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a readable xyz file ({type(exc).__name__}: {exc})") from None
    if len(numbers) != n:
        raise DataError(f"{path}: header says {n} atoms, found {len(numbers)}")
    if any(z < 1 or z > 118 for z in numbers) or any(len(p) != 3 for p in pos):
        raise DataError(f"{path}: not a readable xyz file (an atomic number outside 1-118 or fewer than 3 coordinates)")
    atoms = Atoms(numbers=numbers, positions=pos)
    check_structure(atoms, path)
    atoms.info["title"] = lines[1].strip() if len(lines) > 1 else ""
    return atoms


def _pair_dirs(root: str) -> list[tuple[str, str, str]]:
    """(split name, xyz dir, spectrum dir) pairs under ``root``."""
    pairs = []
    for xyz_dir in sorted(glob.glob(os.path.join(root, "**", "xyz_*"), recursive=True)):
        split = os.path.basename(xyz_dir)[4:]
        spec_dir = os.path.join(os.path.dirname(xyz_dir), f"xanes_{split}")
        if os.path.isdir(spec_dir):
            pairs.append((split, xyz_dir, spec_dir))
    if not pairs:
        pairs.append(("", root, root))  # flat layout: NAME.xyz beside NAME.txt
    return pairs


def read_xanes(root, split: str | None = None, key: str = "xanes") -> list[Atoms]:
    """Structures with their XANES spectra from a folder of (xyz, spectrum) pairs matched by file
    stem: either ``xyz_<split>/NAME.xyz`` + ``xanes_<split>/NAME.txt`` (the Fe K-edge set) or
    ``NAME.xyz`` beside ``NAME.txt``. ``split`` ('train', 'test', None = all).

    Each structure gets ``info[key]`` (n_grid,), ``info[key + '_grid']`` (energies as in the file,
    eV for the Fe set), ``info['name']`` (file stem), ``info['refcode']`` (stem before the first
    '_') and ``info['split']``. Unpaired files are skipped with a warning naming them."""
    root = str(root)
    if not os.path.isdir(root):
        raise DataError(f"{root}: no such directory (XANES data: one xyz and one spectrum file per structure)")
    frames, unpaired = [], []
    for name, xyz_dir, spec_dir in _pair_dirs(root):
        if split is not None and name != split:
            continue
        xyz = {Path(p).stem: p for p in glob.glob(os.path.join(xyz_dir, "*.xyz"))}
        spec = {Path(p).stem: p for ext in ("txt", "dat", "csv") for p in glob.glob(os.path.join(spec_dir, f"*.{ext}"))}
        unpaired += sorted(set(xyz) ^ set(spec))
        for stem in sorted(set(xyz) & set(spec)):
            atoms = read_plain_xyz(xyz[stem])
            grid, spectra, _ = read_spectrum_table(spec[stem])
            atoms.info[key] = spectra[0]
            atoms.info[key + GRID_SUFFIX] = grid
            atoms.info.update(name=stem, refcode=stem.split("_")[0], split=name, source=f"{Path(spec[stem]).name}:0")
            frames.append(atoms)
    if unpaired:
        warnings.warn(f"{root}: skipped {len(unpaired)} file(s) without a partner: {', '.join(unpaired[:5])}"
                      f"{', ...' if len(unpaired) > 5 else ''}", GridWarning, stacklevel=2)
    if not frames:
        raise DataError(f"{root}: no (xyz, spectrum) pairs found{' for split ' + repr(split) if split else ''}")
    return frames


def read_deepmd_dos(path, grid=None, keys: tuple[str, ...] = ("dos", "atom_dos")) -> list[Atoms]:
    """A DeePMD DOS system (``dos.npy`` per structure and/or ``atom_dos.npy`` per atom). DeePMD sets
    store no energy grid: pass ``grid`` (n_grid,) to record one in ``info['<key>_grid']``; otherwise
    the spectra keep no grid and a point index is what models will see (with a GridWarning)."""
    from psilearn.data.io import read_structures

    frames = read_structures(path)
    present = [k for k in keys if k in frames[0].info or k in frames[0].arrays]
    if not present:
        raise DataError(f"{path}: no DOS labels ({', '.join(keys)}) in this DeePMD system")
    n = (frames[0].info[present[0]] if present[0] in frames[0].info else frames[0].arrays[present[0]]).shape[-1]
    if grid is None:
        warnings.warn(f"{path}: DeePMD DOS sets record no energy grid; using the point index 0..{n - 1}", GridWarning, stacklevel=2)
        return frames
    g = np.asarray(grid, dtype=np.float64)
    if len(g) != n:
        raise DataError(f"{path}: the DOS has {n} points but the given grid has {len(g)}")
    for a in frames:
        for k in present:
            a.info[k + GRID_SUFFIX] = g.copy()
    return frames



# ---- any source of spectra (for compare / pca) ------------------------------------------------------
_TABLE_EXT = (".csv", ".txt", ".dat", ".tsv")


def read_structures_or_xanes(spec: str, split: str | None = None, key: str = "xanes") -> list[Atoms]:
    """Structures from ``spec``: an XANES-style folder of (xyz, spectrum) pairs, or anything
    :func:`psilearn.data.io.read_structures` reads (files with @slice, DeePMD systems)."""
    from psilearn.data.deepmd import is_deepmd_system
    from psilearn.data.io import read_structures, split_spec

    path, _ = split_spec(spec)
    if os.path.isdir(path) and not is_deepmd_system(path):
        return read_xanes(path, split, key)
    return read_structures(spec)


def load_spectra(spec: str, key: str | None = None, grid=None, split: str | None = None,
                 on_mismatch: str = "interpolate") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(grid (n_grid,), spectra (n, n_grid), names) from one source:

    * a table file (.csv/.txt/.dat/.tsv): grid column + one column per spectrum;
    * a folder of table files (one or more spectra each), or of (xyz, spectrum) pairs;
    * a structure file or DeePMD system with ``key`` (per-structure ``info[key]``, or per-atom
      ``arrays[key]`` summed over the atoms), the grid from ``info[key + '_grid']``, ``grid``, or
      the point index.

    Spectra on different grids are put on the first one's grid (interpolated with a GridWarning,
    or refused with ``on_mismatch="refuse"``)."""
    from psilearn.data.deepmd import is_deepmd_system
    from psilearn.data.io import split_spec

    path, _ = split_spec(spec)
    if os.path.isfile(path) and path.lower().endswith(_TABLE_EXT) and key is None:
        g, y, names = read_spectrum_table(path)
        return g, y, names
    if os.path.isdir(path) and not is_deepmd_system(path):
        tables = sorted(p for ext in _TABLE_EXT for p in glob.glob(os.path.join(path, f"*{ext}")))
        has_pairs = glob.glob(os.path.join(path, "*.xyz")) or glob.glob(os.path.join(path, "xyz_*"))
        if tables and not has_pairs:
            return _stack_tables(tables, on_mismatch)
    frames = read_structures_or_xanes(spec, split, key or "xanes")
    key = key or "xanes"
    rows, names, grids = [], [], []
    for i, a in enumerate(frames):
        if key in a.info:
            v = np.atleast_1d(np.asarray(a.info[key], dtype=np.float64))
        elif key in a.arrays:
            v = np.asarray(a.arrays[key], dtype=np.float64).reshape(len(a), -1).sum(0)
        else:
            raise DataError(f"{spec}, frame {i}: no spectrum {key!r} (give --key)")
        rows.append(v)
        grids.append(frame_grid(a, key))
        names.append(str(a.info.get("name", f"{Path(path).name}:{i}")))
    return common_grid(rows, grids, names, grid, on_mismatch, spec)


def _stack_tables(paths: list[str], on_mismatch: str):
    rows, grids, names = [], [], []
    for p in paths:
        g, y, n = read_spectrum_table(p)
        rows += list(y)
        grids += [g] * len(y)
        names += n if len(y) > 1 else [Path(p).stem]
    return common_grid(rows, grids, names, None, on_mismatch, os.path.dirname(paths[0]))


