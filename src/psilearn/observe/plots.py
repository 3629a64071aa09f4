"""PNG plots of spectra, comparisons, vibrational spectra and PCA maps (matplotlib, Agg)."""

from __future__ import annotations

import numpy as np

from psilearn.data.outputs import atomic_write


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str) -> None:
    """Write ``fig`` as a PNG (120 dpi) atomically: a crash mid-write leaves no half-written file."""
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=120)


def plot_spectra(grid, spectra: dict[str, np.ndarray], path: str, xlabel: str = "energy", ylabel: str = "intensity",
                 title: str = "") -> None:
    """One line per named spectrum (each (n_grid,)) on a common grid."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, y in spectra.items():
        ax.plot(grid, y, label=name, lw=1.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _finish(plt, fig, ax, path, title, legend=len(spectra) > 1)


def plot_comparison(grid, ref: np.ndarray, pred: np.ndarray, path: str, names=("A", "B"), labels=None,
                    xlabel: str = "energy", max_panels: int = 6, scores: np.ndarray | None = None) -> None:
    """Pairs of spectra (n, n_grid) overlaid, up to ``max_panels`` panels (the worst pairs by
    ``scores``, lower = worse, when given)."""
    plt = _plt()
    n = len(ref)
    idx = np.arange(n) if scores is None else np.argsort(np.nan_to_num(scores, nan=-np.inf))
    idx = idx[:max_panels]
    fig, axes = plt.subplots(len(idx), 1, figsize=(6, 2.2 * len(idx)), squeeze=False, sharex=True)
    for ax, i in zip(axes[:, 0], idx):
        ax.plot(grid, ref[i], label=names[0], lw=1.2)
        ax.plot(grid, pred[i], label=names[1], lw=1.2, ls="--")
        ax.set_title(labels[i] if labels is not None else f"spectrum {i}", fontsize=9)
    axes[0, 0].legend(fontsize=8)
    axes[-1, 0].set_xlabel(xlabel)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_vibrational(spec, path: str, title: str = "") -> None:
    """All columns of a :class:`psilearn.observe.vibrational.VibrationalSpectrum`."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, y in spec.columns.items():
        ax.plot(spec.wavenumber_cm1, y, label=name, lw=1.0)
    ax.set_xlabel("wavenumber (cm$^{-1}$)")
    ax.set_ylabel("intensity (arb. units)")
    ax.set_xlim(0, spec.wavenumber_cm1.max())
    _finish(plt, fig, ax, path, title, legend=len(spec.columns) > 1)


def plot_pca(grid, pca, labels: np.ndarray, path: str, xlabel: str = "energy", names=None) -> None:
    """Three panels: PC1-PC2 scores coloured by cluster, the leading components, and the mean
    spectrum of each cluster."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    pc2 = pca.scores[:, 1] if pca.scores.shape[1] > 1 else np.zeros(len(pca.scores))
    sc = ax.scatter(pca.scores[:, 0], pc2, c=labels, cmap="tab10", s=18)
    ax.set_xlabel(f"PC1 ({100 * pca.explained[0]:.1f}%)")
    ax.set_ylabel(f"PC2 ({100 * pca.explained[1]:.1f}%)" if len(pca.explained) > 1 else "PC2")
    ax.set_title("scores by cluster")
    ax.legend(*sc.legend_elements(), title="cluster", fontsize=8)
    ax = axes[1]
    for k in range(min(3, len(pca.components))):
        ax.plot(grid, pca.components[k], label=f"PC{k + 1}")
    ax.set_xlabel(xlabel)
    ax.set_title("principal components")
    ax.legend(fontsize=8)
    ax = axes[2]
    recon = pca.inverse(pca.scores)
    for c in np.unique(labels):
        ax.plot(grid, recon[labels == c].mean(0), label=f"cluster {c} (n={int(np.sum(labels == c))})")
    ax.set_xlabel(xlabel)
    ax.set_title("cluster mean spectra")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def _finish(plt, fig, ax, path: str, title: str | None, legend: bool) -> None:
    """Legend (when several curves), title, tight layout; write the PNG at 120 dpi and close."""
    if legend:
        ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
