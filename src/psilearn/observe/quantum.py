"""Quantum correction factors for spectra from classical time correlation functions.

With x = h c nu~ / (k_B T), the quantum lineshape is approximated as Q(x) times the classical one
(Ramirez, Lopez-Ciudad, Kumar & Marx, J. Chem. Phys. 121, 3973 (2004)):

  'harmonic'   Q = x / (1 - exp(-x))     exact for a harmonic system with a linear dipole
  'standard'   Q = 2 / (1 + exp(-x))
  'schofield'  Q = exp(x / 2)
  'none'       Q = 1
"""

from __future__ import annotations

import numpy as np

#: second radiation constant h c / k_B in cm K
HC_OVER_KB = 1.438776877

QCF_NAMES = ("harmonic", "standard", "schofield", "none")


def reduced_frequency(wavenumber_cm1: np.ndarray, temperature_k: float) -> np.ndarray:
    """x = h c nu~ / (k_B T), dimensionless."""
    if temperature_k <= 0:
        raise ValueError(f"temperature must be > 0 K, got {temperature_k}")
    return HC_OVER_KB * np.asarray(wavenumber_cm1, dtype=np.float64) / temperature_k


def _one_minus_exp_over_x(x: np.ndarray) -> np.ndarray:
    """(1 - exp(-x)) / x with its limit 1 at x = 0."""
    small = np.abs(x) < 1e-8
    return np.where(small, 1.0 - 0.5 * x, -np.expm1(-x) / np.where(small, 1.0, x))


def correction_factor(name: str, wavenumber_cm1: np.ndarray, temperature_k: float) -> np.ndarray:
    """Q(nu~) for the named correction (see the module docstring)."""
    x = reduced_frequency(wavenumber_cm1, temperature_k)
    if name == "harmonic":
        return 1.0 / _one_minus_exp_over_x(x)
    if name == "standard":
        return 2.0 / (1.0 + np.exp(-x))
    if name == "schofield":
        return np.exp(0.5 * x)
    if name == "none":
        return np.ones_like(x)
    raise ValueError(f"unknown quantum correction {name!r}; choose from {', '.join(QCF_NAMES)}")


def absorption_factor(name: str, wavenumber_cm1: np.ndarray, temperature_k: float) -> np.ndarray:
    """Factor F turning the transform of a classical *derivative* autocorrelation, S_cl(w) =
    w^2 I_cl(w), into the quantum-corrected absorption lineshape (up to constants):
    alpha(w) n(w) ~ w (1 - exp(-x)) Q I_cl = (k_B T / hbar) F S_cl with F = Q (1 - exp(-x)) / x.
    F = 1 for 'harmonic' (the classical result)."""
    x = reduced_frequency(wavenumber_cm1, temperature_k)
    return correction_factor(name, wavenumber_cm1, temperature_k) * _one_minus_exp_over_x(x)
