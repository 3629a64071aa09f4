"""From spectra to the numbers a kernel model learns, and back: per-element baseline, one global
scale, optional PCA compression."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from psilearn.models.composition import composition_design, fit_composition
from psilearn.spectral.pca import fit_pca


def design_matrix(frames: list[Atoms], species: list[int], per: str, pool: str, absorber: str = "") -> np.ndarray:
    """Composition design for the baseline: (n_structures, n_species) element counts (fractions
    for pool 'mean'), (n_atoms, n_species) one-hot for per-atom targets, or (n_structures, 1) the
    absorber count (1 for pool 'mean') for absorber-centred ones."""
    if absorber:
        z = atomic_numbers[absorber]
        c = np.array([[np.sum(a.numbers == z)] for a in frames], float)
        return np.ones_like(c) if pool == "mean" else c
    return composition_design(frames, species, per, pool)


@dataclass
class TargetTransform:
    """y = design @ baseline + scale * (pca_mean + z @ components) (with PCA) or
    y = design @ baseline + scale * z (without). Shapes: baseline (n_design, n_grid); components
    (k, n_grid); z (n, k or n_grid)."""

    baseline: np.ndarray
    scale: float
    pca_mean: np.ndarray | None = None
    components: np.ndarray | None = None

    @classmethod
    def fit(cls, design: np.ndarray, y: np.ndarray, pca: float = 0) -> tuple["TargetTransform", np.ndarray]:
        """Least-squares baseline (tiny ridge), global RMS scale of the residual, then optional PCA
        (``pca`` components, or a variance fraction in (0, 1)). Returns (transform, z)."""
        base = fit_composition(design, y)
        resid = y - design @ base
        scale = float(np.sqrt(np.mean(resid**2)))
        scale = scale if scale > 0 else 1.0
        t = cls(base, scale)
        if pca:
            n_comp = float(pca) if pca < 1 else int(pca)
            p = fit_pca(resid / scale, n_comp)
            t.pca_mean, t.components = p.mean, p.components
        return t, t.forward(design, y)

    def forward(self, design: np.ndarray, y: np.ndarray) -> np.ndarray:
        z = (y - design @ self.baseline) / self.scale
        if self.components is not None:
            z = (z - self.pca_mean) @ self.components.T
        return z

    def inverse(self, design: np.ndarray, z: np.ndarray) -> np.ndarray:
        if self.components is not None:
            z = self.pca_mean + z @ self.components
        return design @ self.baseline + self.scale * z

    def inverse_std(self, z_var: np.ndarray) -> np.ndarray:
        """Standard deviation on the grid (n, n_grid) from independent variances of z (n, k)."""
        if self.components is not None:
            return self.scale * np.sqrt(np.clip(z_var @ self.components**2, 0.0, None))
        return self.scale * np.sqrt(np.clip(z_var, 0.0, None))

    @property
    def n_columns(self) -> int:
        return len(self.components) if self.components is not None else self.baseline.shape[1]
