"""Parity plots, calibration curves and learning curves (PNG, via matplotlib's non-interactive backend)."""

from __future__ import annotations

import numpy as np

from psilearn.data.outputs import atomic_write
from psilearn.metrics.channels import RANK2_PARTS, physical_metrics, physical_parts
from psilearn.targets import Target

MAX_COLUMNS = 4  # panels per row of a parity plot


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str, dpi: int = 120) -> None:
    """Write ``fig`` as a PNG atomically: a crash mid-write leaves no half-written file."""
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=dpi)


def _save(fig, plt, path: str) -> None:
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def parity_panels(target: Target, ref_irreps: np.ndarray, pred_irreps: np.ndarray,
                  channels: bool = True) -> list[tuple[str, np.ndarray, np.ndarray, str]]:
    """(title, reference (n, k), prediction (n, k), error summary) per panel: the Cartesian
    components, then (with ``channels``) each irreducible part, blocks of the same irrep merged into
    one panel; rank-2 parts in physical terms (:mod:`psilearn.metrics.channels`: isotropic =
    trace/3, the antisymmetric and anisotropic parts' Cartesian components, their errors summarised
    as the RMS Frobenius norm, as in the evaluate table)."""
    unit = f" {target.units}" if target.units else ""

    def rmse(r, p):
        return f"RMSE {np.sqrt(np.mean((r - p) ** 2)):.3g}{unit}"

    cart_r, cart_p = target.to_cartesian(ref_irreps), target.to_cartesian(pred_irreps)
    panels = [("Cartesian", cart_r, cart_p, rmse(cart_r, cart_p))]
    if not channels or (len(target.blocks) == 1 and target.rank == 0):
        return panels
    phys_r, phys_p = physical_parts(target, ref_irreps), physical_parts(target, pred_irreps)
    if phys_r is not None:
        scores = physical_metrics(target, ref_irreps, pred_irreps)["channels"]
        for (name, r), b in zip(phys_r.items(), target.blocks):
            part, definition = RANK2_PARTS[b.l]
            if b.l == 0:
                panels.append((f"{part} ({definition})", r, phys_p[name], rmse(r, phys_p[name])))
            else:
                symbol = "A" if b.l == 1 else "S"
                panels.append((f"{part} part ({name}), components", r, phys_p[name],
                               f"RMS |d{symbol}| {scores[name]['rmse']:.3g}{unit}"))
        return panels
    merged: dict[str, list] = {}
    for b in target.blocks:
        merged.setdefault(b.name, []).append(b.cols)
    for name, cols in merged.items():
        r = np.concatenate([ref_irreps[:, c] for c in cols], axis=1)
        p = np.concatenate([pred_irreps[:, c] for c in cols], axis=1)
        panels.append((f"{name}" + (f" (x{len(cols)})" if len(cols) > 1 else ""), r, p, rmse(r, p)))
    return panels


def _scatter(ax, r: np.ndarray, p: np.ndarray, numbers: np.ndarray | None) -> None:
    """Prediction vs reference, coloured by element when ``numbers`` (one per sample) is given."""
    if numbers is None:
        ax.scatter(r.ravel(), p.ravel(), s=6, alpha=0.6)
        return
    from ase.data import chemical_symbols

    z = np.repeat(numbers, r.shape[1])
    for el in np.unique(z):
        sel = z == el
        ax.scatter(r.ravel()[sel], p.ravel()[sel], s=6, alpha=0.6, label=chemical_symbols[el])


def parity_plot(target: Target, ref_irreps: np.ndarray, pred_irreps: np.ndarray, path: str, title: str = "",
                channels: bool = True, numbers: np.ndarray | None = None) -> None:
    """One panel per irreducible part plus the Cartesian components: prediction vs reference, in the
    data's units (``channels=False``: the Cartesian panel only, e.g. for spectra). ``numbers``: the
    atomic number of each sample (per-atom targets) to colour points by element."""
    plt = _plt()
    panels = parity_panels(target, ref_irreps, pred_irreps, channels)
    ncol = min(len(panels), MAX_COLUMNS)
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 4 * nrow), squeeze=False)
    unit = f" [{target.units}]" if target.units else ""
    for ax, (name, r, p, summary) in zip(axes.ravel(), panels):
        lo, hi = min(r.min(), p.min()), max(r.max(), p.max())
        ax.plot([lo, hi], [lo, hi], color="0.6", lw=1)
        _scatter(ax, r, p, None if numbers is None else np.asarray(numbers))
        ax.set_title(f"{target.key} {name}\n{summary}", fontsize=10)
        ax.set_xlabel(f"reference{unit}")
        ax.set_ylabel(f"predicted{unit}")
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    if numbers is not None:
        axes[0, 0].legend(title="element", markerscale=2, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, plt, path)


def calibration_plot(curve: dict, path: str, title: str = "") -> None:
    """Observed vs expected coverage of central Gaussian intervals (``curve`` from
    :func:`psilearn.metrics.regression.calibration_curve`), with the ideal diagonal."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.fill_between([0, 1], [0, 1], [0, 0], color="tab:red", alpha=0.07, lw=0, label="below: std too small")
    ax.plot([0, 1], [0, 1], color="0.5", lw=1, label="ideal (calibrated)")
    ax.plot(curve["expected"], curve["observed"], "o-", label="model")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("expected coverage of the Gaussian interval ±z·std")
    ax.set_ylabel("observed fraction of errors inside")
    head = f"{title}\n" if title else ""
    ax.set_title(head + f"mean |observed - expected| = {curve['mean_abs_deviation']:.3f}", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, alpha=0.3)
    _save(fig, plt, path)


def learning_curve_plot(sizes: list[int], curves: dict[str, list[float]], path: str, title: str = "",
                        spread: dict[str, list[float]] | None = None) -> None:
    """Log-log % RMSE vs training-set size, one line per channel, ticks at the sizes; ``spread``
    (e.g. the standard deviation over repeats): error bars."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, vals in curves.items():
        err = None if spread is None else spread.get(name)
        ax.errorbar(sizes, vals, yerr=err, fmt="o-", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.1g}"[0] in "25" else ""))
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_xlabel("training structures")
    ax.set_ylabel("test RMSE (% of std)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    _save(fig, plt, path)


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
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return picks
