"""The validation estimates logged after every fit: the model's own held-out estimate (k-fold
cross-validation for the kernel kinds) and, with a test set, its test errors (Cartesian tensor)."""

from __future__ import annotations

import math


def _score(metrics: dict | None) -> dict | None:
    cart = (metrics or {}).get("cartesian")
    if not cart:
        return None
    out = {k: float(cart[k]) for k in ("rmse", "mae", "pct_rmse") if k in cart}
    return out if all(math.isfinite(v) for v in out.values()) else None


def validation_record(model, test=None) -> dict:
    """{"heldout": {rmse, mae, pct_rmse} or None, "test": ... or absent} (JSON-safe, finite)."""
    out = {"heldout": _score(model.metadata.get("heldout_metrics"))}
    if test is not None:
        from psilearn.evaluation import evaluate

        out["test"] = _score(evaluate(model, test))
    return out
