"""Evaluation of fitted models on labelled data: test metrics, calibration, learning curves, plots."""
