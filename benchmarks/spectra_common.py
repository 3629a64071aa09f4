"""Shared pieces of the spectra benchmarks: the SOAP + kernel-ridge baseline, metric summaries and
Markdown tables. Not a benchmark itself."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")

import numpy as np

from psilearn.spectral.metrics import compare_spectra

METRICS = ("rmse", "relative_integrated_error", "pearson", "tanimoto", "peak_position_error")
HEAD = {"rmse": "RMSE", "relative_integrated_error": "rel.int.err", "pearson": "Pearson",
        "tanimoto": "Tanimoto", "peak_position_error": "peak err", "shift_aligned_rmse": "shift-RMSE"}


def structure_features(feats) -> np.ndarray:
    """Per-structure invariant SOAP vectors (n, Q) from psilearn's invariant environments
    (:func:`psilearn.models.spectrum.representation.invariant_features`): the absorber's environment,
    or the mean over atoms (element blocks side by side); rows normalised."""
    from psilearn.models.spectrum.representation import CHANNEL

    parts = []
    for z in sorted(feats.index):
        x = feats.blocks[CHANNEL][z][:, 0, :]
        s = np.zeros((feats.n_structures, x.shape[1]))
        np.add.at(s, feats.structure[feats.index[z]], x)
        parts.append(s)
    rows = np.concatenate(parts, axis=1)
    counts = np.bincount(feats.structure, minlength=feats.n_structures)[:, None]
    rows /= np.maximum(counts, 1)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-300)


def krr_baseline(x_train, y_train, x_test, seed: int = 0) -> np.ndarray:
    """scikit-learn KernelRidge with an RBF kernel on the flattened spectra (targets centred);
    alpha and gamma by grid search with k-fold CV (k = min(5, n_train)). The squared distances are
    computed once and the kernels passed precomputed (same result as kernel='rbf', much faster on
    long SOAP vectors)."""
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import GridSearchCV, KFold

    def sqdist(a, b):
        return np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T, 0.0)

    d_tr, d_te = sqdist(x_train, x_train), sqdist(x_test, x_train)
    mean = y_train.mean(0)
    k = min(5, len(x_train))
    alphas, gammas = np.logspace(-8, 0, 9), np.logspace(-2, 2, 9)
    if k < 2:
        model = KernelRidge(kernel="precomputed", alpha=1e-3).fit(np.exp(-d_tr), y_train - mean)
        return model.predict(np.exp(-d_te)) + mean
    best = (-np.inf, None, None)
    for g in gammas:
        search = GridSearchCV(KernelRidge(kernel="precomputed"), {"alpha": alphas}, cv=KFold(k, shuffle=True, random_state=seed),
                              scoring="neg_mean_squared_error").fit(np.exp(-g * d_tr), y_train - mean)
        if search.best_score_ > best[0]:
            best = (search.best_score_, g, search.best_params_["alpha"])
    _, g, alpha = best
    model = KernelRidge(kernel="precomputed", alpha=alpha).fit(np.exp(-g * d_tr), y_train - mean)
    return model.predict(np.exp(-g * d_te)) + mean


def summarise(grid, ref, pred, max_shift=None) -> dict:
    m = compare_spectra(grid, ref, pred, max_shift=max_shift)["mean"]
    return {k: m[k] for k in (*METRICS, *(["shift_aligned_rmse"] if max_shift else []))}


def table(rows: list[dict], keys: list[str]) -> str:
    """Markdown table; rows hold 'n_train', 'model' and metric means (and *_sd)."""
    head = ["n_train", "model", *[HEAD.get(k, k) for k in keys]]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["n_train"]), r["model"]]
        for k in keys:
            v, sd = r.get(k, float("nan")), r.get(k + "_sd")
            cells.append(f"{v:.4g}" + (f" ± {sd:.2g}" if sd is not None and np.isfinite(sd) and sd > 0 else ""))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def aggregate(results: list[dict]) -> list[dict]:
    """Mean and standard deviation over repeats, per (n_train, model)."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["n_train"], r["model"]), []).append(r)
    rows = []
    for (n, model), rs in groups.items():
        row = {"n_train": n, "model": model, "repeats": len(rs)}
        for k in rs[0]:
            if k in ("n_train", "model", "seed"):
                continue
            vals = np.array([x[k] for x in rs], float)
            row[k] = float(np.nanmean(vals))
            row[k + "_sd"] = float(np.nanstd(vals)) if len(vals) > 1 else None
        rows.append(row)
    return rows
