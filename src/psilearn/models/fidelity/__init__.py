"""Δ-learning and multi-fidelity wrappers usable with any architecture (inner kinds through the registry)."""

from psilearn.models.fidelity.delta import DeltaModel, DeltaPrediction, delta_kind

__all__ = ["DeltaModel", "DeltaPrediction", "delta_kind"]
