"""Input validation shared by the spectral tools: clear errors for NaNs, wrong shapes and bad grids.

Every check raises :class:`psilearn.data.errors.DataError` (a ``ValueError``) whose message names
the argument (``what``) and the problem, so that the CLI prints one readable line.
"""

from __future__ import annotations

import numpy as np

from psilearn.errors import DataError


def as_grid(grid, what: str = "grid", min_points: int = 2) -> np.ndarray:
    """A strictly increasing, finite 1-D grid as float64, shape (n,)."""
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 1:
        raise DataError(f"{what}: expected a 1-D grid, got shape {g.shape}")
    if len(g) < min_points:
        raise DataError(f"{what}: needs at least {min_points} points, got {len(g)}")
    if not np.all(np.isfinite(g)):
        raise DataError(f"{what}: contains NaN or infinite values")
    if np.any(np.diff(g) <= 0):
        raise DataError(f"{what}: must be strictly increasing")
    return g


def as_spectra(values, n_grid: int | None = None, what: str = "spectrum") -> tuple[np.ndarray, bool]:
    """Spectra as float64 (n_spectra, n_grid) plus whether the input was a single 1-D spectrum.

    Raises DataError for NaN/inf values, for a shape that is not 1-D or 2-D, and (when ``n_grid`` is
    given) for a length that differs from the grid's."""
    y = np.asarray(values, dtype=np.float64)
    single = y.ndim == 1
    if single:
        y = y[None, :]
    if y.ndim != 2:
        raise DataError(f"{what}: expected shape (n_grid,) or (n_spectra, n_grid), got {np.shape(values)}")
    if n_grid is not None and y.shape[1] != n_grid:
        raise DataError(f"{what}: has {y.shape[1]} points per spectrum but the grid has {n_grid}")
    bad = ~np.isfinite(y)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        where = "" if single else f" (spectra {', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''})"
        raise DataError(f"{what}: contains {int(bad.sum())} NaN or infinite values{where}")
    return y, single


def as_series(values, components: int | tuple[int, ...], what: str = "time series", min_steps: int = 8) -> np.ndarray:
    """A time series as float64 (n_steps, *components): e.g. dipoles (n, 3) or polarizabilities
    (n, 3, 3) (9 numbers per step are reshaped row-major). Raises DataError for NaNs, too few steps
    or a wrong number of components."""
    comp = (components,) if isinstance(components, int) else tuple(components)
    x = np.asarray(values, dtype=np.float64)
    size = int(np.prod(comp))
    if x.ndim < 1 or x.size == 0:
        raise DataError(f"{what}: empty")
    n = x.shape[0]
    if x.size != n * size:
        raise DataError(f"{what}: expected {size} numbers per step {comp}, got shape {x.shape}")
    x = x.reshape((n, *comp))
    if n < min_steps:
        raise DataError(f"{what}: needs at least {min_steps} time steps, got {n}")
    if not np.all(np.isfinite(x)):
        steps = np.flatnonzero(~np.isfinite(x.reshape(n, -1)).all(axis=1))
        raise DataError(f"{what}: NaN or infinite values at step(s) {', '.join(map(str, steps[:5]))}{', ...' if len(steps) > 5 else ''}")
    return x


def positive(value: float, what: str) -> float:
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise DataError(f"{what} must be a positive number, got {value!r}")
    return v
