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
                   progress: Callable[[dict], None] | None = None, repeats: int = 1) -> dict:
    """Fit models of kind ``model`` on random subsets of ``train`` of each of ``sizes`` structures
    and test each on ``test``. ``repeats`` random subsets per size: repeat r takes the first n of
    the r-th permutation drawn from one generator seeded with ``seed`` (nested within a repeat; the
    first repeat is the single curve of ``repeats=1``); a subset equal to one already fitted (e.g.
    the whole training set) is not fitted again.

    ``train``/``test``: Datasets of ``target``, paths/specs or lists of Atoms. ``config``: options
    dict or YAML path for :func:`psilearn.models.factory.fit_model` (``run_options`` likewise).
    ``progress(row)`` is called after each fit with the row described below.

    Returns a JSON-able dict: ``sizes``; ``repeats``; ``pct_rmse`` {"Cartesian" and each irrep
    channel: [mean over repeats of the test RMSE as % of the test labels' spread, one per size]};
    ``pct_rmse_std`` (the standard deviation over repeats, ddof 1; 0 for one repeat) and
    ``pct_rmse_all`` ([[one per repeat] one per size]) likewise; ``rmse`` and ``rmse_std`` (in the
    label's units) likewise; ``fit_seconds`` (mean per size); ``rows`` ({"n_train", "repeat",
    "pct_rmse": {channel: value}, "fit_seconds", "metrics": full test metrics} per fit, by size
    then repeat); ``n_train``/``n_test`` (structures available), ``train``/``test`` (names),
    ``model``, ``seed`` and ``target`` (the Target as a dict).

    Density targets (``kind: density``; ``model`` 'density' or the default): the density model is
    fitted and scored by :func:`psilearn.evaluation.density.density_learning_curve`: ``metrics``
    {"l2_percent", "metric_error_percent", "dipole_mae_debye": [mean per size]} instead of
    ``pct_rmse``/``rmse``, and ``rows`` with each fit's full density metrics."""
    from psilearn.models.factory import fit_model

    if int(repeats) < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    density = getattr(target, "kind", None) == "density"
    if density:
        from psilearn.evaluation.density import load_density_test

        train, test = load_density_test(train, target), load_density_test(test, target)
    else:
        train = _as_dataset(train, target, symmetrize)
        test = _as_dataset(test, target, symmetrize)
    sizes = check_sizes(sizes, len(train))
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(len(train)) for _ in range(int(repeats))]
    info = {"n_train": len(train), "n_test": len(test), "train": train.name, "test": test.name, "seed": seed, "target": target.to_dict()}
    if density:
        from psilearn.evaluation.density import density_learning_curve

        delta = getattr(model, "inner_kind", None) == "density"  # a delta kind of densities (fit --density --baseline)
        if model not in ("sagpr", "density") and not delta:
            raise ValueError(f"density targets are learnt by the density model kind, not {_kind_name(model)}")
        kind = model if delta else "density"
        lc = density_learning_curve(train, test, target, sizes, orders,
                                    lambda sub: fit_model(kind, target, sub, config, seed=seed, progress=False), progress)
        return {**lc, **info, "model": _kind_name(kind)}
    names = ["Cartesian", *block_names(target)]
    ref = target.to_irreps(test.values)
    rows, done = [], {}
    for n in sizes:
        for r, order in enumerate(orders):
            idx = np.sort(order[:n])
            key = idx.tobytes()
            if key not in done:
                t0 = time.perf_counter()
                fitted = fit_model(model, target, train.subset(idx), config, seed=seed, progress=False, run_options=run_options)
                fit_s = time.perf_counter() - t0
                pred = fitted.predict(test.frames, return_std=False).irreps
                if test.labelled is not None:  # labels on only some atoms: score those
                    pred = pred[test.labelled]
                done[key] = (regression_metrics(target, ref, pred), fit_s)
            m, fit_s = done[key]
            pct = {"Cartesian": m["cartesian"]["pct_rmse"], **{k: m["channels"][k]["pct_rmse"] for k in names[1:]}}
            rows.append({"n_train": n, "repeat": r, "pct_rmse": pct, "fit_seconds": fit_s, "metrics": m})
            if progress is not None:
                progress(rows[-1])
    return {"sizes": sizes, "repeats": len(orders), **_summary(rows, names, sizes, len(orders)), "rows": rows, **info,
            "model": _kind_name(model)}


def _summary(rows: list[dict], names: list[str], sizes: list[int], repeats: int) -> dict:
    """Means, spreads and all values per size of the % RMSE and RMSE of each channel."""
    pct = np.array([[r["pct_rmse"][k] for k in names] for r in rows]).reshape(len(sizes), repeats, len(names))
    rmse = np.array([[r["metrics"]["cartesian"]["rmse"], *[r["metrics"]["channels"][k]["rmse"] for k in names[1:]]]
                     for r in rows]).reshape(len(sizes), repeats, len(names))
    ddof = 1 if repeats > 1 else 0

    def per_channel(a: np.ndarray) -> dict:
        return {k: [float(x) for x in a[:, j]] for j, k in enumerate(names)}

    return {
        "pct_rmse": per_channel(pct.mean(1)),
        "pct_rmse_std": per_channel(pct.std(1, ddof=ddof)),
        "pct_rmse_all": {k: pct[:, :, j].tolist() for j, k in enumerate(names)},
        "rmse": per_channel(rmse.mean(1)),
        "rmse_std": per_channel(rmse.std(1, ddof=ddof)),
        "fit_seconds": [float(np.mean([r["fit_seconds"] for r in rows[i * repeats:(i + 1) * repeats]])) for i in range(len(sizes))],
    }


def _kind_name(model) -> str:
    """A model kind for reports: its name, or for a configured kind class (delta, multifidelity) the
    kind and its inner kind, e.g. 'delta[sagpr]'."""
    if isinstance(model, str):
        return model
    inner = getattr(model, "inner_kind", None)
    return f"{model.kind}[{inner}]" if inner else str(model.kind)
