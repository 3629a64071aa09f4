"""Peak positions of spectra and the peak-position error between two spectra."""

from __future__ import annotations

import numpy as np

from psilearn.spectral.checks import as_grid, as_spectra


def _find(g: np.ndarray, v: np.ndarray, prominence: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid indices of the peaks of ``v`` standing out by ``prominence`` x its range, and their prominences."""
    from scipy.signal import find_peaks

    span = float(v.max() - v.min())
    if span <= 0:
        return np.zeros(0, int), np.zeros(0)
    idx, props = find_peaks(v, prominence=prominence * span)
    return idx, props["prominences"]


def _refined(g: np.ndarray, v: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Peak positions below the grid spacing: a parabola through each maximum and its neighbours
    (never more than half a grid step from the grid point)."""
    pos = []
    for i in idx:
        y0, y1, y2 = v[i - 1], v[i], v[i + 1]
        curv = y0 - 2 * y1 + y2
        frac = 0.5 * (y0 - y2) / curv if curv < 0 else 0.0
        frac = float(np.clip(frac, -0.5, 0.5))
        pos.append(g[i] + frac * (g[i + 1] - g[i] if frac > 0 else g[i] - g[i - 1]))
    return np.asarray(pos)


def peak_positions(grid, y, prominence: float = 0.05, n_peaks: int | None = None) -> np.ndarray:
    """Positions (grid units) of the peaks of one spectrum ``y`` (n_grid,), most prominent first.

    A peak must stand out by ``prominence`` times the spectrum's range (max - min). Positions are
    refined below the grid spacing by a parabola through the maximum and its neighbours."""
    g = as_grid(grid, min_points=3)
    ys, _ = as_spectra(y, len(g))
    idx, prom = _find(g, ys[0], prominence)
    order = np.argsort(-prom, kind="stable")
    idx = idx[order][:n_peaks] if n_peaks else idx[order]
    return _refined(g, ys[0], idx)


def strongest_peaks(grid, y, prominence: float = 0.05, n_peaks: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The peaks of one spectrum ``y`` (n_grid,), strongest (highest) first: (positions refined as in
    :func:`peak_positions`, grid indices of the maxima). A peak is a local maximum of ``y`` standing
    out by ``prominence`` times its range; ``y[index]`` is its height."""
    g = as_grid(grid, min_points=3)
    ys, _ = as_spectra(y, len(g))
    idx, _ = _find(g, ys[0], prominence)
    idx = idx[np.argsort(-ys[0][idx], kind="stable")]
    idx = idx[:n_peaks] if n_peaks else idx
    return _refined(g, ys[0], idx), idx


def peak_position_error(grid, ref, pred, n_peaks: int = 3, prominence: float = 0.05) -> np.ndarray | float:
    """Mean |distance| (grid units) from each of the ``n_peaks`` most prominent peaks of ``ref`` to
    the nearest peak of ``pred``. NaN where either spectrum has no peak. Shapes (n_grid,) or
    (n, n_grid); returns a float or (n,)."""
    g = as_grid(grid, min_points=3)
    r, single = as_spectra(ref, len(g), "reference spectrum")
    p, _ = as_spectra(pred, len(g), "predicted spectrum")
    if len(r) != len(p):
        raise ValueError(f"{len(r)} reference but {len(p)} predicted spectra")
    out = np.full(len(r), np.nan)
    for k in range(len(r)):
        pr = peak_positions(g, r[k], prominence, n_peaks)
        pp = peak_positions(g, p[k], prominence)
        if len(pr) and len(pp):
            out[k] = float(np.mean(np.min(np.abs(pr[:, None] - pp[None, :]), axis=1)))
    return float(out[0]) if single else out
