"""The `sagpr` model kind: sparse symmetry-adapted Gaussian process regression on lambda-SOAP."""

from psilearn.models.sagpr.model import SAGPR, SAGPRConfig

__all__ = ["SAGPR", "SAGPRConfig"]
