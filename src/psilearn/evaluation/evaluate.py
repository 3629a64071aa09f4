"""Errors of a fitted model on labelled test data (what ``psilearn evaluate`` prints).

>>> import psilearn
>>> m = psilearn.evaluate("alpha.model", "test.xyz")          # or a Model and a Dataset
>>> m["cartesian"]["rmse"], m["channels"]["2e"]["pct_rmse"], m["calibration"]["within_1sigma"]
"""

from __future__ import annotations

import os

from psilearn.data import Dataset, load_dataset
from psilearn.metrics.channels import physical_metrics
from psilearn.metrics.regression import calibration, calibration_curve, per_element_metrics, regression_metrics


def _model(model):
    """(model object, name for reports) from a Model or a model directory."""
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        from psilearn.models import load

        return load(model), os.fsdecode(model)
    return model, model.kind


def _dataset(data, target, symmetrize: bool, label_mask: str | None = None) -> Dataset:
    """``data`` (a Dataset, a path/spec such as ``test.xyz@:50``, or a list of Atoms) validated
    against ``target``; spectra are put on the target's grid first (GridWarning when interpolated).
    ``label_mask``: the per-atom mask the model was trained with (labels on only some atoms)."""
    if isinstance(data, Dataset):
        if data.target != target:
            raise ValueError(f"the data's target {data.target.describe()} is not the model's {target.describe()}")
        return data
    if target.is_spectrum:
        from psilearn.data.spectra import load_spectrum_dataset

        return load_spectrum_dataset(data, target)
    return load_dataset(data, target, symmetrize=symmetrize, label_mask=label_mask)


def evaluate(model, data_or_path, *, symmetrize: bool = False, plot: str | os.PathLike | None = None,
             title: str | None = None) -> dict:
    """Test errors of ``model`` (a fitted Model or a model directory) on labelled structures.

    ``data_or_path``: a :class:`psilearn.data.Dataset`, a path/spec, or a list of Atoms carrying
    the model's label. ``symmetrize`` projects the labels onto the declared symmetry instead of
    refusing asymmetric ones. ``plot``: write a PNG there: a parity plot, or for spectrum models
    a grid of example test spectra (reference vs prediction with its std band); ``plot`` in the
    result says which.

    Returns a JSON-able dict: ``n_samples`` and ``n_structures``; ``cartesian`` and ``channels``
    ({irrep: ...}) each with ``mae``, ``rmse`` and ``pct_rmse`` (RMSE as % of the test labels'
    spread), in the label's units; ``calibration`` (fractions of errors within 1 and 2 predicted
    standard deviations, RMS z-score); ``target`` (the Target as a dict), ``model`` and ``test``
    (names). Spectrum models (a target with a grid) get ``spectral`` instead of per-grid-point
    ``channels`` (left empty): the mean over test spectra of the spectral metrics (RMSE,
    integrated error, peak-position error, similarities:
    :func:`psilearn.spectral.metrics.compare_spectra`); other
    models get ``baseline``: the errors of the per-element composition baseline fitted on the
    model's training data (recorded in the model file at fit time) and ``rmse_ratio``, the model's
    RMSE divided by the baseline's per channel (< 1: the model beats the baseline), or None with
    a ``note`` for model files that do not record it.

    Added for tensors and per-atom targets: ``physical`` (rank-2 targets: the channels in the data's
    units, isotropic = trace/3, antisymmetric and anisotropic parts as Frobenius norms, with the
    ``convention``; :mod:`psilearn.metrics.channels`); ``per_element`` (per-atom targets: {symbol:
    {"n_atoms", "cartesian", "channels"[, "physical"]}}, RMSE % std relative to each element's own
    spread); ``calibration_curve`` (observed vs expected coverage of Gaussian intervals, None without
    uncertainties). With ``plot``, ``plots`` names the PNGs: the parity plot (``plot``, coloured by
    element for per-atom targets) and the calibration plot next to it (``<plot stem>_calibration.png``).

    Density models (``kind: density`` targets): the metrics of
    :func:`psilearn.evaluation.density.evaluate_density` instead (``l2_percent``,
    ``metric_error_percent``, ``dipole_mae_debye``, ...), with ``target``, ``model`` and ``test``.
    Hamiltonian models: :func:`psilearn.evaluation.hamiltonian.evaluate_hamiltonian` (``hamiltonian``:
    entry, occupied orbital-energy and gap MAE in Hartree, orbital cosine)."""
    model, model_name = _model(model)
    t = model.target
    if getattr(t, "kind", None) == "hamiltonian":
        from psilearn.evaluation.hamiltonian import evaluate_hamiltonian

        return evaluate_hamiltonian(model, model_name, data_or_path, plot)
    if getattr(t, "kind", None) == "density":
        return _evaluate_density(model, model_name, data_or_path, plot)
    ds = _dataset(data_or_path, t, symmetrize, (model.metadata or {}).get("label_mask"))
    test_name = ds.name or "<memory>"
    pred = model.predict(ds.frames)
    if getattr(ds, "labelled", None) is not None:  # labels on only some atoms: score those
        m = ds.labelled
        pred = type(pred)(pred.values[m], pred.std[m], pred.irreps[m], pred.irreps_std[m], None if pred.cov is None else pred.cov[m])
    ref = t.to_irreps(ds.values)
    out = regression_metrics(t, ref, pred.irreps)
    out["n_structures"] = len(ds)
    out["calibration"] = calibration(ds.values, pred.values, pred.std)
    if t.is_spectrum:
        out["channels"] = {}  # one "channel" per grid point says nothing (NaN where the test spread is 0)
        out.update(_spectral(t, ds.values, pred.values))
    else:
        out["baseline"] = _relative_to_baseline(model, ds, ref, out)
        out.update(_breakdown(t, ds, ref, pred.irreps))
    out["calibration_curve"] = calibration_curve(ds.values, pred.values, pred.std)
    out.update(target=t.to_dict(), model=model_name, test=test_name)
    if plot:
        out["plots"] = _plots(t, ds, ref, pred, out["calibration_curve"], str(plot), title or f"{model_name} on {test_name}")
    return out


def _evaluate_density(model, model_name: str, data, plot) -> dict:
    """Density models: :func:`psilearn.evaluation.density.evaluate_density` (L2 density error vs the
    fitted coefficients, error in the fit metric, dipole errors, electron count)."""
    from psilearn.errors import ConfigError
    from psilearn.evaluation.density import evaluate_density, load_density_test

    if plot:
        raise ConfigError(f"{model_name}: evaluate --plot has no parity plot for density models (use psilearn density for cube files)")
    ds = load_density_test(data, model.target)
    return {**evaluate_density(model, ds), "target": model.target.to_dict(), "model": model_name, "test": ds.name or "<memory>"}


def _numbers(ds: Dataset):
    """Atomic number of each sample of a per-atom target (None for per-structure targets)."""
    import numpy as np

    if ds.target.per != "atom":
        return None
    numbers = np.concatenate([a.numbers for a in ds.frames])
    return numbers if getattr(ds, "labelled", None) is None else numbers[ds.labelled]


def _breakdown(t, ds: Dataset, ref, pred) -> dict:
    """``physical`` (rank-2 targets) and ``per_element`` (per-atom targets) metrics."""
    out = {}
    physical = physical_metrics(t, ref, pred)
    if physical is not None:
        out["physical"] = physical
    if t.per == "atom":
        out["per_element"] = per_element_metrics(t, ref, pred, _numbers(ds))
    return out


def calibration_plot_path(plot: str) -> str:
    """Where ``evaluate(plot=...)`` writes the calibration plot: ``parity.png`` -> ``parity_calibration.png``."""
    root, ext = os.path.splitext(plot)
    return f"{root}_calibration{ext or '.png'}"


def _plots(t, ds: Dataset, ref, pred, curve: dict | None, plot: str, title: str) -> dict:
    """The PNGs: a parity plot (spectrum models: a grid of example test spectra, reference vs
    prediction with its std band) and the calibration plot next to it."""
    from psilearn.evaluation.plots import calibration_plot, parity_plot, spectra_plot

    if t.is_spectrum:
        picks = spectra_plot(t, ds.values, pred.values, pred.std, plot, title=title)
        out = {"spectra": plot, "examples": picks, "calibration": None}
    else:
        parity_plot(t, ref, pred.irreps, plot, title=title, numbers=_numbers(ds))
        out = {"parity": plot, "calibration": None}
    if curve is not None:
        out["calibration"] = calibration_plot_path(plot)
        calibration_plot(curve, out["calibration"], title=title)
    return out


def json_safe(obj):
    """``obj`` (an evaluate() result) with NaN/inf replaced by None, for strict JSON."""
    import math

    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _spectral(target, ref, pred) -> dict:
    import numpy as np

    from psilearn.spectral.metrics import compare_spectra

    res = compare_spectra(np.asarray(target.grid), ref, pred)
    return {"spectral": res["mean"]}


def _relative_to_baseline(model, ds: Dataset, ref, metrics: dict) -> dict:
    """Errors of the training-set composition baseline on the test set, and the model's RMSE ratios."""
    from psilearn.models.composition import composition_predict

    record = (model.metadata or {}).get("composition_baseline")
    if not record:
        return {"rmse_ratio": None, "note": "no composition baseline recorded in this model file (psilearn 0.1.0 did not record one)"}
    t = model.target
    base_pred = composition_predict(record, t, ds.frames, getattr(ds, "pairs", None))
    if getattr(ds, "labelled", None) is not None:
        base_pred = base_pred[ds.labelled]
    base = regression_metrics(t, ref, base_pred)
    pairs = [("Cartesian", metrics["cartesian"], base["cartesian"]),
             *[(k, metrics["channels"][k], base["channels"][k]) for k in metrics["channels"]]]
    ratio = {k: (m["rmse"] / b["rmse"] if b["rmse"] > 0 else None) for k, m, b in pairs}
    return {"method": "per-element composition fit of the invariant (0e) part on the training data; other parts 0",
            "cartesian": base["cartesian"], "channels": base["channels"], "rmse_ratio": ratio}
