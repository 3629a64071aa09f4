"""Observables from predictions: spectral metrics and similarity, vibrational spectra (IR, Raman)
from time series, harmonic analysis, PCA/clustering of spectra.

Submodules import only numpy/scipy (matplotlib for plots), so this package stays light."""

from psilearn.observe.correlation import autocorrelation, cosine_transform
from psilearn.observe.ir import ir_spectrum
from psilearn.observe.raman import raman_spectrum, rotational_invariants
from psilearn.observe.vibrational import SpectrumOptions, VibrationalSpectrum
from psilearn.spectral.fingerprint import FingerprintSpec, fingerprint_similarity, fingerprints, tanimoto
from psilearn.spectral.metrics import (
    compare_spectra,
    cosine,
    pearson,
    relative_integrated_error,
    rmse,
    shift_aligned_rmse,
)
from psilearn.spectral.peaks import peak_position_error, peak_positions
from psilearn.spectral.shift import apply_shift, best_shift

__all__ = [
    "autocorrelation", "cosine_transform", "FingerprintSpec", "fingerprint_similarity", "fingerprints",
    "tanimoto", "ir_spectrum", "compare_spectra", "cosine", "pearson", "relative_integrated_error", "rmse",
    "shift_aligned_rmse", "peak_position_error", "peak_positions", "raman_spectrum",
    "rotational_invariants", "apply_shift", "best_shift", "SpectrumOptions", "VibrationalSpectrum",
]
