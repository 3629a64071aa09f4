"""Irreducible channels in physical terms, in the data's units.

Models learn a tensor's irreducible parts in e3nn's orthonormal basis, where the invariant (0e) part
of a rank-2 tensor T is trace(T)/sqrt(3): correct, but not what anyone quotes. For rank-2 targets
this module reports each part as a physicist would:

* ``l = 0``: the **isotropic** value trace(T)/3 (e.g. the isotropic shielding, the mean
  polarizability), a signed scalar;
* ``l = 1``: the **antisymmetric** part A = (T - T^T)/2, errors as the Frobenius norm |ΔA|;
* ``l = 2``: the **anisotropic** part S = (T + T^T)/2 - trace(T)/3 I (symmetric traceless),
  errors as the Frobenius norm |ΔS|.

MAE and RMSE are over samples of |error| (the signed error for the isotropic value); RMSE % std
divides by the RMS deviation of the reference part from its mean (the same ratio as in the
orthonormal basis). Other ranks have no such names: :func:`physical_parts` returns None.
"""

from __future__ import annotations

import numpy as np

from psilearn.metrics.regression import block_names
from psilearn.targets import Target

#: rank-2 part of degree l -> (short name, definition)
RANK2_PARTS = {
    0: ("isotropic", "trace/3"),
    1: ("antisymmetric", "|A|, A = (T - T^T)/2"),
    2: ("anisotropic", "|S|, S = sym(T) - trace/3 I"),
}

CONVENTION = ("rank-2 parts in the data's units: isotropic = trace/3 (signed error); antisymmetric A = (T - T^T)/2 and "
              "anisotropic S = (T + T^T)/2 - trace/3 I (errors as Frobenius norms |dA|, |dS|)")


def has_physical_parts(target: Target) -> bool:
    """True for rank-2 tensor targets (the parts have physical names); False otherwise."""
    return not target.is_spectrum and target.rank == 2


def channel_titles(target: Target) -> dict[str, str]:
    """{channel name: title}: ``'0e isotropic'``, ``'1e antisymmetric'``, ``'2e anisotropic'`` for
    rank-2 targets (RMSE % std is the same in either convention), the name itself otherwise."""
    names = block_names(target)
    if not has_physical_parts(target):
        return {n: n for n in names}
    return {n: f"{n} {RANK2_PARTS[b.l][0]}" for n, b in zip(names, target.blocks)}


def _part_tensor(target: Target, irreps: np.ndarray, block) -> np.ndarray:
    """The Cartesian tensor (n, 3, 3) of one irreducible block alone."""
    only = np.zeros_like(irreps)
    only[:, block.cols] = irreps[:, block.cols]
    return target.to_cartesian(only).reshape(-1, 3, 3)


def physical_parts(target: Target, irreps: np.ndarray) -> dict[str, np.ndarray] | None:
    """{channel name: values} for a rank-2 target (None otherwise): the isotropic value trace/3
    (n, 1) for l = 0; for l = 1 and 2 the part's independent Cartesian components in the data's
    units (n, 3): A_xy, A_xz, A_yz, or (n, 6): S_xx, S_yy, S_zz, S_xy, S_xz, S_yz (for parity plots)."""
    if not has_physical_parts(target):
        return None
    irreps = np.asarray(irreps, dtype=np.float64)
    out = {}
    upper = ([0, 0, 1], [1, 2, 2])
    for name, b in zip(block_names(target), target.blocks):
        t = _part_tensor(target, irreps, b)
        if b.l == 0:
            out[name] = np.trace(t, axis1=1, axis2=2)[:, None] / 3
        elif b.l == 1:
            out[name] = t[:, upper[0], upper[1]]
        else:
            out[name] = np.concatenate([t[:, [0, 1, 2], [0, 1, 2]], t[:, upper[0], upper[1]]], axis=1)
    return out


def _norm_scores(err: np.ndarray, dev: np.ndarray) -> dict:
    """MAE/RMSE of per-sample error sizes ``err`` (n,) and RMSE as % of the RMS deviation ``dev``."""
    rmse = float(np.sqrt(np.mean(err**2)))
    spread = float(np.sqrt(np.mean(dev**2))) if len(dev) > 1 else float("nan")
    return {"mae": float(np.mean(np.abs(err))), "rmse": rmse, "pct_rmse": float(100 * rmse / spread) if spread > 0 else float("nan")}


def physical_metrics(target: Target, ref_irreps: np.ndarray, pred_irreps: np.ndarray) -> dict | None:
    """{"convention": CONVENTION, "channels": {name: {"part", "definition", "mae", "rmse",
    "pct_rmse"}}} for a rank-2 target (keys as in ``regression_metrics(...)["channels"]``), or None."""
    if not has_physical_parts(target):
        return None
    ref, pred = np.asarray(ref_irreps, np.float64), np.asarray(pred_irreps, np.float64)
    channels = {}
    for name, b in zip(block_names(target), target.blocks):
        r, p = _part_tensor(target, ref, b), _part_tensor(target, pred, b)
        if b.l == 0:
            iso_r, iso_p = np.trace(r, axis1=1, axis2=2) / 3, np.trace(p, axis1=1, axis2=2) / 3
            scores = _norm_scores(iso_p - iso_r, iso_r - iso_r.mean())
        else:
            scores = _norm_scores(np.linalg.norm(p - r, axis=(1, 2)), np.linalg.norm(r - r.mean(0), axis=(1, 2)))
        part, definition = RANK2_PARTS[b.l]
        channels[name] = {"part": part, "definition": definition, **scores}
    return {"convention": CONVENTION, "channels": channels}
