"""Raman spectra from a polarizability time series, via the rotational invariants of alpha.

Per frame, alpha = a 1 + beta with the isotropic part a = tr(alpha) / 3 and the traceless
anisotropic part beta; gamma^2 = (3/2) tr(beta beta) is the anisotropy. Both a and gamma^2 are
invariant under rotations, and so are the correlation functions <a(0) a(t)> and
<tr beta(0) beta(t)> of a trajectory rotated as a whole. For randomly oriented molecules
(Long, The Raman Effect, 2002) the orientational averages <alpha_xx^2> = a^2 + 4 gamma^2 / 45 and
<alpha_xy^2> = gamma^2 / 15 give the polarised (VV) and depolarised (VH) intensities.

Columns (derivative autocorrelations, reduced Raman lineshapes with the quantum correction as
in IR; arbitrary units, all scaled by one common factor so they can be compared):
  isotropic     F int <da/dt(0) da/dt(t)>
  anisotropic   F int (3/2) <tr dbeta/dt(0) dbeta/dt(t)>        (the gamma^2 correlation)
  parallel      isotropic + 4/45 anisotropic                     (VV)
  perpendicular 1/15 anisotropic                                 (VH)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from psilearn.observe.vibrational import SpectrumOptions, VibrationalSpectrum, derivative_spectrum
from psilearn.spectral.checks import as_series


def rotational_invariants(alpha) -> tuple[np.ndarray, np.ndarray]:
    """(a, gamma^2) per frame for polarizabilities (n, 3, 3) or (n, 9): isotropic part
    a = tr/3 and anisotropy gamma^2 = (3/2) tr(beta beta), beta = alpha - a 1 (symmetrised)."""
    x = as_series(alpha, (3, 3), "polarizability series", min_steps=1)
    x = 0.5 * (x + np.swapaxes(x, 1, 2))
    a = np.trace(x, axis1=1, axis2=2) / 3.0
    beta = x - a[:, None, None] * np.eye(3)
    return a, 1.5 * np.einsum("nij,nji->n", beta, beta)


def isotropic_anisotropic(alpha) -> tuple[np.ndarray, np.ndarray]:
    """(a (n, 1), beta (n, 3, 3)): isotropic and traceless parts of symmetrised alpha."""
    x = as_series(alpha, (3, 3), "polarizability time series")
    x = 0.5 * (x + np.swapaxes(x, 1, 2))
    a = np.trace(x, axis1=1, axis2=2) / 3.0
    return a[:, None], x - a[:, None, None] * np.eye(3)


def raman_spectrum(alpha, opts: SpectrumOptions, units: str = "") -> VibrationalSpectrum:
    """Isotropic, anisotropic, parallel (VV) and perpendicular (VH) Raman spectra of a
    polarizability series (n_steps, 3, 3) or (n_steps, 9), frames ``opts.timestep_fs`` apart, or of
    a list of independent trajectories (lineshapes averaged).
    Raises DataError for NaNs, a wrong number of components or fewer than 8 frames."""
    from psilearn.observe.ir import _as_runs

    runs = [isotropic_anisotropic(x) for x in _as_runs(alpha)]
    n_min = min(len(a) for a, _ in runs)
    if opts.correlation_fs is None and len(runs) > 1:
        opts = replace(opts, correlation_fs=opts.max_lag(n_min) * opts.timestep_fs)
    iso = aniso = 0.0
    for a, beta in runs:
        nu, s_iso = derivative_spectrum(a, opts)
        _, s_aniso = derivative_spectrum(beta, opts)
        iso, aniso = iso + s_iso, aniso + 1.5 * s_aniso
    cols = {"isotropic": iso, "anisotropic": aniso, "parallel": iso + 4.0 / 45.0 * aniso,
            "perpendicular": aniso / 15.0}
    scale = max(float(np.max(np.abs(cols["parallel"]))), 1e-300)
    cols = {k: v / scale for k, v in cols.items()}
    meta = {"kind": "reduced Raman (derivative polarizability autocorrelations, rotational invariants)",
            "n_frames": int(sum(len(a) for a, _ in runs)), "n_trajectories": len(runs), "timestep_fs": opts.timestep_fs,
            "correlation_fs": opts.max_lag(n_min) * opts.timestep_fs, "window": opts.window,
            "zero_padding": opts.zero_padding, "quantum_correction": opts.qcf,
            "temperature_K": opts.temperature_k, "polarizability_units": units or "unspecified",
            "intensity": "arbitrary units, one common scale (parallel max = 1)"}
    return VibrationalSpectrum(nu, cols, meta)
