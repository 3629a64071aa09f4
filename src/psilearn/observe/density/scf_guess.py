"""An SCF starting guess from a fitted density, and the SCF cycles it saves.

The guess diagonalises the Fock matrix of the fitted density (:func:`psilearn.observe.density.fock.fitted_fock`:
F = h + J[rho_fit] + V_xc[rho_fit], V_xc on a level-1 grid: :data:`GUESS_GRID_LEVEL`) with the
overlap, occupies the lowest orbitals (aufbau; the same orbitals for both spins of an open shell) and
hands that density matrix to PySCF as ``dm0``. The SCF's Mole is the labeler's, with the ECPs of
its basis (h then includes them); they must replace as many electrons per atom as the density's. The same SCF is run once from it and once from
PySCF's default guess (``minao``) by :func:`psilearn.observe.scf_guess.compare_guess` (the run and
count shared with the Hamiltonian guess of :mod:`psilearn.observe.hamiltonian.scf_guess`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from psilearn.errors import DataError
from psilearn.observe.density.structure import FittedDensity, fitted_density
from psilearn.observe.scf_guess import DEFAULT_CONV_TOL, ScfGuessResult, compare_guess

__all__ = ["DEFAULT_CONV_TOL", "GUESS_GRID_LEVEL", "ScfGuessResult", "guess_density_matrix", "scf_guess_of", "scf_guess_cycles"]

#: Grid level of V_xc[rho_fit] in the guess: level 1 gives the same cycles as the SCF's level 3 for
#: water, ethanol and benzene (PBE/def2-SVP) at a third of the cost (level 0 costs a cycle).
GUESS_GRID_LEVEL = 1


def guess_density_matrix(mf, density: FittedDensity, xc: str, grid_level: int | None = GUESS_GRID_LEVEL) -> np.ndarray:
    """The density matrix (AO basis of ``mf.mol``; (2, nao, nao) for UHF/UKS) of the occupied
    eigenvectors of the fitted density's Fock matrix (V_xc on a level-``grid_level`` grid; None: the SCF's)."""
    from psilearn.label.density import core_electrons
    from psilearn.observe.density.fock import fitted_fock

    scf_core = core_electrons(mf.mol)  # the labeler's Mole carries the ECPs of its basis
    if np.any(scf_core != density.core_electrons):
        k = int(np.argmax(scf_core != density.core_electrons))
        raise DataError(f"{density.atoms.get_chemical_formula()}: the SCF's basis puts {scf_core[k]} electrons of atom {k} "
                        f"({density.atoms[k].symbol}) in an ECP, but the density was fitted with {density.core_electrons[k]}: "
                        "use a method whose basis has the density's ECPs")
    fock = fitted_fock(mf, density.auxmol, density.coefficients, xc, grid_level)
    energy, coeff = scipy.linalg.eigh(fock, mf.get_ovlp())
    if getattr(mf, "istype", None) is not None and mf.istype("UHF"):
        energy, coeff = np.array([energy, energy]), np.array([coeff, coeff])
    return mf.make_rdm1(coeff, mf.get_occ(energy, coeff))


def scf_guess_of(density: FittedDensity, method: str, conv_tol: float = DEFAULT_CONV_TOL, grid_level: int = 3,
                 max_cycle: int = 100) -> ScfGuessResult:
    """Run the SCF ``method`` (``XC/BASIS``) of ``density.atoms`` from the fitted-density guess and from
    PySCF's default guess; see :class:`ScfGuessResult`."""
    return compare_guess(density.atoms, method, lambda lab, mf: guess_density_matrix(mf, density, lab.xc),
                         conv_tol, grid_level, max_cycle)


def scf_guess_cycles(atoms, coefficients, aux_basis: str, method: str = "pbe/def2-svp", charge: int | None = None,
                     conv_tol: float = DEFAULT_CONV_TOL, grid_level: int = 3) -> ScfGuessResult:
    """SCF cycles with the guess from the fitted density versus PySCF's default guess (see the module
    doc). Checks as :func:`psilearn.observe.density.structure.fitted_density`; DataError for a method
    that is not a PySCF ``XC/BASIS`` or a meta-GGA functional."""
    return scf_guess_of(fitted_density(atoms, coefficients, aux_basis, charge), method, conv_tol, grid_level)
