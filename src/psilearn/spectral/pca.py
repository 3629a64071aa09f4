"""Principal components of a set of spectra and k-means clustering of their scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psilearn.spectral.checks import as_spectra


@dataclass
class SpectraPCA:
    """``mean`` (n_grid,), ``components`` (k, n_grid) orthonormal, ``explained`` (k,) fraction of
    the total variance per component, ``scores`` (n, k) coordinates of each spectrum."""

    mean: np.ndarray
    components: np.ndarray
    explained: np.ndarray
    scores: np.ndarray

    def transform(self, y) -> np.ndarray:
        ys, _ = as_spectra(y, len(self.mean))
        return (ys - self.mean) @ self.components.T

    def inverse(self, scores: np.ndarray) -> np.ndarray:
        return self.mean + np.asarray(scores) @ self.components


def n_for_variance(explained: np.ndarray, fraction: float) -> int:
    """Smallest number of components whose cumulative explained variance reaches ``fraction``."""
    return int(min(len(explained), np.searchsorted(np.cumsum(explained), fraction - 1e-12) + 1))


def fit_pca(y, n_components: int | float | None = None) -> SpectraPCA:
    """PCA of spectra ``y`` (n, n_grid) by SVD of the centred data. ``n_components``: an integer,
    a variance fraction in (0, 1) (e.g. 0.999), or None for all."""
    ys, _ = as_spectra(y, what="spectra for PCA")
    if len(ys) < 2:
        raise ValueError("PCA needs at least 2 spectra")
    mean = ys.mean(0)
    _, s, vt = np.linalg.svd(ys - mean, full_matrices=False)
    var = s**2
    explained = var / var.sum() if var.sum() > 0 else np.zeros_like(var)
    if n_components is None:
        k = len(s)
    elif isinstance(n_components, float) and 0 < n_components < 1:
        k = n_for_variance(explained, n_components)
    else:
        k = int(n_components)
        if not 1 <= k:
            raise ValueError(f"n_components must be >= 1 or a fraction in (0, 1), got {n_components}")
        k = min(k, len(s))
    return SpectraPCA(mean, vt[:k], explained[:k], (ys - mean) @ vt[:k].T)


def kmeans(x: np.ndarray, n_clusters: int, seed: int = 0, n_init: int = 10) -> np.ndarray:
    """Cluster labels (n,) by k-means (k-means++ starts, best of ``n_init`` by inertia)."""
    from scipy.cluster.vq import kmeans2

    x = np.asarray(x, float)
    if not 1 <= n_clusters <= len(x):
        raise ValueError(f"n_clusters must be between 1 and the number of spectra ({len(x)})")
    best, best_inertia = None, np.inf
    rng = np.random.default_rng(seed)
    for _ in range(n_init):
        centres, labels = kmeans2(x, n_clusters, minit="++", seed=rng)
        inertia = float(np.sum((x - centres[labels]) ** 2))
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    # relabel by cluster size (largest first) so results read the same across runs
    sizes = np.bincount(best, minlength=n_clusters)
    order = np.argsort(-sizes, kind="stable")
    remap = np.empty(n_clusters, int)
    remap[order] = np.arange(n_clusters)
    return remap[best]


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient (-1..1, higher = better separated); NaN for one cluster."""
    x = np.asarray(x, float)
    ks = np.unique(labels)
    if len(ks) < 2:
        return float("nan")
    d = np.sqrt(np.maximum(np.sum((x[:, None] - x[None]) ** 2, -1), 0.0))
    s = np.zeros(len(x))
    for i in range(len(x)):
        own = labels == labels[i]
        if own.sum() <= 1:
            continue
        a = d[i, own].sum() / (own.sum() - 1)
        b = min(d[i, labels == k].mean() for k in ks if k != labels[i])
        s[i] = (b - a) / max(a, b) if max(a, b) > 0 else 0.0
    return float(s.mean())


def choose_clusters(x: np.ndarray, k_max: int = 8, seed: int = 0) -> tuple[int, np.ndarray]:
    """(k, labels) with the best silhouette for k = 2..k_max."""
    best = (1, np.zeros(len(x), int), -np.inf)
    for k in range(2, min(k_max, len(x) - 1) + 1):
        labels = kmeans(x, k, seed)
        s = silhouette(x, labels)
        if s > best[2]:
            best = (k, labels, s)
    return best[0], best[1]
