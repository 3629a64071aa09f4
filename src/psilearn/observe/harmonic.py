"""Harmonic vibrational analysis: normal modes from a Cartesian Hessian, IR intensities from
atomic polar tensors (dipole derivatives), and broadened stick spectra.

Inputs in atomic units: Hessian in Hartree/Bohr^2 (3N, 3N) (or (N, N, 3, 3) as PySCF returns it),
masses in amu (N,), atomic polar tensors in e (N, 3, 3) with apt[k, a, b] = d mu_a / d R_{k,b}.
Outputs: wavenumbers in cm^-1 (imaginary modes as negative numbers), IR intensities in km/mol.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# CODATA 2018
_HARTREE_J = 4.3597447222071e-18
_BOHR_M = 5.29177210903e-11
_AMU_KG = 1.66053906660e-27
_C_CM_S = 2.99792458e10
_C_M_S = 2.99792458e8
_E_C = 1.602176634e-19
_EPS0 = 8.8541878128e-12
_NA = 6.02214076e23

#: sqrt(Hartree / (Bohr^2 amu)) / (2 pi c): eigenvalue of the mass-weighted Hessian -> cm^-1
AU_TO_CM1 = np.sqrt(_HARTREE_J / (_BOHR_M**2 * _AMU_KG)) / (2 * np.pi * _C_CM_S)
#: N_A e^2 / (12 eps0 c^2 amu), in km/mol per (e / sqrt(amu))^2
KM_MOL_PER_E2_AMU = _NA * _E_C**2 / (12 * _EPS0 * _C_M_S**2 * _AMU_KG) / 1000.0


@dataclass
class HarmonicModes:
    """``wavenumber_cm1`` (n_vib,), ascending (negative = imaginary); ``modes`` (3N, n_vib)
    orthonormal mass-weighted eigenvectors; ``ir_km_mol`` (n_vib,) IR intensities if APTs given."""

    wavenumber_cm1: np.ndarray
    modes: np.ndarray
    masses: np.ndarray
    ir_km_mol: np.ndarray | None = None


def _rigid_body_basis(positions: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Orthonormal basis (3N, 5 or 6) of mass-weighted translations and rotations."""
    sq = np.sqrt(masses)
    com = masses @ positions / masses.sum()
    r = positions - com
    vecs = []
    for a in range(3):
        t = np.zeros_like(positions)
        t[:, a] = 1.0
        vecs.append((t * sq[:, None]).ravel())
    for a in range(3):
        axis = np.eye(3)[a]
        vecs.append((np.cross(axis, r) * sq[:, None]).ravel())
    q, s, _ = np.linalg.svd(np.array(vecs).T, full_matrices=False)
    return q[:, s > 1e-6 * s.max()]


def normal_modes(hessian, masses_amu, positions_bohr, apt=None) -> HarmonicModes:
    """Vibrational normal modes with translations and rotations projected out exactly.

    ``hessian`` Ha/Bohr^2 (3N, 3N) or (N, N, 3, 3); ``masses_amu`` (N,); ``positions_bohr`` (N, 3)
    for the rigid-body projector; ``apt`` optional (N, 3, 3) in e for IR intensities."""
    m = np.asarray(masses_amu, dtype=np.float64)
    n = len(m)
    h = np.asarray(hessian, dtype=np.float64)
    if h.shape == (n, n, 3, 3):
        h = h.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n)
    if h.shape != (3 * n, 3 * n):
        raise ValueError(f"Hessian shape {h.shape} does not match {n} atoms")
    h = 0.5 * (h + h.T)
    inv_sq = 1.0 / np.sqrt(np.repeat(m, 3))
    mw = h * np.outer(inv_sq, inv_sq)
    rb = _rigid_body_basis(np.asarray(positions_bohr, float), m)
    proj = np.eye(3 * n) - rb @ rb.T
    mw = proj @ mw @ proj
    lam, vec = np.linalg.eigh(mw)
    # drop the rigid-body directions: the eigenvectors with the largest overlap with them
    overlap = np.sum((rb.T @ vec) ** 2, axis=0)
    vib = np.sort(np.argsort(overlap)[: 3 * n - rb.shape[1]])
    lam, vec = lam[vib], vec[:, vib]
    wn = np.sign(lam) * np.sqrt(np.abs(lam)) * AU_TO_CM1
    out = HarmonicModes(wn, vec, m)
    if apt is not None:
        out.ir_km_mol = ir_intensities(np.asarray(apt, float), out)
    return out


def ir_intensities(apt: np.ndarray, modes: HarmonicModes) -> np.ndarray:
    """IR intensities (km/mol) = N_A / (12 eps0 c^2) |d mu / d Q_k|^2 for each mode, from APTs
    (N, 3, 3) in e (apt[k, a, b] = d mu_a / d R_{k,b})."""
    n = len(modes.masses)
    apt = np.asarray(apt, float).reshape(n, 3, 3)
    dmu_dx = apt.transpose(1, 0, 2).reshape(3, 3 * n)  # (a, (k, b))
    cart = modes.modes / np.sqrt(np.repeat(modes.masses, 3))[:, None]  # dx/dQ, Bohr / (Bohr sqrt(amu))
    dmu_dq = dmu_dx @ cart  # (3, n_vib) in e / sqrt(amu)
    return KM_MOL_PER_E2_AMU * np.sum(dmu_dq**2, axis=0)


def broadened(wavenumber_cm1, intensity, grid_cm1, fwhm_cm1: float = 20.0, shape: str = "lorentzian") -> np.ndarray:
    """Stick spectrum broadened with unit-area Lorentzians (or Gaussians) of the given FWHM,
    evaluated on ``grid_cm1``; units of ``intensity`` per cm^-1."""
    g = np.asarray(grid_cm1, float)[:, None]
    w = np.asarray(wavenumber_cm1, float)[None, :]
    if shape == "lorentzian":
        hw = 0.5 * fwhm_cm1
        prof = hw / np.pi / ((g - w) ** 2 + hw**2)
    elif shape == "gaussian":
        s = fwhm_cm1 / (2 * np.sqrt(2 * np.log(2)))
        prof = np.exp(-0.5 * ((g - w) / s) ** 2) / (s * np.sqrt(2 * np.pi))
    else:
        raise ValueError(f"unknown line shape {shape!r} (lorentzian or gaussian)")
    return prof @ np.asarray(intensity, float)
