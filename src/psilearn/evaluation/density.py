"""Test errors of a density model (``psilearn evaluate`` / ``learning-curve`` on density targets).

Against the reference *fitted* coefficients c of each test structure (the ``density_coefficients``
labels), all exact aux-basis integrals (PySCF), no grid:

* ``l2_percent`` = 100 sqrt(sum_s int (rho_pred - rho_fit)^2 / sum_s int rho_fit^2): the L2 error of
  the density, pooled over the test set (int phi_P phi_Q is the aux overlap matrix, so this is the
  grid L2 of ``benchmarks/density_learning_curve.py`` "vs fit" without the grid);
* ``metric_error_percent``: the same in the model's fit metric (Coulomb: (P|Q)), the error the fit
  minimises (``heldout_metrics.density_error_percent`` of the model file);
* ``dipole_mae_debye``: mean over structures of |mu(nuclei + rho_pred) - mu(nuclei + rho_fit)| (Debye,
  about the centre of mass); ``dipole_mae_vs_label_debye`` against the ``dipole_moment`` label (the
  SCF dipole, e*Bohr) when every test structure has one, else None;
* ``max_electron_error``: max_s |N_pred - N| (e), N = sum (Z - ECP core electrons) - charge.
"""

from __future__ import annotations

import numpy as np

#: Debye per e*Bohr (as psilearn.observe.density.DEBYE_PER_AU)
DEBYE_PER_AU = 2.541746473


def density_sums(target, frames, predicted, reference) -> dict:
    """Per-structure sums for :func:`density_scores`: ``sq``/``ref`` (overlap metric), ``msq``/``mref``
    (the target's metric), ``dmu`` (|Delta mu| e*Bohr vs the fit), ``dmu_label`` (vs ``dipole_moment``,
    NaN without it), ``dn`` (|N_pred - N|); each (n_structures,). Coefficients flat, PySCF's order."""
    from psilearn.label.density import aux_moments, fitted_dipole, structure_auxmol
    from psilearn.label.multipoles import centre_of_mass_bohr

    keys = ("sq", "ref", "msq", "mref", "dmu", "dmu_label", "dn")
    out = {k: np.zeros(len(frames)) for k in keys}
    for s, (a, c, c_ref) in enumerate(zip(frames, predicted, reference)):
        aux = structure_auxmol(a, target.aux_basis)
        ovl = aux.intor("int1e_ovlp")
        met = ovl if target.metric == "overlap" else aux.intor("int2c2e")
        d = np.asarray(c) - np.asarray(c_ref)
        out["sq"][s], out["ref"][s] = d @ ovl @ d, c_ref @ ovl @ c_ref
        out["msq"][s], out["mref"][s] = d @ met @ d, c_ref @ met @ c_ref
        origin = centre_of_mass_bohr(aux)
        z = a.numbers - target.core_of(a)  # the nuclear charges that go with a density beside ECP cores
        mu = fitted_dipole(aux, aux, c, origin, z)
        out["dmu"][s] = np.linalg.norm(mu - fitted_dipole(aux, aux, c_ref, origin, z))
        label = a.info.get("dipole_moment")
        out["dmu_label"][s] = np.linalg.norm(mu - np.asarray(label, float)) if label is not None else np.nan
        out["dn"][s] = abs(aux_moments(aux)[0] @ c - (z.sum() - float(a.info.get("charge", 0))))
    return out


def density_scores(sums: dict) -> dict:
    """The pooled metrics (module docstring) from :func:`density_sums`."""
    with_label = bool(np.all(np.isfinite(sums["dmu_label"])))
    return {
        "l2_percent": float(100 * np.sqrt(sums["sq"].sum() / sums["ref"].sum())),
        "metric_error_percent": float(100 * np.sqrt(sums["msq"].sum() / sums["mref"].sum())),
        "dipole_mae_debye": float(DEBYE_PER_AU * sums["dmu"].mean()),
        "dipole_mae_vs_label_debye": float(DEBYE_PER_AU * sums["dmu_label"].mean()) if with_label else None,
        "max_electron_error": float(sums["dn"].max()),
    }


def evaluate_density(model, ds) -> dict:
    """Test metrics of a fitted density ``model`` on a DensityDataset ``ds`` of its target: the
    scores of :func:`density_scores` (electron count as the model predicts, constrained by default),
    ``n_structures``, ``metric`` (the fit's) and ``n_weights``."""
    pred = model.predict(ds.frames)
    sums = density_sums(model.target, ds.frames, pred.coefficients, [ds.coefficients(i) for i in range(len(ds))])
    return {"n_structures": len(ds), "metric": model.target.metric, "n_weights": (model.metadata or {}).get("n_weights"),
            **density_scores(sums)}


def load_density_test(data, target):
    """``data`` (a DensityDataset, a path/spec or a list of Atoms) as a DensityDataset of ``target``
    (its aux basis and metric; loading refuses others with one line)."""
    from psilearn.data import Dataset, load_density_dataset

    if isinstance(data, Dataset):
        if data.target != target:
            raise ValueError(f"the data's target {data.target.describe()} is not the model's {target.describe()}")
        return data
    return load_density_dataset(data, target)


def density_learning_curve(train, test, target, sizes: list[int], orders: list[np.ndarray], fit, progress=None) -> dict:
    """Density-model learning curve: for each size and random order, ``fit(subset)`` -> model, scored
    on ``test`` by :func:`evaluate_density`. Returns {"sizes", "repeats", "metrics": {name: [mean
    per size]}, "fit_seconds": [mean per size], "rows": [{"n_train", "repeat", "metrics",
    "fit_seconds"}]}; ``progress(row)`` after each fit."""
    import time

    rows = []
    for n in sizes:
        for r, order in enumerate(orders):
            t0 = time.perf_counter()
            model = fit(train.subset(np.sort(order[:n])))
            row = {"n_train": n, "repeat": r, "fit_seconds": time.perf_counter() - t0, "metrics": evaluate_density(model, test)}
            rows.append(row)
            if progress is not None:
                progress(row)
    names = ["l2_percent", "metric_error_percent", "dipole_mae_debye"]
    per = len(orders)
    return {"sizes": sizes, "repeats": per,
            "metrics": {k: [float(np.mean([x["metrics"][k] for x in rows[i * per:(i + 1) * per]])) for i in range(len(sizes))] for k in names},
            "fit_seconds": [float(np.mean([x["fit_seconds"] for x in rows[i * per:(i + 1) * per]])) for i in range(len(sizes))],
            "rows": rows}
