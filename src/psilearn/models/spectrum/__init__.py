"""Models of spectra (functions on a recorded grid): kernel regression on invariant SOAP with
plain, shift-aware or feature-aligned losses and optional PCA compression."""

from psilearn.models.spectrum.config import SpectrumConfig
from psilearn.models.spectrum.model import SpectrumModel

__all__ = ["SpectrumConfig", "SpectrumModel"]
