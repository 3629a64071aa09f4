"""Binned spectral fingerprints and their Tanimoto similarity.

Following the DOS fingerprint of Kuban, Rigamonti, Scheidgen and Draxl (Sci. Data 9, 646 (2022);
Kuban & Draxl's similarity measure for materials), a spectrum is turned into a binary raster: the
energy axis is cut into bins (uniform by default, or any edges, e.g. finer near the Fermi level),
the mean spectral value of each bin is compared with a ladder of height levels, and cell
(bin, level) is 1 when the bin value reaches the level: a pixelated picture of the area under the
curve. Two rasters are compared with the Tanimoto coefficient |a AND b| / |a OR b| (1 = identical
up to the resolution, 0 = disjoint). Negative values are clipped at zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psilearn.spectral.checks import as_grid, as_spectra


@dataclass(frozen=True)
class FingerprintSpec:
    """Raster resolution: ``n_bins`` energy bins over [emin, emax] (default: the whole grid) or
    explicit bin ``edges`` (grid units), and ``n_levels`` height levels up to ``ymax`` (default:
    the largest value among the spectra being compared, so both share one height scale)."""

    n_bins: int = 64
    n_levels: int = 32
    emin: float | None = None
    emax: float | None = None
    ymax: float | None = None
    edges: tuple[float, ...] | None = None

    def bin_edges(self, grid: np.ndarray) -> np.ndarray:
        if self.edges is not None:
            e = as_grid(self.edges, "fingerprint edges")
        else:
            lo = grid[0] if self.emin is None else self.emin
            hi = grid[-1] if self.emax is None else self.emax
            if hi <= lo or self.n_bins < 1:
                raise ValueError("fingerprint needs emax > emin and n_bins >= 1")
            e = np.linspace(lo, hi, self.n_bins + 1)
        return e


def _bin_means(grid: np.ndarray, y: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean of each spectrum over each bin (trapezoidal integral / width), shape (n, n_bins)."""
    fine = np.union1d(grid, edges[(edges > grid[0]) & (edges < grid[-1])])
    yf = np.stack([np.interp(fine, grid, row, left=0.0, right=0.0) for row in y])
    # cumulative trapezoid, then differences at the edges
    cum = np.concatenate([np.zeros((len(y), 1)), np.cumsum(0.5 * (yf[:, 1:] + yf[:, :-1]) * np.diff(fine), axis=1)], axis=1)
    at_edges = np.stack([np.interp(edges, fine, c) for c in cum])
    return np.diff(at_edges, axis=1) / np.diff(edges)


def fingerprints(grid, y, spec: FingerprintSpec = FingerprintSpec()) -> np.ndarray:
    """Binary fingerprints (n, n_bins, n_levels) of spectra ``y`` (n_grid,) or (n, n_grid).
    Without ``spec.ymax`` the height scale is the largest bin value over all given spectra."""
    g = as_grid(grid)
    ys, _ = as_spectra(y, len(g))
    means = np.clip(_bin_means(g, np.clip(ys, 0.0, None), spec.bin_edges(g)), 0.0, None)
    ymax = float(means.max()) if spec.ymax is None else float(spec.ymax)
    if ymax <= 0:
        return np.zeros((len(ys), means.shape[1], spec.n_levels), dtype=bool)
    levels = ymax * (np.arange(spec.n_levels) + 0.5) / spec.n_levels  # cell centres
    return means[:, :, None] >= levels[None, None, :]


def tanimoto(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Tanimoto coefficient of binary fingerprints (..., n_bins, n_levels); 1.0 when both are empty."""
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    both = np.sum(a & b, axis=(-2, -1))
    either = np.sum(a | b, axis=(-2, -1))
    out = np.where(either > 0, both / np.maximum(either, 1), 1.0)
    return float(out) if np.ndim(out) == 0 else out


def fingerprint_similarity(grid, ref, pred, spec: FingerprintSpec = FingerprintSpec()) -> np.ndarray | float:
    """Tanimoto similarity of the fingerprints of ``ref`` and ``pred`` (each (n_grid,) or
    (n, n_grid)), pair by pair; both rasters share one height scale (``spec.ymax`` or the larger
    maximum of the pair)."""
    g = as_grid(grid)
    r, single = as_spectra(ref, len(g), "reference spectrum")
    p, _ = as_spectra(pred, len(g), "predicted spectrum")
    if len(r) != len(p):
        raise ValueError(f"{len(r)} reference but {len(p)} predicted spectra")
    out = np.empty(len(r))
    for k in range(len(r)):
        fp = fingerprints(g, np.stack([r[k], p[k]]), spec)
        out[k] = tanimoto(fp[0], fp[1])
    return float(out[0]) if single else out


def similarity_matrix(grid, y, spec: FingerprintSpec = FingerprintSpec()) -> np.ndarray:
    """All-pairs Tanimoto matrix (n, n) of spectra ``y`` (n, n_grid) on one common height scale."""
    fp = fingerprints(grid, y, spec).reshape(len(np.atleast_2d(y)), -1)
    a = fp.astype(np.float64)
    both = a @ a.T
    cnt = a.sum(1)
    either = cnt[:, None] + cnt[None, :] - both
    return np.where(either > 0, both / np.maximum(either, 1), 1.0)
