"""Time correlation functions and their cosine transforms, with windows and zero padding.

Time in femtoseconds, frequencies as wavenumbers in cm^-1 (nu~ = f / c with f in cycles per fs
and c = 2.99792458e-5 cm/fs).
"""

from __future__ import annotations

import numpy as np

from psilearn.spectral.checks import positive

#: speed of light in cm/fs
C_CM_PER_FS = 2.99792458e-5

WINDOWS = ("hann", "blackman", "gaussian", "welch", "none")


def wavenumber_cm1(freq_per_fs: np.ndarray) -> np.ndarray:
    """Cycles per fs -> cm^-1."""
    return np.asarray(freq_per_fs) / C_CM_PER_FS


def angular_per_fs(wavenumber: np.ndarray) -> np.ndarray:
    """cm^-1 -> angular frequency (rad/fs)."""
    return 2 * np.pi * C_CM_PER_FS * np.asarray(wavenumber)


def autocorrelation(x: np.ndarray, max_lag: int | None = None) -> np.ndarray:
    """<x(0) . x(t)> averaged over all time origins (unbiased: lag k averages N - k products),
    summed over components. ``x`` (n_steps, ...) -> (max_lag + 1,) for lags 0..max_lag steps
    (default n_steps // 2). Computed by FFT with zero padding, so there is no circular wrap-around."""
    n = x.shape[0]
    flat = x.reshape(n, -1)
    max_lag = n // 2 if max_lag is None else int(max_lag)
    if not 1 <= max_lag < n:
        raise ValueError(f"max_lag must be between 1 and {n - 1} steps, got {max_lag}")
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(flat, n=size, axis=0)
    acf = np.fft.irfft(np.sum(f * np.conj(f), axis=1).real, n=size)[: max_lag + 1]
    return acf / (n - np.arange(max_lag + 1))


def window(name: str, n: int) -> np.ndarray:
    """One-sided window (n,) for lags 0..n-1: 1 at lag 0, decaying to (about) 0 at the last lag.
    'hann' cos^2, 'blackman', 'gaussian' (exp(-(t/T)^2 * 4.5), ~0.011 at the end), 'welch'
    1-(t/T)^2, or 'none'."""
    t = np.arange(n) / max(n - 1, 1)
    if name == "none":
        return np.ones(n)
    if name == "hann":
        return np.cos(0.5 * np.pi * t) ** 2
    if name == "blackman":
        u = 0.5 + 0.5 * t  # right half of a symmetric Blackman window
        return 0.42 - 0.5 * np.cos(2 * np.pi * u) + 0.08 * np.cos(4 * np.pi * u)
    if name == "gaussian":
        return np.exp(-4.5 * t**2)
    if name == "welch":
        return 1 - t**2
    raise ValueError(f"unknown window {name!r}; choose from {', '.join(WINDOWS)}")


def cosine_transform(corr: np.ndarray, timestep_fs: float, window_name: str = "hann",
                     zero_padding: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Spectrum S(nu~) = int_{-inf}^{inf} C(t) cos(2 pi f t) dt of an even correlation function
    given for t >= 0 (``corr`` (n_lag,), lags spaced ``timestep_fs``), after multiplying by the
    window and padding with zeros to ``zero_padding`` times its length (a finer, interpolated
    frequency grid; no new information). Returns (wavenumbers cm^-1, S in corr units x fs)."""
    dt = positive(timestep_fs, "timestep (fs)")
    if zero_padding < 1:
        raise ValueError(f"zero_padding must be >= 1, got {zero_padding}")
    c = np.asarray(corr, dtype=np.float64) * window(window_name, len(corr))
    size = int(zero_padding) * len(c)
    spec = dt * (2.0 * np.fft.rfft(c, n=size).real - c[0])
    freq = np.fft.rfftfreq(size, d=dt)
    return wavenumber_cm1(freq), spec
