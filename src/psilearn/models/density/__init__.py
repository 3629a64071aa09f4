"""The `density` model kind: SALTED-style sparse GPR of density-fitting coefficients (docs/density.md)."""

from psilearn.models.density.config import DensityConfig
from psilearn.models.density.model import DensityModel

__all__ = ["DensityModel", "DensityConfig"]
