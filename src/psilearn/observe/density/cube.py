"""Gaussian cube files of a fitted density (and of its ESP) on a box grid around the molecule.

The box spans the atoms plus ``margin`` (Angstrom) on every side, with points ``spacing`` (Angstrom)
apart along x, y and z; values are rho(r) in e/Bohr^3 (the cube format's atomic units; the ESP
cube holds Hartree/e). Files are written with ASE's cube writer (``ase.io.write(..., format='cube',
data=..., origin=...)``) through :func:`psilearn.data.outputs.atomic_write`, so
``ase.io.cube.read_cube_data`` reads them back. A uniform grid integrates rho only as well as its
spacing resolves the tight core functions: :func:`grid_integral` reports sum(rho) dV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms, units

from psilearn.errors import DataError
from psilearn.observe.density.structure import FittedDensity, density_values

DEFAULT_SPACING = 0.2
DEFAULT_MARGIN = 4.0
#: Refuse grids with more points than this (the values alone are 8 bytes each).
MAX_POINTS = 50_000_000


@dataclass
class BoxGrid:
    """Points ``origin + (i, j, k) * spacing`` (Angstrom) for ``shape`` = (n_x, n_y, n_z)."""

    origin: np.ndarray
    spacing: float
    shape: tuple[int, int, int]

    def points(self) -> np.ndarray:
        """(n_x n_y n_z, 3) Angstrom, x slowest and z fastest (the cube file's order)."""
        axes = [self.origin[i] + self.spacing * np.arange(n) for i, n in enumerate(self.shape)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)

    @property
    def voxel_bohr3(self) -> float:
        return (self.spacing / units.Bohr) ** 3

    def cell(self) -> np.ndarray:
        """The cell ASE's cube writer divides by the grid shape to get the voxel vectors (Angstrom)."""
        return np.diag([n * self.spacing for n in self.shape])


def box_grid(atoms: Atoms, spacing: float = DEFAULT_SPACING, margin: float = DEFAULT_MARGIN) -> BoxGrid:
    """A box grid around ``atoms``: ``margin`` Angstrom beyond the outermost nuclei, ``spacing`` Angstrom apart."""
    if not (np.isfinite(spacing) and spacing > 0) or not (np.isfinite(margin) and margin >= 0):
        raise DataError(f"cube spacing must be > 0 and margin >= 0 (Angstrom), got spacing {spacing} and margin {margin}")
    lo = atoms.positions.min(axis=0) - margin
    hi = atoms.positions.max(axis=0) + margin
    shape = tuple(int(np.floor((h - l) / spacing + 1e-9)) + 1 for l, h in zip(lo, hi))
    if int(np.prod(shape)) > MAX_POINTS:
        raise DataError(f"a {shape[0]}x{shape[1]}x{shape[2]} cube grid is too large ({np.prod(shape):.3g} points > "
                        f"{MAX_POINTS:.0e}): use a larger spacing or a smaller margin")
    return BoxGrid(lo, float(spacing), shape)


def density_on_grid(density: FittedDensity, grid: BoxGrid) -> np.ndarray:
    """rho (e/Bohr^3) on ``grid``, shape ``grid.shape``."""
    return density_values(density.auxmol, density.coefficients, grid.points() / units.Bohr).reshape(grid.shape)


def grid_integral(values: np.ndarray, grid: BoxGrid) -> float:
    """sum(values) dV: the electron count of a density on the grid (dV in Bohr^3)."""
    return float(values.sum() * grid.voxel_bohr3)


def write_cube(path, density: FittedDensity, grid: BoxGrid, values: np.ndarray, comment: str) -> None:
    """Write ``values`` (shape ``grid.shape``, atomic units) on ``grid`` with the molecule as a cube file."""
    import ase.io

    from psilearn.data.outputs import atomic_write

    atoms = Atoms(density.atoms.numbers, positions=density.atoms.positions, cell=grid.cell(), pbc=False)
    with atomic_write(path) as tmp:
        ase.io.write(tmp, atoms, format="cube", data=values, origin=grid.origin, comment=comment)


def write_density_cube(path, density: FittedDensity, spacing: float = DEFAULT_SPACING,
                       margin: float = DEFAULT_MARGIN) -> float:
    """Write rho (e/Bohr^3) on a box grid to the cube file ``path``; returns the grid's electron count
    sum(rho) dV (compare with ``density.fitted_electrons`` to judge the spacing)."""
    grid = box_grid(density.atoms, spacing, margin)
    values = density_on_grid(density, grid)
    write_cube(path, density, grid, values,
               f"psilearn fitted density (e/Bohr^3), aux basis {density.aux_basis}, {density.atoms.get_chemical_formula()}")
    return grid_integral(values, grid)


def write_esp_cube(path, density: FittedDensity, spacing: float = DEFAULT_SPACING,
                   margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Write the ESP (Hartree/e) of nuclei + fitted density on a box grid to ``path``; grid points
    within :data:`psilearn.observe.density.esp.MIN_DISTANCE` of a nucleus get the value at that
    distance. Returns the values (shape of the grid)."""
    from psilearn.observe.density.esp import MIN_DISTANCE, esp_of

    grid = box_grid(density.atoms, spacing, margin)
    pts = grid.points()
    for r in density.atoms.positions:  # nudge points sitting on a nucleus
        d = pts - r
        near = np.linalg.norm(d, axis=1) < MIN_DISTANCE
        pts[near] = r + np.array([MIN_DISTANCE, 0.0, 0.0])
    values = esp_of(density, pts).reshape(grid.shape)
    write_cube(path, density, grid, values,
               f"psilearn ESP of nuclei + fitted density (Hartree/e), {density.atoms.get_chemical_formula()}")
    return values
