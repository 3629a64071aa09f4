"""Evaluation of fitted models on labelled data: test metrics, calibration, learning curves, plots.

``evaluate(model, data)`` -> test errors per channel and calibration; ``learning_curve(train, test,
target, sizes)`` -> test errors against training-set size.
"""

from psilearn.evaluation.evaluate import evaluate
from psilearn.evaluation.learning_curve import learning_curve

__all__ = ["evaluate", "learning_curve"]
