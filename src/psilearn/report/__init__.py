"""Metrics, parity plots and learning curves."""
