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


def per_element_metrics(target: Target, ref_irreps: np.ndarray, pred_irreps: np.ndarray, numbers) -> dict:
    """:func:`regression_metrics` for the atoms of each element separately (per-atom targets;
    ``numbers`` the atomic number of each sample), keyed by element symbol in order of atomic
    number; RMSE % std relative to that element's own spread. Each entry also has ``n_atoms`` and,
    for rank-2 targets, ``physical`` (:func:`psilearn.metrics.channels.physical_metrics`)."""
    from ase.data import chemical_symbols

    from psilearn.metrics.channels import physical_metrics

    numbers = np.asarray(numbers, dtype=int)
    if len(numbers) != len(ref_irreps):
        raise ValueError(f"{len(numbers)} atomic numbers for {len(ref_irreps)} samples")
    out = {}
    for z in np.unique(numbers):
        sel = numbers == z
        m = regression_metrics(target, ref_irreps[sel], pred_irreps[sel])
        entry = {"n_atoms": int(sel.sum()), "cartesian": m["cartesian"], "channels": m["channels"]}
        physical = physical_metrics(target, ref_irreps[sel], pred_irreps[sel])
        if physical is not None:
            entry["physical"] = physical["channels"]
        out[chemical_symbols[z]] = entry
    return out


#: expected coverages of the central Gaussian intervals in a calibration curve
CALIBRATION_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.683, 0.8, 0.9, 0.954, 0.99)


def calibration_curve(ref: np.ndarray, pred: np.ndarray, std: np.ndarray, levels=CALIBRATION_LEVELS) -> dict | None:
    """Observed against expected coverage of the predicted uncertainty: for each confidence level p,
    the fraction of errors inside the central Gaussian interval ± z_p std (z_p = Φ⁻¹((1 + p)/2)).
    A calibrated model lies on the diagonal; below it the predicted std is too small. Returns
    {"expected": levels, "observed": fractions, "z": z_p, "mean_abs_deviation": mean |observed -
    expected|}, or None when every predicted std is zero (no uncertainty estimate)."""
    from statistics import NormalDist

    ref, pred, std = (np.asarray(x, dtype=np.float64).ravel() for x in (ref, pred, std))
    if not np.any(std > 0):
        return None
    z = np.abs(pred - ref) / np.maximum(std, 1e-300)
    levels = [float(p) for p in levels]
    zp = [NormalDist().inv_cdf((1 + p) / 2) for p in levels]
    observed = [float(np.mean(z <= q)) for q in zp]
    return {"expected": levels, "observed": observed, "z": zp,
            "mean_abs_deviation": float(np.mean(np.abs(np.subtract(observed, levels))))}
