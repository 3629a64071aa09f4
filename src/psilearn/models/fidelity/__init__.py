"""Δ-learning and multi-fidelity wrappers usable with any architecture (inner kinds through the registry)."""

from psilearn.models.fidelity.baseline_method import BaselineMethod
from psilearn.models.fidelity.delta import DeltaModel, DeltaPrediction, delta_kind, delta_method_kind
from psilearn.models.fidelity.icm import ICMModel, icm_kind
from psilearn.models.fidelity.multifidelity import MultiFidelityModel, multifidelity_kind

__all__ = ["BaselineMethod", "DeltaModel", "DeltaPrediction", "delta_kind", "delta_method_kind", "MultiFidelityModel",
           "multifidelity_kind", "ICMModel", "icm_kind"]
