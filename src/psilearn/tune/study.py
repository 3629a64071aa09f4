"""``psilearn fit --tune [SECONDS]``: representation and kernel settings chosen by k-fold CV with
Optuna's TPE sampler inside a wall-time budget.

>>> from psilearn.tune import tune_model
>>> model = tune_model("sagpr", target, dataset, seconds=300, seed=0)
>>> model.metadata["tuning"]["best_cv_rmse"], model.metadata["tuning"]["best_params"]

Each trial fits the model on all of the training data with the trial's settings (the search space:
:mod:`psilearn.tune.space`) and is scored by the fit's own k-fold cross-validation by structure
(per-atom targets: all atoms of a structure in one fold; ``model.cv_folds`` folds): the Cartesian
RMSE of held-out predictions with the trial's features, sparse points and marginal-likelihood
regularisation. So the best trial's model *is* the final model refitted on all the training data
with the best settings, and nothing is fitted twice. A trial whose settings would not fit in
memory (:class:`~psilearn.errors.MemoryBudgetError`) is pruned, and one whose linear algebra or radial
basis fails is recorded as failed, not fatal. The study stops when the budget is spent, or earlier when the next trial (estimated as the
median so far) would overrun it; ``n_trials`` caps the number of trials (same seed + data +
``n_trials`` = same study). The record (``model.metadata["tuning"]``, JSON in the model file):
method, budget, seed, search space, best parameters, best CV RMSE, and every trial's parameters,
CV RMSE, state and seconds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np

from psilearn.errors import ConfigError, MemoryBudgetError
from psilearn.tune.space import SearchSpace, tunable_error

log = logging.getLogger("psilearn")

#: default wall-time budget of ``--tune`` without a value (seconds)
DEFAULT_SECONDS = 300.0


def tune_model(kind, target, data, config: dict | str | None = None, *, seconds: float = DEFAULT_SECONDS,
               n_trials: int | None = None, seed: int | None = None, progress: Callable[[dict], None] | None = None):
    """The model of ``kind`` with the settings of the best of an Optuna TPE study (see the module
    docstring), fitted on ``data``; ``model.metadata["tuning"]`` holds the study. ``config``: the
    user's options (dict or YAML path; stated options stay fixed); ``seed``: the one seed rule
    (explicit, else ``model.seed``, else 0) seeds the sampler and every fit; ``progress(row)`` is
    called after each trial with its record. ConfigError for kinds that cannot be tuned and when
    no trial succeeds."""
    import optuna

    from psilearn.config import load_config
    from psilearn.models.registry import model_class

    why = tunable_error(kind)
    if why:
        raise ConfigError(why)
    if not seconds > 0:
        raise ConfigError(f"--tune: the budget must be a positive number of seconds, got {seconds}")
    config = load_config(config) if config is None or isinstance(config, str) else config
    options, seed = model_class(kind).validate_config(config, seed=seed)
    why = tunable_error(kind, options)
    if why:
        raise ConfigError(why)
    numbers = np.concatenate([a.numbers for a in data.frames])
    space = SearchSpace.for_data(config, target, {int(z): int(np.sum(numbers == z)) for z in np.unique(numbers)})
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5))
    study.enqueue_trial(space.first_trial())
    state = {"best": None, "t0": time.perf_counter(), "history": []}

    def objective(trial) -> float:
        trial_config = space.suggest(trial)
        t1 = time.perf_counter()
        row = {"number": trial.number, "params": dict(trial.params), "cv_rmse": None, "state": "complete"}
        try:
            model = _fit(kind, target, data, trial_config, seed)
            held = model.metadata["heldout_metrics"]
            if "cartesian" not in held:  # streamed without its k-fold estimate (per-fold sums beyond the memory budget)
                if trial.number == 0:
                    state["untuned"] = (model, trial_config)
                raise MemoryBudgetError(f"the trial's fit is too large for memory and was streamed; {held['method']}")
            score = float(held["cartesian"]["rmse"])
        except MemoryBudgetError as exc:
            row.update(state="pruned", reason=str(exc))
        except _numerical_errors() as exc:
            row.update(state="failed", reason=f"{type(exc).__name__}: {exc}")
        else:
            if not math.isfinite(score):
                row.update(state="failed", reason="non-finite CV error")
            else:
                row["cv_rmse"] = score
        row["seconds"] = round(time.perf_counter() - t1, 3)
        state["history"].append(row)
        if progress is not None:
            progress(row)
        if row["cv_rmse"] is None:
            raise optuna.TrialPruned(row.get("reason"))
        if state["best"] is None or score < state["best"][0]:
            state["best"] = (score, model, trial_config)
        return score

    def stop_early(study, trial) -> None:  # a typical (median) trial would overrun the budget
        typical = float(np.median([r["seconds"] for r in state["history"]]))
        if time.perf_counter() - state["t0"] + typical > seconds:
            study.stop()

    interrupted = False
    try:
        study.optimize(objective, n_trials=n_trials, timeout=seconds, callbacks=[stop_early], catch=())
    except KeyboardInterrupt:  # Ctrl-C ends the study; the best trial so far is kept
        if state["best"] is None and "untuned" not in state:
            raise
        interrupted = True
        log.warning("tuning interrupted after %d trials; keeping the best so far", len(state["history"]))
    elapsed = time.perf_counter() - state["t0"]
    score, model, best_config = _chosen(state, elapsed)
    model.metadata["tuning"] = _record(space, target, seconds, elapsed, seed, state["history"], best_config, score, interrupted)
    return model


def _chosen(state: dict, elapsed: float) -> tuple:
    """(CV score or None, model, options) the study keeps: the best scored trial, or the untuned fit when
    that has no k-fold score (no trial can be shown better than it). ConfigError when nothing was fitted."""
    if "untuned" in state:
        log.warning("--tune: the untuned fit has no k-fold score (%s), so no trial can be compared with it; the untuned "
                    "model is kept. Tune on a subset, or with model.stream_batch / a smaller model.n_sparse stated",
                    state["history"][0].get("reason", "streamed"))
        return (None, *state["untuned"])
    if state["best"] is None:
        reasons = {r.get("reason", "") for r in state["history"]}
        raise ConfigError(f"--tune: no trial succeeded in {elapsed:.0f} s ({'; '.join(sorted(reasons))[:300]})")
    return state["best"]


def _record(space, target, seconds, elapsed, seed, history, best_config, score, interrupted) -> dict:
    """The study as JSON-able metadata (``model.metadata["tuning"]``)."""
    import optuna

    return {
        "method": ("Optuna TPE (seeded); score: Cartesian RMSE of the fit's k-fold cross-validation by structure; "
                   "regularisation by each trial's marginal likelihood unless stated; best trial's fit kept"),
        "optuna_version": optuna.__version__,
        "budget_seconds": float(seconds),
        "seconds": round(elapsed, 3),
        "interrupted": interrupted,
        "seed": seed,
        "n_trials": len(history),
        "search_space": space.ranges(),
        "fixed": sorted(space.fixed),
        "best_params": {k: v for k, v in best_config.items() if k in ("soap", "model")},
        "best_cv_rmse": score,
        "units": target.units,
        "history": history,
    }


def _numerical_errors() -> tuple:
    """Errors that fail one trial, not the study: singular linear algebra, and featomic refusing a
    radial basis (a narrow density with a long cutoff: 'Failed to compute radial integral')."""
    from featomic.status import FeatomicError

    return (np.linalg.LinAlgError, FloatingPointError, FeatomicError)


def _fit(kind, target, data, config: dict, seed: int):
    from psilearn.models.factory import fit_model

    return fit_model(kind, target, data, config, seed=seed, progress=False)


def describe_trial(row: dict) -> str:
    """One line per trial (``psilearn fit --tune`` prints it unless -q)."""
    p = row["params"]
    parts = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items()]
    score = f"CV RMSE {row['cv_rmse']:.5g}" if row["cv_rmse"] is not None else row["state"]
    return f"trial {row['number']:>3}: {score} ({row['seconds']:.1f} s) " + " ".join(parts)


def describe_tuning(record: dict) -> str:
    """The chosen settings and the study in a few lines (``psilearn fit --tune`` prints them)."""
    units = f" {record['units']}" if record.get("units") else ""
    done = [r for r in record["history"] if r["cv_rmse"] is not None]
    first = record["history"][0]
    stop = " (interrupted)" if record.get("interrupted") else ""
    lines = [f"tuning{stop}: {record['n_trials']} trials ({len(done)} scored) in {record['seconds']:.0f} s of a "
             f"{record['budget_seconds']:.0f} s budget, seed {record['seed']}; "
             + (f"best k-fold CV RMSE {record['best_cv_rmse']:.5g}{units}" if record["best_cv_rmse"] is not None
                else "the untuned settings kept (their fit has no k-fold score to compare trials with)")
             + (f" (untuned {first['cv_rmse']:.5g})" if first["cv_rmse"] is not None else "")]
    for section, opts in record["best_params"].items():
        lines.append(f"  {section}: " + ", ".join(f"{k}={v}" for k, v in opts.items()))
    return "\n".join(lines)
