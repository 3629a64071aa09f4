"""Orchestration (layer 6): hyperparameter studies that drive model fits (``psilearn fit --tune``)."""

from psilearn.tune.space import TUNABLE, SearchSpace, tunable_error
from psilearn.tune.study import DEFAULT_SECONDS, describe_trial, describe_tuning, tune_model

__all__ = ["DEFAULT_SECONDS", "TUNABLE", "SearchSpace", "describe_trial", "describe_tuning", "tunable_error", "tune_model"]
