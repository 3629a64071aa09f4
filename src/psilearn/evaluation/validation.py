"""Fit with a held-out validation set (``psilearn fit --val-fraction F``).

>>> model, report = fit_with_validation("sagpr", target, dataset, config, val_fraction=0.1, seed=0)
>>> report["cartesian"]["rmse"], report["n_validation_structures"]
"""

from __future__ import annotations

import copy

from psilearn.data import Dataset
from psilearn.data.splits import random_split
from psilearn.evaluation.evaluate import evaluate


def reads_nn_train(kind: str) -> bool:
    """True for kinds that hold out their own validation split (``nn_train.val_fraction``)."""
    from psilearn.models.registry import model_class

    return "nn_train" in model_class(kind).config_options


def fit_with_validation(kind: str, target, data: Dataset, config: dict | str | None = None, *, val_fraction: float,
                        seed: int = 0, progress: bool = False, run_options: dict | None = None) -> tuple:
    """Fit a model of ``kind`` on all but a random ``val_fraction`` of the structures of ``data``
    and measure it on those. Returns (fitted model, report).

    * Kinds that train iteratively with a validation split of their own (``nn``, ``qeq-nn``: the
      ``nn_train`` section) get ``nn_train.val_fraction = val_fraction`` (overriding the options
      file); that split drives early stopping and the uncertainty calibration, and the report is
      the model's own validation metrics (``heldout_metrics``).
    * Other kinds (kernel models, the baseline) are fitted on a random ``1 - val_fraction`` of the
      structures (drawn with ``seed``) and the report is :func:`psilearn.evaluation.evaluate` on the
      rest, which the fit never saw.

    The report has ``method``, ``n_validation_structures`` and the metrics (``cartesian``,
    ``channels``, ...); it is also stored in the model's training metadata as ``validation``."""
    from psilearn.config import load_config
    from psilearn.models.factory import fit_model

    if not 0 < val_fraction < 1:
        raise ValueError(f"--val-fraction must be in (0, 1), got {val_fraction}")
    config = load_config(config) if config is None or isinstance(config, str) else copy.deepcopy(config)
    if reads_nn_train(kind):
        config.setdefault("nn_train", {})["val_fraction"] = float(val_fraction)
        model = fit_model(kind, target, data, config, seed=seed, progress=progress, run_options=run_options)
        held = model.metadata["heldout_metrics"]
        report = {**held, "method": f"nn_train.val_fraction = {val_fraction:g}: {held['method']}",
                  "n_validation_structures": model.metadata.get("n_validation_structures")}
        if model.metadata.get("calibration"):
            report["calibration"] = model.metadata["calibration"]
    else:
        train_idx, val_idx = random_split(len(data), val_fraction, seed)
        model = fit_model(kind, target, data.subset(train_idx), config, seed=seed, progress=progress, run_options=run_options)
        report = evaluate(model, data.subset(val_idx))
        report.update(method=f"random hold-out of {len(val_idx)} of {len(data)} structures (seed {seed}), not used in fitting",
                      n_validation_structures=len(val_idx))
    keep = ("method", "n_validation_structures", "n_samples", "cartesian", "channels", "physical", "per_element", "calibration")
    model.metadata["validation"] = {k: report[k] for k in keep if k in report}
    return model, report
