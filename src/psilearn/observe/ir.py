"""Infrared spectrum from a dipole-moment time series (e.g. ML dipoles along an MD trajectory).

alpha(w) n(w) ~ F(w) int <dM/dt(0) . dM/dt(t)> exp(-i w t) dt, with the derivative autocorrelation
averaged over time origins, a window, zero padding and a quantum correction F (see
:mod:`psilearn.observe.quantum`). Intensities are in arbitrary units (normalised to a maximum of
1); the series' units and every option are recorded in the result's ``meta``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from psilearn.observe.vibrational import SpectrumOptions, VibrationalSpectrum, derivative_spectrum, normalise
from psilearn.spectral.checks import as_series


def _as_runs(series) -> list:
    """One series, or a list of independent trajectories (each (n_steps_k, ...))."""
    if isinstance(series, (list, tuple)) and len(series) and np.ndim(series[0]) >= 2:
        return list(series)
    return [series]


def ir_spectrum(dipoles, opts: SpectrumOptions, units: str = "") -> VibrationalSpectrum:
    """IR spectrum of ``dipoles`` (n_steps, 3), frames ``opts.timestep_fs`` apart, or of a list of
    independent trajectories (their lineshapes are averaged: better sampling of every mode's
    energy than one long run of a small molecule, whose modes exchange energy slowly).

    Returns a :class:`VibrationalSpectrum` with column ``ir`` (normalised absorption, arbitrary
    units) on wavenumbers in cm^-1. Raises DataError for NaNs, a wrong number of components or
    fewer than 8 frames."""
    runs = [as_series(d, 3, "dipole time series") for d in _as_runs(dipoles)]
    n_min = min(len(m) for m in runs)
    if opts.correlation_fs is None and len(runs) > 1:
        opts = replace(opts, correlation_fs=opts.max_lag(n_min) * opts.timestep_fs)
    total = None
    for m in runs:
        nu, s = derivative_spectrum(m, opts)
        total = s if total is None else total + s
    meta = {"kind": "IR absorption (derivative dipole autocorrelation)", "n_frames": int(sum(len(m) for m in runs)),
            "n_trajectories": len(runs), "timestep_fs": opts.timestep_fs, "correlation_fs": opts.max_lag(n_min) * opts.timestep_fs,
            "window": opts.window, "zero_padding": opts.zero_padding, "quantum_correction": opts.qcf,
            "temperature_K": opts.temperature_k, "dipole_units": units or "unspecified",
            "intensity": "arbitrary units, normalised to max 1"}
    return VibrationalSpectrum(nu, {"ir": normalise(total / len(runs))}, meta)
