"""Errors and similarities between reference and predicted spectra on a common grid.

All functions take ``ref`` and ``pred`` of shape (n_grid,) or (n, n_grid) and return a float or an
array (n,), one value per spectrum pair. Units: RMSE and peak errors are in the spectrum's and the
grid's units; the other scores are dimensionless.
"""

from __future__ import annotations

import numpy as np

from psilearn.spectral.checks import as_grid, as_spectra
from psilearn.spectral.fingerprint import FingerprintSpec, fingerprint_similarity
from psilearn.spectral.peaks import peak_position_error
from psilearn.spectral.shift import apply_shift, best_shift


def _pair(ref, pred, n_grid=None):
    r, single = as_spectra(ref, n_grid, "reference spectrum")
    p, _ = as_spectra(pred, r.shape[1] if n_grid is None else n_grid, "predicted spectrum")
    if len(r) != len(p):
        raise ValueError(f"{len(r)} reference but {len(p)} predicted spectra")
    return r, p, single


def _out(x: np.ndarray, single: bool):
    return float(x[0]) if single else x


def rmse(ref, pred) -> np.ndarray | float:
    """Root-mean-square difference over the grid points, per spectrum."""
    r, p, single = _pair(ref, pred)
    return _out(np.sqrt(np.mean((p - r) ** 2, axis=1)), single)


def relative_integrated_error(grid, ref, pred) -> np.ndarray | float:
    """int |pred - ref| dE / int |ref| dE (trapezoidal), per spectrum; 0 is perfect."""
    g = as_grid(grid)
    r, p, single = _pair(ref, pred, len(g))
    num = np.trapezoid(np.abs(p - r), g, axis=1)
    den = np.trapezoid(np.abs(r), g, axis=1)
    return _out(np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan), single)


def pearson(ref, pred) -> np.ndarray | float:
    """Pearson correlation over the grid points, per spectrum (NaN for a constant spectrum)."""
    r, p, single = _pair(ref, pred)
    rc, pc = r - r.mean(1, keepdims=True), p - p.mean(1, keepdims=True)
    den = np.sqrt(np.sum(rc**2, 1) * np.sum(pc**2, 1))
    return _out(np.where(den > 0, np.sum(rc * pc, 1) / np.where(den > 0, den, 1.0), np.nan), single)


def cosine(ref, pred) -> np.ndarray | float:
    """Cosine similarity of the spectra as vectors, per spectrum (NaN for an all-zero spectrum)."""
    r, p, single = _pair(ref, pred)
    den = np.linalg.norm(r, axis=1) * np.linalg.norm(p, axis=1)
    return _out(np.where(den > 0, np.sum(r * p, 1) / np.where(den > 0, den, 1.0), np.nan), single)


def shift_aligned_rmse(grid, ref, pred, max_shift: float) -> tuple[np.ndarray | float, np.ndarray | float]:
    """(RMSE after moving ``pred`` by its best shift onto ``ref``, that shift in grid units).
    The metric for models of spectra whose energy reference is ill-defined."""
    g = as_grid(grid)
    r, p, single = _pair(ref, pred, len(g))
    s = best_shift(g, p, r, max_shift)
    err = np.sqrt(np.mean((apply_shift(g, p, s) - r) ** 2, axis=1))
    return _out(err, single), _out(np.atleast_1d(s), single)


DEFAULT_FINGERPRINT = FingerprintSpec()  # frozen: safe as a shared default


def compare_spectra(grid, ref, pred, n_peaks: int = 3, prominence: float = 0.05,
                    fingerprint: FingerprintSpec = DEFAULT_FINGERPRINT, max_shift: float | None = None) -> dict:
    """Every metric for each pair, plus their means: ``{"per_spectrum": {name: (n,)}, "mean":
    {name: float}}``. Names: rmse, relative_integrated_error, pearson, cosine,
    peak_position_error, tanimoto, and with ``max_shift`` also shift_aligned_rmse and best_shift."""
    g = as_grid(grid)
    r, p, _ = _pair(ref, pred, len(g))
    per = {
        "rmse": rmse(r, p),
        "relative_integrated_error": relative_integrated_error(g, r, p),
        "pearson": pearson(r, p),
        "cosine": cosine(r, p),
        "peak_position_error": peak_position_error(g, r, p, n_peaks, prominence) if len(g) >= 3 else np.full(len(r), np.nan),
        "tanimoto": fingerprint_similarity(g, r, p, fingerprint),
    }
    if max_shift:
        per["shift_aligned_rmse"], per["best_shift"] = shift_aligned_rmse(g, r, p, max_shift)
    mean = {k: float(np.nanmean(v)) if np.any(np.isfinite(v)) else float("nan") for k, v in per.items()}
    return {"n_spectra": int(len(r)), "per_spectrum": per, "mean": mean}


METRIC_INFO = {
    "rmse": ("RMSE", "spectrum units", "lower"),
    "relative_integrated_error": ("rel. integrated error", "", "lower"),
    "pearson": ("Pearson r", "", "higher"),
    "cosine": ("cosine similarity", "", "higher"),
    "peak_position_error": ("peak-position error", "grid units", "lower"),
    "tanimoto": ("fingerprint Tanimoto", "", "higher"),
    "shift_aligned_rmse": ("shift-aligned RMSE", "spectrum units", "lower"),
    "best_shift": ("best shift", "grid units", ""),
}
