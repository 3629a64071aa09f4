"""Spectrum grids and grid reconciliation: where a spectrum's grid is recorded, reading a grid,
comparing grids, and putting spectra from several sources on one grid (interpolated with a
:class:`GridWarning`, or refused with a DataError).

Conventions (extending the extxyz ones): a per-structure spectrum is ``atoms.info[key]`` (n_grid,),
a per-atom spectrum (e.g. a local DOS) is ``atoms.arrays[key]`` (n_atoms, n_grid), and the grid it is
sampled on is ``atoms.info[key + "_grid"]`` (n_grid,). The labelers' broadened DOS records its grid
as ``dos_emin``/``dos_emax``/``dos_npts`` (Hartree), which is understood too.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from ase import Atoms

from psilearn.data.errors import DataError

GRID_SUFFIX = "_grid"
ON_MISMATCH = ("interpolate", "refuse")


class GridWarning(UserWarning):
    """Spectra were interpolated onto another grid, or no grid was recorded."""


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
    from psilearn.data.spectrum_io import read_spectrum_table

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
    if on_mismatch not in ON_MISMATCH:
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


def common_grid(rows, grids, names, grid, on_mismatch: str, where: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Spectra ``rows`` (each on its recorded grid in ``grids``, None = no grid) on one grid:
    ``grid`` if given, else the first recorded one, else the point index (GridWarning). Others are
    interpolated (GridWarning) or refused (``on_mismatch="refuse"``); DataError names ``where`` and
    the spectrum. Returns (grid (n_grid,), spectra (n, n_grid), names)."""
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


def match_spectra(grid_a, spectra_a, grid_b, spectra_b, names_b: list[str], on_mismatch: str = "interpolate",
                  where: tuple[str, str] = ("A", "B")) -> tuple[np.ndarray, list[str]]:
    """Spectra B paired with spectra A, for comparing them pair by pair: B put on A's grid
    (interpolated with a GridWarning, or DataError with ``on_mismatch="refuse"``), and a single
    B repeated against many A. Returns (B (n_a, n_grid_a), names of B); DataError when the
    numbers of spectra differ otherwise. ``where``: names of the two sources for messages."""
    a, b = where
    ga, gb = np.asarray(grid_a, float), np.asarray(grid_b, float)
    yb, nb = np.asarray(spectra_b, float), list(names_b)
    if not same_grid(ga, gb):
        if on_mismatch == "refuse":
            raise DataError(f"{b} is on a different grid ({gb[0]:g}..{gb[-1]:g}, {len(gb)} points) than {a} "
                            f"({ga[0]:g}..{ga[-1]:g}, {len(ga)} points)")
        warnings.warn(f"interpolating {b} onto the grid of {a}", GridWarning, stacklevel=2)
        yb = interpolate_spectra(yb, gb, ga, f"{b}: ")
    n_a = len(spectra_a)
    if len(yb) == 1 and n_a > 1:
        yb = np.repeat(yb, n_a, axis=0)
        nb = nb * n_a
    if n_a != len(yb):
        raise DataError(f"{a} has {n_a} spectra but {b} has {len(yb)} (compare pairs in order, or one against many)")
    return yb, nb
