"""The common path from a time series of a molecular property to a vibrational spectrum.

derivative (central differences) -> autocorrelation (all time origins) -> window -> zero padding
-> cosine transform -> finite-difference correction -> quantum correction. Used by
:mod:`psilearn.observe.ir` (dipoles) and :mod:`psilearn.observe.raman` (polarizabilities).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

import numpy as np

from psilearn.data.outputs import open_atomic
from psilearn.observe.correlation import angular_per_fs, autocorrelation, cosine_transform
from psilearn.observe.quantum import absorption_factor
from psilearn.spectral.checks import positive

#: Bands below this wavenumber (cm^-1: translations, rotations, slow drifts of the series) are left
#: out of the band summaries (:meth:`VibrationalSpectrum.strongest_bands`, ``peak_positions``).
BAND_CUT_CM1 = 200.0


@dataclass
class SpectrumOptions:
    """How a time series becomes a spectrum.

    ``timestep_fs``: time between consecutive frames (fs; MD step x stride).
    ``correlation_fs``: longest lag of the correlation function (fs; default half the trajectory);
    together with the window it sets the resolution (~ 1 / correlation time).
    ``window``: 'hann' (default), 'blackman', 'gaussian', 'welch' or 'none'.
    ``zero_padding``: pad the windowed correlation to this many times its length (default 4).
    ``qcf``: quantum correction 'harmonic' (default; the classical derivative result),
    'standard', 'schofield' or 'none'. ``temperature_k``: for the correction (K).
    ``max_cm1``: highest wavenumber kept (cm^-1; default 4500).
    """

    timestep_fs: float
    correlation_fs: float | None = None
    window: str = "hann"
    zero_padding: int = 4
    qcf: str = "harmonic"
    temperature_k: float = 300.0
    max_cm1: float = 4500.0

    def max_lag(self, n_steps: int) -> int:
        if self.correlation_fs is None:
            return max(1, n_steps // 2)
        lag = int(round(positive(self.correlation_fs, "correlation length (fs)") / self.timestep_fs))
        if not 1 <= lag < n_steps:
            raise ValueError(f"correlation length {self.correlation_fs} fs needs 1..{n_steps - 1} steps of {self.timestep_fs} fs, "
                             f"the trajectory has {n_steps} frames")
        return lag


@dataclass
class VibrationalSpectrum:
    """A spectrum on a wavenumber grid.

    ``wavenumber_cm1`` (n,) in cm^-1; ``columns`` name -> intensities (n,) in arbitrary units
    (each normalised to a maximum of 1 unless stated in ``meta``); ``meta`` records every option,
    the units of the input series and the number of frames."""

    wavenumber_cm1: np.ndarray
    columns: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)

    def to_csv(self, path: str) -> None:
        """CSV with a header: wavenumber_cm-1, then one column per intensity; '#' lines first
        record the options."""
        with open_atomic(path, newline="") as fh:
            for k, v in self.meta.items():
                fh.write(f"# {k}: {v}\n")
            w = csv.writer(fh)
            names = list(self.columns)
            w.writerow(["wavenumber_cm-1", *names])
            for i, nu in enumerate(self.wavenumber_cm1):
                w.writerow([f"{nu:.4f}", *[f"{self.columns[n][i]:.8g}" for n in names]])

    def peak_positions(self, column: str | None = None, prominence: float = 0.05, n_peaks: int | None = None,
                       min_cm1: float = BAND_CUT_CM1) -> np.ndarray:
        """Peak positions (cm^-1) of one column above ``min_cm1``, most prominent first."""
        from psilearn.spectral.peaks import peak_positions

        col = self.columns[column or next(iter(self.columns))]
        keep = self.wavenumber_cm1 >= min_cm1
        return peak_positions(self.wavenumber_cm1[keep], col[keep], prominence, n_peaks)

    def strongest_bands(self, column: str | None = None, n_bands: int = 6, min_cm1: float = BAND_CUT_CM1,
                        prominence: float = 0.05) -> list[tuple[float, float]]:
        """The strongest bands of one column (default the first) above ``min_cm1``, as written by
        :meth:`to_csv`: local maxima of the intensity standing out by ``prominence`` x its range
        above the cut, highest first, as (position in cm^-1 refined below the grid spacing, the
        intensity at the maximum's grid point). ``psilearn spectrum`` prints them."""
        from psilearn.spectral.peaks import strongest_peaks

        col = self.columns[column or next(iter(self.columns))]
        keep = self.wavenumber_cm1 >= min_cm1
        if np.count_nonzero(keep) < 3:
            return []
        pos, idx = strongest_peaks(self.wavenumber_cm1[keep], col[keep], prominence, n_bands)
        return [(float(p), float(col[keep][i])) for p, i in zip(pos, idx)]


def derivative(x: np.ndarray, timestep_fs: float) -> np.ndarray:
    """Central-difference time derivative (units of x per fs), same shape as ``x`` (n_steps, ...);
    one-sided at the two ends."""
    return np.gradient(x, timestep_fs, axis=0)


def derivative_spectrum(x: np.ndarray, opts: SpectrumOptions) -> tuple[np.ndarray, np.ndarray]:
    """Quantum-corrected lineshape from the autocorrelation of dx/dt: (wavenumbers cm^-1 (n,),
    intensity (n,), un-normalised, x-units^2 / fs). The transform is divided by the response
    (sin(w dt) / (w dt))^2 of the central difference, so band intensities are not damped at high
    wavenumbers."""
    dt = positive(opts.timestep_fs, "timestep (fs)")
    xd = derivative(x, dt)
    acf = autocorrelation(xd, opts.max_lag(len(x)))
    nu, s = cosine_transform(acf, dt, opts.window, opts.zero_padding)
    wdt = angular_per_fs(nu) * dt
    response = np.where(wdt > 1e-12, np.sinc(wdt / np.pi) ** 2, 1.0)
    s = s / np.maximum(response, 1e-3)
    s *= absorption_factor(opts.qcf, nu, opts.temperature_k)
    nyquist = 0.5 / dt / 2.99792458e-5
    if opts.max_cm1 > nyquist:
        import warnings

        warnings.warn(f"frames {dt:g} fs apart resolve wavenumbers only up to {nyquist:.0f} cm^-1 (Nyquist); "
                      f"the spectrum stops there instead of at {opts.max_cm1:g} cm^-1", stacklevel=3)
    keep = nu <= min(opts.max_cm1, nyquist)
    return nu[keep], s[keep]


def normalise(y: np.ndarray) -> np.ndarray:
    m = float(np.max(np.abs(y))) if len(y) else 0.0
    return y / m if m > 0 else y
