"""Orbital-derived labels: HOMO/LUMO/gap and a Gaussian-broadened density of states."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psilearn.spectral.broadening import gaussian_broadening


@dataclass(frozen=True)
class DOSGrid:
    """Energy grid (Hartree) ``linspace(emin, emax, npts)`` and Gaussian width ``sigma`` (Ha)."""

    emin: float = -1.5
    emax: float = 0.5
    npts: int = 401
    sigma: float = 0.01

    @property
    def energies(self) -> np.ndarray:
        return np.linspace(self.emin, self.emax, self.npts)

    def as_dict(self) -> dict[str, float]:
        return {"emin": self.emin, "emax": self.emax, "npts": self.npts, "sigma": self.sigma}


def broadened_dos(levels: np.ndarray, weights: np.ndarray, grid: DOSGrid) -> np.ndarray:
    """Sum of normalised Gaussians (states/Hartree) on ``grid.energies``, shape (npts,).

    ``weights`` is the number of states per level (2 for a restricted spatial orbital, 1 per spin
    orbital otherwise), so the integral over all energies is the number of spin orbitals. Weights of
    shape (n_levels, k) (states times each atom's Löwdin share) give k spectra, shape (npts, k).
    """
    return gaussian_broadening(levels, weights, grid.energies, grid.sigma)


def frontier(levels: np.ndarray, occupied: np.ndarray) -> tuple[float, float, float]:
    """(HOMO, LUMO, gap) in the units of ``levels``: the highest ``occupied`` level (a boolean mask), the
    lowest other one and their difference; NaN where there is no such level."""
    homo = float(levels[occupied].max()) if occupied.any() else float("nan")
    lumo = float(levels[~occupied].min()) if (~occupied).any() else float("nan")
    return homo, lumo, lumo - homo


def orbital_labels(
    mo_energy: np.ndarray | list[np.ndarray],
    mo_occ: np.ndarray | list[np.ndarray],
    grid: DOSGrid,
) -> dict[str, object]:
    """Labels from orbital energies (Ha) and occupations.

    Restricted input: one array each. Unrestricted: a pair (alpha, beta). Returns ``info`` entries:
    ``orbital_energies`` (or ``orbital_energies_alpha``/``_beta``), ``homo``, ``lumo``, ``gap``,
    ``dos`` and the grid description.
    """
    info: dict[str, object] = {}
    energies = np.asarray(mo_energy, dtype=float)
    occs = np.asarray(mo_occ, dtype=float)
    if energies.ndim == 2:  # unrestricted
        info["orbital_energies_alpha"] = energies[0]
        info["orbital_energies_beta"] = energies[1]
        levels = np.concatenate([energies[0], energies[1]])
        occ = np.concatenate([occs[0], occs[1]])
        weights = np.ones_like(levels)
        occupied = occ > 0.5
    else:
        info["orbital_energies"] = energies
        levels, occ = energies, occs
        weights = np.full_like(levels, 2.0)
        occupied = occ > 1e-6  # fractional occupations (smearing) count as occupied
    info["homo"], info["lumo"], info["gap"] = frontier(levels, occupied)
    info["dos"] = broadened_dos(levels, weights, grid)
    info["dos_emin"] = grid.emin
    info["dos_emax"] = grid.emax
    info["dos_npts"] = grid.npts
    info["dos_sigma"] = grid.sigma
    return info
