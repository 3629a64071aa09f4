"""Infrared spectrum from a dipole-moment time series (e.g. ML dipoles along an MD trajectory).

alpha(w) n(w) ~ F(w) int <dM/dt(0) . dM/dt(t)> exp(-i w t) dt, with the derivative autocorrelation
averaged over time origins, a window, zero padding and a quantum correction F (see
:mod:`psilearn.observe.quantum`). Intensities are in arbitrary units (normalised to a maximum of
1); the series' units and every option are recorded in the result's ``meta``.
"""

from __future__ import annotations

import numpy as np

from psilearn.observe.checks import as_series
from psilearn.observe.vibrational import SpectrumOptions, VibrationalSpectrum, derivative_spectrum, normalise


def ir_spectrum(dipoles, opts: SpectrumOptions, units: str = "") -> VibrationalSpectrum:
    """IR spectrum of ``dipoles`` (n_steps, 3), frames ``opts.timestep_fs`` apart.

    Returns a :class:`VibrationalSpectrum` with column ``ir`` (normalised absorption, arbitrary
    units) on wavenumbers in cm^-1. Raises DataError for NaNs, a wrong number of components or
    fewer than 8 frames."""
    m = as_series(dipoles, 3, "dipole time series")
    nu, s = derivative_spectrum(m, opts)
    meta = {"kind": "IR absorption (derivative dipole autocorrelation)", "n_frames": len(m),
            "timestep_fs": opts.timestep_fs, "correlation_fs": opts.max_lag(len(m)) * opts.timestep_fs,
            "window": opts.window, "zero_padding": opts.zero_padding, "quantum_correction": opts.qcf,
            "temperature_K": opts.temperature_k, "dipole_units": units or "unspecified",
            "intensity": "arbitrary units, normalised to max 1"}
    return VibrationalSpectrum(nu, {"ir": normalise(s)}, meta)
