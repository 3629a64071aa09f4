"""Error metrics per irreducible channel and for the Cartesian tensor."""

from __future__ import annotations

import numpy as np

from psilearn.targets import Target


def _scores(ref: np.ndarray, pred: np.ndarray) -> dict:
    err = pred - ref
    spread = np.sqrt(np.mean((ref - ref.mean(0)) ** 2)) if len(ref) > 1 else float("nan")
    rmse = float(np.sqrt(np.mean(err**2)))
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": rmse,
        "pct_rmse": float(100 * rmse / spread) if spread > 0 else float("nan"),
    }


def block_names(target: Target) -> list[str]:
    """Readable names of the learned irreps, numbered when an irrep occurs more than once."""
    names = [b.name for b in target.blocks]
    return [f"{n}#{names[:i].count(n)}" if names.count(n) > 1 else n for i, n in enumerate(names)]


def regression_metrics(target: Target, ref_irreps: np.ndarray, pred_irreps: np.ndarray) -> dict:
    """MAE, RMSE and RMSE as % of the reference spread (std about the mean), for the Cartesian
    tensor and each irreducible channel. Units: those of the labels."""
    out = {
        "n_samples": int(len(ref_irreps)),
        "cartesian": _scores(target.to_cartesian(ref_irreps), target.to_cartesian(pred_irreps)),
        "channels": {},
    }
    for name, b in zip(block_names(target), target.blocks):
        out["channels"][name] = _scores(ref_irreps[:, b.cols], pred_irreps[:, b.cols])
    return out


def calibration(ref: np.ndarray, pred: np.ndarray, std: np.ndarray) -> dict:
    """Fraction of |error| within 1 and 2 predicted standard deviations (Gaussian ideal: 0.683,
    0.954), and the RMS of error/std (ideal 1)."""
    z = np.abs(pred - ref) / np.maximum(std, 1e-300)
    return {
        "within_1sigma": float(np.mean(z <= 1)),
        "within_2sigma": float(np.mean(z <= 2)),
        "rms_z": float(np.sqrt(np.mean(z**2))),
    }
