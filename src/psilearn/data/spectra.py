"""Spectra as labels: grids, grid checks, and readers for spectrum data sets.

Conventions (extending the extxyz ones): a per-structure spectrum is ``atoms.info[key]`` (n_grid,),
a per-atom spectrum (e.g. a local DOS) is ``atoms.arrays[key]`` (n_atoms, n_grid), and the grid it is
sampled on is ``atoms.info[key + "_grid"]`` (n_grid,). The labelers' broadened DOS records its grid
as ``dos_emin``/``dos_emax``/``dos_npts`` (Hartree), which is understood too.

Readers: the Fe K-edge XANES set (one xyz + one spectrum text file per complex), the DeePMD DOS set
(no grid stored: give one, or a point index is used), and a DOS from orbital energies.
"""

from __future__ import annotations

import glob
import os
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms

from psilearn.data.errors import DataError

GRID_SUFFIX = "_grid"


class GridWarning(UserWarning):
    """Spectra were interpolated onto another grid, or no grid was recorded."""


# ---- grids ---------------------------------------------------------------------------------------
def frame_grid(atoms: Atoms, key: str) -> np.ndarray | None:
    """The grid of spectrum ``key`` in ``atoms`` (``info[key + '_grid']`` or the labeler's
    ``{key}_emin/_emax/_npts``; for ``KEY_reference``/``KEY_std`` the grid of ``KEY``), or None
    when none is recorded."""
    g = atoms.info.get(key + GRID_SUFFIX)
    if g is not None:
        return np.atleast_1d(np.asarray(g, dtype=np.float64))
    lo, hi, n = (atoms.info.get(f"{key}_{s}") for s in ("emin", "emax", "npts"))
    if lo is not None and hi is not None and n is not None:
        return np.linspace(float(lo), float(hi), int(n))
    for suffix in ("_reference", "_std"):  # written by `psilearn predict[-spectrum]` beside KEY
        if key.endswith(suffix):
            return frame_grid(atoms, key[: -len(suffix)])
    return None


def parse_grid(text: str) -> np.ndarray:
    """A grid from the command line: ``START:STOP:NUM`` (inclusive linspace), a comma list, or a
    file with one number per line (or the first column of a table)."""
    text = str(text).strip()
    if os.path.isfile(text):
        grid, _, _ = read_spectrum_table(text, allow_grid_only=True)
        return grid
    try:
        if text.count(":") == 2:
            a, b, n = text.split(":")
            return np.linspace(float(a), float(b), int(n))
        return np.array([float(x) for x in text.split(",") if x.strip()])
    except ValueError:
        raise DataError(f"cannot read a grid from {text!r}: use START:STOP:NUM, a comma list, or a file") from None


def same_grid(a: np.ndarray, b: np.ndarray, rtol: float = 1e-6) -> bool:
    """Same length and the same points to ``rtol`` of the grid's span."""
    if len(a) != len(b):
        return False
    span = max(float(np.ptp(a)), float(np.ptp(b)), 1e-300)
    return bool(np.max(np.abs(np.asarray(a) - np.asarray(b))) <= rtol * span)


def interpolate_spectra(values: np.ndarray, source: np.ndarray, target: np.ndarray, where: str = "") -> np.ndarray:
    """Linear interpolation of spectra ``values`` (..., n_source) from grid ``source`` onto
    ``target``. Refuses (DataError) when ``target`` reaches outside ``source`` by more than half a
    source spacing: that would be extrapolation."""
    source, target = np.asarray(source, float), np.asarray(target, float)
    tol = 0.5 * float(np.max(np.diff(source))) if len(source) > 1 else 0.0
    if target[0] < source[0] - tol or target[-1] > source[-1] + tol:
        raise DataError(f"{where}cannot interpolate: the spectrum covers {source[0]:g}..{source[-1]:g} but the target grid "
                        f"needs {target[0]:g}..{target[-1]:g}")
    v = np.asarray(values, dtype=np.float64)
    flat = v.reshape(-1, v.shape[-1])
    out = np.stack([np.interp(target, source, row) for row in flat])
    return out.reshape(*v.shape[:-1], len(target))


def conform_to_grid(frames: list[Atoms], key: str, per: str, grid, on_mismatch: str = "interpolate") -> list[Atoms]:
    """Copies of ``frames`` whose spectrum ``key`` is on ``grid``.

    Frames without a recorded grid are taken to be on ``grid`` already (their length is checked
    later by :func:`psilearn.data.dataset.extract_values`). A different recorded grid is linearly
    interpolated with a :class:`GridWarning` (``on_mismatch="interpolate"``) or refused with a
    DataError naming the frame (``"refuse"``)."""
    if on_mismatch not in ("interpolate", "refuse"):
        raise ValueError(f"on_mismatch must be 'interpolate' or 'refuse', got {on_mismatch!r}")
    grid = np.asarray(grid, dtype=np.float64)
    out, moved = [], []
    for i, atoms in enumerate(frames):
        g = frame_grid(atoms, key)
        store = atoms.info if per == "structure" else atoms.arrays
        if g is None or key not in store or same_grid(g, grid):
            out.append(atoms)
            continue
        where = f"{str(atoms.info.get('source', f'frame {i}')).replace(':', ', frame ', 1)}: "
        if on_mismatch == "refuse":
            raise DataError(f"{where}spectrum {key!r} is on a different grid ({len(g)} points, {g[0]:g}..{g[-1]:g}) than the "
                            f"target's ({len(grid)} points, {grid[0]:g}..{grid[-1]:g}); interpolate it or use the same grid")
        vals = np.asarray(store[key], dtype=np.float64)
        if vals.shape[-1] != len(g):
            raise DataError(f"{where}spectrum {key!r} has {vals.shape[-1]} points but its recorded grid has {len(g)}")
        b = atoms.copy()
        new = interpolate_spectra(vals, g, grid, where)
        if per == "structure":
            b.info[key] = new
        else:
            b.arrays[key] = new
        b.info[key + GRID_SUFFIX] = grid.copy()
        for s in ("emin", "emax", "npts"):
            b.info.pop(f"{key}_{s}", None)
        out.append(b)
        moved.append(i)
    if moved:
        warnings.warn(f"interpolated spectrum {key!r} of {len(moved)} of {len(frames)} structures onto the target grid "
                      f"({len(grid)} points, {grid[0]:g}..{grid[-1]:g}); first: frame {moved[0]}", GridWarning, stacklevel=2)
    return out


def data_grid(frames: list[Atoms], key: str) -> np.ndarray | None:
    """The grid recorded in the first frame that has one (None if no frame records a grid)."""
    for a in frames:
        g = frame_grid(a, key)
        if g is not None:
            return g
    return None


def check_absorber(frames: list[Atoms], absorber: str) -> None:
    """Every structure must contain the absorbing element (DataError naming the first that does not)."""
    for i, a in enumerate(frames):
        if absorber not in a.get_chemical_symbols():
            where = str(a.info.get("source", f"frame {i}")).replace(":", ", frame ", 1)
            raise DataError(f"{where}: no {absorber} atom, but the spectrum is declared to belong to {absorber}")


def load_spectrum_dataset(source, target, on_mismatch: str = "interpolate"):
    """A :class:`psilearn.data.Dataset` for a spectrum Target: reads ``source`` (path/spec or a list
    of Atoms), puts every spectrum on ``target.grid`` (see :func:`conform_to_grid`), checks the
    absorber, then validates lengths and NaNs as for any Target."""
    from psilearn.data.dataset import load_dataset
    from psilearn.data.io import read_structures

    if not target.is_spectrum:
        raise ValueError(f"{target.key}: not a spectrum target (no grid)")
    frames, name = (list(source), "<memory>") if isinstance(source, (list, tuple)) else (read_structures(source), str(source))
    frames = conform_to_grid(frames, target.key, target.per, target.grid, on_mismatch)
    if target.absorber:
        check_absorber(frames, target.absorber)
    ds = load_dataset(frames, target)
    ds.name = name
    return ds


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
    rows, header = [], None
    with open(path) as fh:
        for line in fh:
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            toks = [t for t in s.replace(",", " ").replace(";", " ").split()]
            vals = _numeric(toks)
            if vals is None:
                if rows:
                    raise DataError(f"{path}: non-numeric line inside the data: {s[:60]!r}")
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
    names = header[1:] if header and len(header) == data.shape[1] else [f"{Path(path).stem}" if data.shape[1] == 2 else f"{Path(path).stem}:{j}" for j in range(1, data.shape[1])]
    return grid, spectra, [n.strip("<>") for n in names]


def write_spectrum_table(path, grid, spectra, names: list[str], grid_name: str = "grid", comments: dict | None = None) -> None:
    """CSV: '#' comment lines, a header row, then one row per grid point."""
    spectra = np.atleast_2d(spectra)
    with open(path, "w") as fh:
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

    path = str(path)
    with open(path) as fh:
        lines = [l for l in fh.read().splitlines()]
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
    atoms = Atoms(numbers=numbers, positions=pos)
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


def dos_from_orbitals(frames: list[Atoms], grid, sigma: float, key: str = "dos", reference: str = "none") -> list[Atoms]:
    """Gaussian-broadened DOS (states per energy unit) from the labelers' orbital energies
    (``info['orbital_energies']``, or ``_alpha``/``_beta`` for open shells; Hartree as labelled) on
    ``grid`` (same units), width ``sigma``. ``reference``: 'none' (absolute energies) or 'homo'
    (energies relative to the HOMO: an alignment on a stated feature). Returns labelled copies with
    ``info[key]`` and ``info[key + '_grid']``."""
    from psilearn.spectral.broadening import gaussian_broadening

    if reference not in ("none", "homo"):
        raise ValueError(f"reference must be 'none' or 'homo', got {reference!r}")
    g = np.asarray(grid, dtype=np.float64)
    out = []
    for i, a in enumerate(frames):
        info = a.info
        if "orbital_energies" in info:
            levels = np.asarray(info["orbital_energies"], float)
            weights = np.full(len(levels), 2.0)
        elif "orbital_energies_alpha" in info and "orbital_energies_beta" in info:
            levels = np.concatenate([np.asarray(info["orbital_energies_alpha"], float), np.asarray(info["orbital_energies_beta"], float)])
            weights = np.ones(len(levels))
        else:
            where = str(info.get("source", f"frame {i}")).replace(":", ", frame ", 1)
            raise DataError(f"{where}: no orbital energies (label with --observables orbitals)")
        if reference == "homo":
            if "homo" not in info:
                raise DataError(f"frame {i}: no 'homo' label to align on")
            levels = levels - float(info["homo"])
        b = a.copy()
        b.info[key] = gaussian_broadening(levels, weights, g, sigma)
        b.info[key + GRID_SUFFIX] = g.copy()
        out.append(b)
    return out


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
    return _common_grid(rows, grids, names, grid, on_mismatch, spec)


def _stack_tables(paths: list[str], on_mismatch: str):
    rows, grids, names = [], [], []
    for p in paths:
        g, y, n = read_spectrum_table(p)
        rows += list(y)
        grids += [g] * len(y)
        names += n if len(y) > 1 else [Path(p).stem]
    return _common_grid(rows, grids, names, None, on_mismatch, os.path.dirname(paths[0]))


def _common_grid(rows, grids, names, grid, on_mismatch, where):
    if grid is not None:
        ref = np.asarray(grid, float)
    else:
        ref = next((g for g in grids if g is not None), None)
        if ref is None:
            ref = np.arange(len(rows[0]), dtype=float)
            warnings.warn(f"{where}: no grid recorded; using the point index 0..{len(ref) - 1}", GridWarning, stacklevel=3)
    out, moved = [], 0
    for v, g, n in zip(rows, grids, names):
        if g is None:
            if len(v) != len(ref):
                raise DataError(f"{where}: spectrum {n} has {len(v)} points, the grid has {len(ref)}")
            out.append(v)
            continue
        if len(g) != len(v):
            raise DataError(f"{where}: spectrum {n} has {len(v)} points but its grid has {len(g)}")
        if same_grid(g, ref):
            out.append(v)
            continue
        if on_mismatch == "refuse":
            raise DataError(f"{where}: spectrum {n} is on a different grid ({g[0]:g}..{g[-1]:g}, {len(g)} points) than "
                            f"the first ({ref[0]:g}..{ref[-1]:g}, {len(ref)} points)")
        out.append(interpolate_spectra(v, g, ref, f"{where}: {n}: "))
        moved += 1
    if moved:
        warnings.warn(f"{where}: interpolated {moved} spectra onto a common grid ({len(ref)} points, {ref[0]:g}..{ref[-1]:g})",
                      GridWarning, stacklevel=3)
    y = np.array(out, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise DataError(f"{where}: spectra contain NaN or infinite values")
    return ref, y, names
