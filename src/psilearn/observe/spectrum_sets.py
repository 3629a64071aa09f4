"""Sets of spectra from files: pairwise comparison of two sources and PCA with clustering of one
(what ``psilearn compare`` and ``psilearn pca`` run). Sources are anything
:func:`psilearn.data.spectra.load_spectra` reads: spectrum tables, folders of them, XANES folders,
structure files or DeePMD systems with a spectrum label.
"""

from __future__ import annotations

import numpy as np

from psilearn.data.grids import match_spectra, parse_grid
from psilearn.data.outputs import open_atomic
from psilearn.data.spectrum_io import load_spectra
from psilearn.spectral.fingerprint import FingerprintSpec


def _grid(grid):
    return parse_grid(grid) if isinstance(grid, str) else grid


# ---- compare ---------------------------------------------------------------------------------------
def compare_sources(a, b, *, key: str | None = None, key_b: str | None = None, grid=None, split: str | None = None,
                    on_mismatch: str = "interpolate", n_peaks: int = 3, fingerprint: FingerprintSpec | None = None,
                    max_shift: float | None = None) -> dict:
    """Metrics between the spectra of sources ``a`` and ``b``, pair by pair (B on A's grid, one B
    against many A allowed; see :func:`psilearn.data.grids.match_spectra`). ``key``/``key_b``:
    spectrum labels in structure files (``key_b`` defaults to ``key``); ``grid``: grid of sources
    that record none (array or text for :func:`~psilearn.data.grids.parse_grid`).

    Returns :func:`psilearn.spectral.metrics.compare_spectra`'s dict (``n_spectra``,
    ``per_spectrum``, ``mean``) plus ``a``, ``b``, ``grid``, ``spectra_a``, ``spectra_b``,
    ``names_a`` and ``names_b``."""
    from psilearn.spectral.metrics import compare_spectra

    grid = _grid(grid)
    ga, ya, na = load_spectra(a, key, grid, split, on_mismatch)
    gb, yb, nb = load_spectra(b, key_b or key, grid, split, on_mismatch)
    yb, nb = match_spectra(ga, ya, gb, yb, nb, on_mismatch, where=(str(a), str(b)))
    res = compare_spectra(ga, ya, yb, n_peaks=n_peaks, fingerprint=fingerprint or FingerprintSpec(), max_shift=max_shift)
    res.update(a=str(a), b=str(b), grid=ga, spectra_a=ya, spectra_b=yb, names_a=list(na), names_b=list(nb))
    return res


def comparison_summary(res: dict) -> dict:
    """The JSON-able part of :func:`compare_sources`' result: a, b, n_spectra, mean,
    per_spectrum (lists) and names (of A)."""
    return {"a": res["a"], "b": res["b"], "n_spectra": res["n_spectra"], "mean": res["mean"],
            "per_spectrum": {k: np.asarray(v).tolist() for k, v in res["per_spectrum"].items()}, "names": res["names_a"]}


def write_comparison_csv(path, res: dict) -> None:
    """One row per pair: name_a, name_b, then every metric of :func:`compare_sources`."""
    keys = list(res["per_spectrum"])
    with open_atomic(path) as fh:
        fh.write(",".join(["name_a", "name_b", *keys]) + "\n")
        for i in range(res["n_spectra"]):
            fh.write(",".join([res["names_a"][i], res["names_b"][i], *[f"{res['per_spectrum'][k][i]:.6g}" for k in keys]]) + "\n")


# ---- pca ---------------------------------------------------------------------------------------------
def spectra_pca(source, *, key: str | None = None, grid=None, split: str | None = None, on_mismatch: str = "interpolate",
                n_components: int | float = 10, clusters: int | str = "auto", cluster_dims: int = 3,
                normalize: bool = False, seed: int = 0) -> dict:
    """Principal components of the spectra of ``source`` and k-means clusters of the leading
    ``cluster_dims`` scores. ``n_components``: a number, or a variance fraction in (0, 1);
    ``clusters``: a number, or 'auto' (best silhouette for 2..8); ``normalize`` scales each
    spectrum to a maximum of 1 first.

    Returns ``grid``, ``spectra``, ``names``, ``pca`` (:class:`psilearn.spectral.pca.SpectraPCA`:
    components, explained variance fractions, scores), ``labels`` (cluster of each spectrum),
    ``n_clusters``, ``cluster_dims`` (scores used) and ``silhouette``."""
    from psilearn.spectral.pca import choose_clusters, fit_pca, kmeans, silhouette

    g, y, names = load_spectra(source, key, _grid(grid), split, on_mismatch)
    if normalize:
        y = y / np.maximum(np.abs(y).max(1, keepdims=True), 1e-300)
    pca = fit_pca(y, n_components)
    use = pca.scores[:, : max(1, min(int(cluster_dims), pca.scores.shape[1]))]
    if clusters == "auto":
        k, labels = choose_clusters(use, seed=seed)
    else:
        k = int(clusters)
        labels = kmeans(use, k, seed)
    return {"grid": g, "spectra": y, "names": list(names), "pca": pca, "labels": labels, "n_clusters": int(k),
            "cluster_dims": int(use.shape[1]), "silhouette": float(silhouette(use, labels))}


def write_pca_csv(path, res: dict) -> None:
    """One row per spectrum: name, cluster, then its PC scores."""
    scores = res["pca"].scores
    with open_atomic(path) as fh:
        fh.write(",".join(["name", "cluster", *[f"PC{i + 1}" for i in range(scores.shape[1])]]) + "\n")
        for n, c, s in zip(res["names"], res["labels"], scores):
            fh.write(",".join([n, str(c), *[f"{v:.6g}" for v in s]]) + "\n")
