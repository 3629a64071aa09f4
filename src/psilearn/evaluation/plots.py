"""Parity plots and learning curves (PNG, via matplotlib's non-interactive backend)."""

from __future__ import annotations

import numpy as np

from psilearn.data.outputs import atomic_write
from psilearn.metrics.regression import block_names
from psilearn.targets import Target


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str) -> None:
    """Write ``fig`` as a PNG (120 dpi) atomically: a crash mid-write leaves no half-written file."""
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=120)


def parity_plot(target: Target, ref_irreps: np.ndarray, pred_irreps: np.ndarray, path: str, title: str = "",
                channels: bool = True) -> None:
    """One panel per irreducible channel plus the Cartesian components: prediction vs reference
    (``channels=False``: the Cartesian panel only, e.g. for spectra, one channel per grid point)."""
    plt = _plt()
    panels = [("Cartesian", target.to_cartesian(ref_irreps), target.to_cartesian(pred_irreps))]
    if channels and (len(target.blocks) > 1 or target.rank > 0):
        panels += [(n, ref_irreps[:, b.cols], pred_irreps[:, b.cols]) for n, b in zip(block_names(target), target.blocks)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    unit = f" [{target.units}]" if target.units else ""
    for ax, (name, r, p) in zip(axes[0], panels):
        r, p = r.ravel(), p.ravel()
        lo, hi = min(r.min(), p.min()), max(r.max(), p.max())
        ax.plot([lo, hi], [lo, hi], color="0.6", lw=1)
        ax.scatter(r, p, s=6, alpha=0.6)
        rmse = np.sqrt(np.mean((r - p) ** 2))
        ax.set_title(f"{target.key} {name}: RMSE {rmse:.3g}")
        ax.set_xlabel(f"reference{unit}")
        ax.set_ylabel(f"predicted{unit}")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def learning_curve_plot(sizes: list[int], curves: dict[str, list[float]], path: str, title: str = "") -> None:
    """Log-log % RMSE vs training-set size, one line per channel."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, vals in curves.items():
        ax.loglog(sizes, vals, "o-", label=name)
    ax.set_xlabel("training structures")
    ax.set_ylabel("test RMSE (% of std)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
