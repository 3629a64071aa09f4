"""Fit a model of any registered kind from a Target, a Dataset, an options dict and a seed.

The one place where ``psilearn fit``, ``fit-spectrum`` and ``learning-curve`` (and Python users)
turn (kind, config, seed, run options) into a fitted model::

    from psilearn.models.factory import fit_model
    model = fit_model("sagpr", target, dataset, {"soap": {"cutoff": 4.0}}, seed=0)
"""

from __future__ import annotations

from psilearn.models.base import Model
from psilearn.models.registry import model_class

#: training-run options of iterative kinds (see :meth:`psilearn.models.base.Model.set_run_options`)
RUN_OPTIONS = ("device", "checkpoint_dir", "resume")


def build_model(kind: str, target, config: dict | str | None = None, seed: int = 0, progress: bool = False,
                run_options: dict | None = None) -> Model:
    """An unfitted model of ``kind`` (see :mod:`psilearn.models.registry`).

    ``config``: {section: {option: value}} (``soap``, ``model``, ``nn``, ``nn_train``), a YAML
    path read by :func:`psilearn.config.load_config`, or None for the defaults. ``run_options``:
    ``device``, ``checkpoint_dir``, ``resume`` for iterative kinds (nn, qeq-nn); other kinds refuse
    them (ValueError) when any is set."""
    from psilearn.config import load_config

    if config is None or isinstance(config, str):
        config = load_config(config)
    model = model_class(kind).build(target, config, seed=seed, progress=progress)
    opts = dict(run_options or {})
    unknown = set(opts) - set(RUN_OPTIONS)
    if unknown:
        raise ValueError(f"unknown run options {sorted(unknown)}; known: {', '.join(RUN_OPTIONS)}")
    if any(opts.values()):
        model.set_run_options(**opts)
    return model


def fit_model(kind: str, target, dataset, config: dict | str | None = None, seed: int = 0, progress: bool = False,
              run_options: dict | None = None) -> Model:
    """:func:`build_model` then ``fit(dataset)``; returns the fitted model."""
    return build_model(kind, target, config, seed=seed, progress=progress, run_options=run_options).fit(dataset)


def is_iterative(kind: str) -> bool:
    """True for kinds trained iteratively (they accept run options and write checkpoints)."""
    return bool(model_class(kind).iterative)
