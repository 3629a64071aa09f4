"""Error metrics and uncertainty calibration, per irreducible channel and for Cartesian tensors.
Below the models (which report held-out metrics) and the evaluation layer (which reports test metrics)."""

from psilearn.metrics.regression import block_names, calibration, regression_metrics

__all__ = ["block_names", "calibration", "regression_metrics"]
