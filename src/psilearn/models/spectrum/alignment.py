"""Energy-reference handling for spectrum training: align on a stated feature, or optimise one
rigid shift per structure against the model's own cross-validated predictions."""

from __future__ import annotations

import numpy as np

from psilearn.spectral.shift import apply_shift, best_shift


def feature_position(grid: np.ndarray, y: np.ndarray, feature: str = "edge", level: float = 0.5) -> np.ndarray:
    """Position (grid units) of a stated feature of each spectrum (n, n_grid): 'max' the maximum,
    'edge'/'onset' the first upward crossing of ``level`` x max (linear interpolation)."""
    y = np.atleast_2d(y)
    if feature == "max":
        return grid[np.argmax(y, axis=1)].astype(float)
    out = np.empty(len(y))
    for i, row in enumerate(y):
        thr = level * row.max()
        above = np.flatnonzero(row >= thr)
        j = int(above[0]) if len(above) else int(np.argmax(row))
        if j == 0:
            out[i] = grid[0]
            continue
        y0, y1 = row[j - 1], row[j]
        t = (thr - y0) / (y1 - y0) if y1 != y0 else 0.0
        out[i] = grid[j - 1] + t * (grid[j] - grid[j - 1])
    return out


def align_on_feature(grid, y, feature: str, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(aligned spectra, shifts): each spectrum moved so that its feature sits at the mean position."""
    pos = feature_position(grid, y, feature, level)
    shifts = pos.mean() - pos
    return apply_shift(grid, y, shifts), shifts


def align_to_mean(grid, y, max_shift: float, rounds: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Starting point for :func:`optimise_shifts`: align every spectrum to the mean of the aligned
    set, a few rounds (Procrustes-like); shifts centred to mean zero."""
    shifts = np.zeros(len(y))
    aligned = np.array(y, dtype=float)
    for _ in range(rounds):
        shifts = best_shift(grid, y, aligned.mean(0), max_shift)
        shifts -= shifts.mean()
        aligned = apply_shift(grid, y, shifts)
    return aligned, shifts


def optimise_shifts(grid, y, predict_heldout, max_shift: float, iterations: int = 8, tol: float | None = None,
                    log=None) -> tuple[np.ndarray, np.ndarray, int]:
    """Start from :func:`align_to_mean`, then alternate (1) ``predict_heldout(aligned) -> (n, n_grid)`` cross-validated predictions of the
    currently aligned spectra and (2) moving each *original* spectrum onto its prediction by the
    best shift within ``max_shift``; shifts are centred to mean zero (a common shift of every
    spectrum is not identifiable). Stops when no shift changes by more than ``tol`` (default a
    quarter of the grid spacing). Returns (aligned spectra, shifts (n,), iterations used)."""
    grid = np.asarray(grid, float)
    tol = 0.25 * float(np.min(np.diff(grid))) if tol is None else tol
    aligned, shifts = align_to_mean(grid, y, max_shift)
    for it in range(1, iterations + 1):
        ref = predict_heldout(aligned)
        new = best_shift(grid, y, ref, max_shift)
        new -= new.mean()
        change = float(np.max(np.abs(new - shifts)))
        shifts = new
        aligned = apply_shift(grid, y, shifts)
        if log:
            log(f"shift iteration {it}: max change {change:.4g}, rms shift {np.sqrt(np.mean(shifts ** 2)):.4g}")
        if change <= tol:
            return aligned, shifts, it
    return aligned, shifts, iterations
