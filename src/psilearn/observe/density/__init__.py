"""Observables derived from a fitted electron density (density-fitting coefficients in PySCF's layout).

Each function takes ``(atoms, coefficients, aux_basis[, charge])``: ``atoms`` an ASE molecule in
Angstrom, ``coefficients`` the flat vector c_P of rho(r) = sum_P c_P phi_P(r) (e/Bohr^3, electrons
positive) over ``pyscf.df.addons.make_auxmol(mol, aux_basis)`` (labels from ``psilearn label
--observables density``, or a density model's ``DensityPrediction``). Modules, one job each:
``structure`` (the checks and the aux Mole), ``multipoles``, ``esp``, ``cube``, ``hirshfeld``,
``fock`` and ``scf_guess``, and ``derive`` (all of them over many structures, for ``psilearn density``).
Molecules only.
"""

from psilearn.observe.density.cube import box_grid, write_density_cube, write_esp_cube
from psilearn.observe.density.esp import VOLT_PER_AU, electrostatic_potential
from psilearn.observe.density.hirshfeld import hirshfeld_charges
from psilearn.observe.density.multipoles import DEBYE_PER_AU, debye, dipole, quadrupole
from psilearn.observe.density.scf_guess import ScfGuessResult, scf_guess_cycles
from psilearn.observe.density.structure import DensityWarning, FittedDensity, fitted_density

__all__ = [
    "box_grid", "write_density_cube", "write_esp_cube", "VOLT_PER_AU", "electrostatic_potential",
    "hirshfeld_charges", "DEBYE_PER_AU", "debye", "dipole", "quadrupole", "ScfGuessResult", "scf_guess_cycles",
    "DensityWarning", "FittedDensity", "fitted_density",
]
