"""Test error against training-set size (what ``psilearn learning-curve`` prints).

>>> import psilearn
>>> t = psilearn.Target("alpha", tensor="ij=ji")
>>> lc = psilearn.learning_curve("train.xyz", "test.xyz", t, [50, 100, 200])
>>> lc["sizes"], lc["pct_rmse"]["Cartesian"], lc["fit_seconds"]
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from psilearn.data import Dataset, load_dataset
from psilearn.metrics.regression import block_names, regression_metrics


def check_sizes(sizes, n_train: int) -> list[int]:
    """Sorted distinct training sizes; ValueError unless all lie in [2, n_train]."""
    try:
        out = sorted({int(s) for s in sizes})
    except (TypeError, ValueError):
        raise ValueError(f"sizes must be integers, got {sizes!r}") from None
    if not out or out[0] < 2 or out[-1] > n_train:
        raise ValueError(f"sizes must lie between 2 and the number of training structures ({n_train}), got {out}")
    return out


def _as_dataset(data, target, symmetrize: bool) -> Dataset:
    if isinstance(data, Dataset):
        if data.target != target:
            raise ValueError(f"the data's target {data.target.describe()} is not {target.describe()}")
        return data
    return load_dataset(data, target, symmetrize=symmetrize)


def learning_curve(train, test, target, sizes, *, model: str = "sagpr", config: dict | str | None = None, seed: int = 0,
                   symmetrize: bool = False, run_options: dict | None = None,
                   progress: Callable[[dict], None] | None = None) -> dict:
    """Fit models of kind ``model`` on random subsets of ``train`` of each of ``sizes`` structures
    (nested: the first n of one permutation drawn with ``seed``) and test each on ``test``.

    ``train``/``test``: Datasets of ``target``, paths/specs or lists of Atoms. ``config``: options
    dict or YAML path for :func:`psilearn.models.factory.fit_model` (``run_options`` likewise).
    ``progress(row)`` is called after each size with the row described below.

    Returns a JSON-able dict: ``sizes``; ``pct_rmse`` {"Cartesian" and each irrep channel: [test
    RMSE as % of the test labels' spread, one per size]}; ``fit_seconds`` (one per size); ``rows``
    ({"n_train", "pct_rmse": {channel: value}, "fit_seconds", "metrics": full test metrics} per
    size); ``n_train``/``n_test`` (structures available) and ``target`` (the Target as a dict)."""
    from psilearn.models.factory import fit_model

    train = _as_dataset(train, target, symmetrize)
    test = _as_dataset(test, target, symmetrize)
    sizes = check_sizes(sizes, len(train))
    order = np.random.default_rng(seed).permutation(len(train))
    names = ["Cartesian", *block_names(target)]
    ref = target.to_irreps(test.values)
    rows = []
    for n in sizes:
        t0 = time.perf_counter()
        fitted = fit_model(model, target, train.subset(np.sort(order[:n])), config, seed=seed, progress=False,
                           run_options=run_options)
        fit_s = time.perf_counter() - t0
        m = regression_metrics(target, ref, fitted.predict(test.frames, return_std=False).irreps)
        pct = {"Cartesian": m["cartesian"]["pct_rmse"], **{k: m["channels"][k]["pct_rmse"] for k in names[1:]}}
        rows.append({"n_train": n, "pct_rmse": pct, "fit_seconds": fit_s, "metrics": m})
        if progress is not None:
            progress(rows[-1])
    return {
        "sizes": sizes,
        "pct_rmse": {k: [r["pct_rmse"][k] for r in rows] for k in names},
        "fit_seconds": [r["fit_seconds"] for r in rows],
        "rows": rows,
        "n_train": len(train),
        "n_test": len(test),
        "target": target.to_dict(),
    }
