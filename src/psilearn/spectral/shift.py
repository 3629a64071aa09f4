"""Rigid energy shifts of spectra on a grid, and the shift that best aligns two spectra.

Convention: ``apply_shift(grid, y, s)`` returns ``y(E - s)``, i.e. every feature moves by ``+s`` in
the grid's units. Values requested outside the grid take the edge value (``fill="edge"``, right for
XANES plateaus and for DOS tails that are already zero) or zero (``fill="zero"``).
"""

from __future__ import annotations

import numpy as np

from psilearn.spectral.checks import as_grid, as_spectra


def _interp_weights(grid: np.ndarray, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left indices j, weights t and an outside-mask for linear interpolation of ``xq`` on ``grid``."""
    j = np.clip(np.searchsorted(grid, xq, side="right") - 1, 0, len(grid) - 2)
    t = (xq - grid[j]) / (grid[j + 1] - grid[j])
    outside = (xq < grid[0]) | (xq > grid[-1])
    return j, np.clip(t, 0.0, 1.0), outside


def apply_shift(grid, y, shift, fill: str = "edge") -> np.ndarray:
    """Spectra ``y`` (n_grid,) or (n, n_grid) moved by ``shift`` (scalar or (n,), grid units).

    Linear interpolation; returns the same shape as ``y``."""
    g = as_grid(grid)
    ys, single = as_spectra(y, len(g))
    s = np.broadcast_to(np.asarray(shift, dtype=np.float64), (len(ys),))
    if fill not in ("edge", "zero"):
        raise ValueError(f"fill must be 'edge' or 'zero', got {fill!r}")
    xq = g[None, :] - s[:, None]  # (n, G): where each output point samples the input
    j, t, outside = _interp_weights(g, xq)
    rows = np.arange(len(ys))[:, None]
    out = ys[rows, j] * (1 - t) + ys[rows, j + 1] * t
    if fill == "zero":
        out[outside] = 0.0
    return out[0] if single else out


def best_shift(grid, y, ref, max_shift: float, step: float | None = None, fill: str = "edge") -> np.ndarray:
    """For each spectrum, the shift s in [-max_shift, max_shift] minimising
    ``sum_E (apply_shift(y, s) - ref)**2``: a scan in steps of ``step`` (default a quarter of the
    smallest grid spacing) refined by a parabola through the best scan point and its neighbours.

    ``y`` and ``ref`` are (n_grid,) or (n, n_grid) (``ref`` may be one spectrum for all).
    Returns shifts (n,) in grid units (a float for a single spectrum)."""
    g = as_grid(grid)
    ys, single = as_spectra(y, len(g))
    refs, _ = as_spectra(ref, len(g), what="reference spectrum")
    refs = np.broadcast_to(refs, ys.shape)
    if max_shift <= 0:
        return 0.0 if single else np.zeros(len(ys))
    h = float(np.min(np.diff(g))) if step is None else float(step)
    n_half = max(1, int(np.ceil(max_shift / h)))
    cands = np.linspace(-n_half * h, n_half * h, 2 * n_half + 1)
    loss = np.empty((len(ys), len(cands)))
    for k, s in enumerate(cands):
        loss[:, k] = np.sum((apply_shift(g, ys, np.full(len(ys), s), fill) - refs) ** 2, axis=1)
    best = np.argmin(loss, axis=1)
    shifts = cands[best].copy()
    inner = (best > 0) & (best < len(cands) - 1)
    i = np.flatnonzero(inner)
    if len(i):
        l0, l1, l2 = loss[i, best[i] - 1], loss[i, best[i]], loss[i, best[i] + 1]
        curv = l0 - 2 * l1 + l2
        ok = curv > 0
        delta = np.where(ok, 0.5 * (l0 - l2) / np.where(ok, curv, 1.0), 0.0)
        shifts[i] += np.clip(delta, -1, 1) * (cands[1] - cands[0])
    shifts = np.clip(shifts, -max_shift, max_shift)
    return float(shifts[0]) if single else shifts


def align(grid, y, ref, max_shift: float, fill: str = "edge") -> tuple[np.ndarray, np.ndarray]:
    """``(aligned, shifts)``: each spectrum of ``y`` moved onto ``ref`` by :func:`best_shift`."""
    s = best_shift(grid, y, ref, max_shift, fill=fill)
    return apply_shift(grid, y, s, fill), s
