"""The `baseline` model kind: per-element composition fit of the invariant part of a Target."""

from psilearn.models.baseline.model import BaselineConfig, BaselineModel, fit_baseline

__all__ = ["BaselineConfig", "BaselineModel", "fit_baseline"]
