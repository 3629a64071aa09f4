"""Parity plots and learning curves (PNG, via matplotlib's non-interactive backend)."""

from __future__ import annotations

import numpy as np

from psilearn.metrics.regression import block_names
from psilearn.targets import Target


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    fig.savefig(path, dpi=120)
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
    fig.savefig(path, dpi=120)
    plt.close(fig)


def spectra_plot(target: Target, ref: np.ndarray, pred: np.ndarray, std: np.ndarray | None, path: str, title: str = "",
                 n_examples: int = 6, names: list[str] | None = None) -> list[int]:
    """A grid (2 x 3 for 6) of example test spectra: reference and prediction with its ±1 std
    band, on the target's grid with its units on the axes. The examples span the errors: the
    best, the worst and evenly spaced ranks of the per-spectrum RMSE in between. Returns their
    indices (rows of ``ref``)."""
    plt = _plt()
    grid = np.asarray(target.grid, dtype=float)
    err = np.sqrt(np.mean((pred - ref) ** 2, axis=1))
    order = np.argsort(err, kind="stable")
    k = min(n_examples, len(order))
    picks = [int(order[int(round(j))]) for j in np.linspace(0, len(order) - 1, k)] if k else []
    cols = min(3, max(k, 1))
    rows = max(1, -(-k // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    xlabel = "grid point" if target.grid_units in ("", "index") else f"{target.key} grid [{target.grid_units}]"
    ylabel = f"{target.key}" + (f" [{target.units}]" if target.units else "")
    for ax in axes.ravel()[k:]:
        ax.set_visible(False)
    for ax, i in zip(axes.ravel(), picks):
        ax.plot(grid, ref[i], color="k", lw=1.2, label="reference")
        ax.plot(grid, pred[i], color="C3", lw=1.0, label="predicted")
        if std is not None:
            ax.fill_between(grid, pred[i] - std[i], pred[i] + std[i], color="C3", alpha=0.25, lw=0, label="±1 std")
        ax.set_title(f"{names[i] if names else f'test spectrum {i}'}: RMSE {err[i]:.3g}", fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    if picks:
        axes.ravel()[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return picks
