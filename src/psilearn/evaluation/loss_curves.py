"""Loss curves of iteratively trained models (nn, qeq-nn): a CSV table and a PNG plot.

The history comes from the model's training metadata: ``metadata["members"][k]["history"]`` for
each ensemble member (files written by psilearn 0.2.0 and earlier recorded only the first
member's, as ``metadata["history"]``). Each row is one epoch: training loss (mean over the epoch's
batches), validation loss (at the epoch's end, with the averaged weights) and learning rate. The
losses are the weighted, normalised mean squared errors minimised in training (dimensionless).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

COLUMNS = ("member", "epoch", "train_loss", "val_loss", "lr")


def training_histories(metadata: dict) -> list[list[dict]]:
    """The loss history of every ensemble member (a list of per-epoch dicts each), or [] for
    models not trained iteratively."""
    members = [m.get("history") for m in metadata.get("members") or [] if isinstance(m, dict)]
    if members and all(members):
        return members
    return [metadata["history"]] if metadata.get("history") else []


def loss_curve_paths(model_path) -> tuple[Path, Path]:
    """The sibling files of a model directory: ``MODEL.loss.csv`` and ``MODEL.loss.png``."""
    base = str(model_path).rstrip("/\\")
    return Path(base + ".loss.csv"), Path(base + ".loss.png")


def write_loss_csv(histories: list[list[dict]], path) -> None:
    """One row per member and epoch: member, epoch, train_loss, val_loss, lr."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for k, hist in enumerate(histories):
            for h in hist:
                w.writerow([k, h["epoch"], *(("" if h.get(c) is None else repr(float(h[c]))) for c in COLUMNS[2:])])


def _column(hist: list[dict], key: str) -> np.ndarray:
    return np.array([np.nan if h.get(key) is None else float(h[key]) for h in hist])


def loss_curve_plot(histories: list[list[dict]], path, title: str = "") -> None:
    """Training (dashed) and validation (solid, a dot at its minimum) loss per epoch on a log
    scale, one colour per ensemble member, with the learning rate in a second panel."""
    from psilearn.evaluation.plots import _plt

    plt = _plt()
    fig, (ax, ax_lr) = plt.subplots(2, 1, figsize=(6, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, hist in enumerate(histories):
        c = colors[k % len(colors)]
        epoch = _column(hist, "epoch")
        who = f"member {k}" if len(histories) > 1 else ""
        ax.plot(epoch, _column(hist, "train_loss"), "--", color=c, label=f"train {who}".strip())
        val = _column(hist, "val_loss")
        ax.plot(epoch, val, "-", color=c, label=f"validation {who}".strip())
        if np.isfinite(val).any():  # the best validation epoch: the weights kept (restore_best)
            best = int(np.nanargmin(val))
            ax.plot(epoch[best], val[best], "o", color=c, ms=4)
        ax_lr.plot(epoch, _column(hist, "lr"), "-", color=c)
    ax.set_yscale("log")
    ax.set_ylabel("loss (normalised MSE)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", ncol=2 if len(histories) > 2 else 1)
    ax_lr.set_yscale("log")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("epoch")
    ax_lr.grid(True, which="both", alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_loss_curves(metadata: dict, model_path, title: str = "") -> tuple[Path, Path] | None:
    """Write ``MODEL.loss.csv`` and ``MODEL.loss.png`` next to the model directory ``model_path``
    from its training ``metadata``; returns their paths, or None when the model has no history."""
    histories = training_histories(metadata)
    if not histories:
        return None
    csv_path, png_path = loss_curve_paths(model_path)
    write_loss_csv(histories, csv_path)
    loss_curve_plot(histories, png_path, title=title)
    return csv_path, png_path
