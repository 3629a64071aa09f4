"""An SCF starting guess from a fitted density, and the SCF cycles it saves.

The guess diagonalises the Fock matrix of the fitted density (:func:`psilearn.observe.density.fock.fitted_fock`:
F = h + J[rho_fit] + V_xc[rho_fit], V_xc on a level-1 grid: :data:`GUESS_GRID_LEVEL`) with the
overlap, occupies the lowest orbitals (aufbau; the same orbitals for both spins of an open shell) and
hands that density matrix to PySCF as ``dm0``. The same
SCF is run once from it and once from PySCF's default guess (``minao``); cycles are counted with a
callback (one call per SCF iteration). The SCF is the labeler's (:class:`psilearn.label.pyscf_labeler.PySCFLabeler`:
``XC/BASIS``, grid level, charge and multiplicity from the structure) with ``conv_tol``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from psilearn.errors import DataError
from psilearn.observe.density.structure import FittedDensity, fitted_density

DEFAULT_CONV_TOL = 1e-9
#: Grid level of V_xc[rho_fit] in the guess: level 1 gives the same cycles as the SCF's level 3 for
#: water, ethanol and benzene (PBE/def2-SVP) at a third of the cost (level 0 costs a cycle).
GUESS_GRID_LEVEL = 1


@dataclass
class ScfGuessResult:
    """Cycles (callback calls) and energies (Hartree) of the SCF from the fitted-density guess and from
    PySCF's default guess; ``seconds_*`` wall times of each SCF (the guess's Fock build included)."""

    method: str
    cycles_guess: int
    cycles_default: int
    energy_guess: float
    energy_default: float
    converged_guess: bool
    converged_default: bool
    seconds_guess: float
    seconds_default: float

    @property
    def cycles_saved(self) -> int:
        return self.cycles_default - self.cycles_guess


def _labeler(method: str, conv_tol: float, grid_level: int, max_cycle: int):
    from psilearn.label import make_labeler
    from psilearn.label.pyscf_labeler import PySCFLabeler
    from psilearn.label.xtb_methods import xtb_method

    if xtb_method(str(method).strip().lower()) is not None:
        raise DataError(f"the SCF guess needs a PySCF method XC/BASIS (e.g. pbe/def2-svp), got {method!r}")
    try:
        lab = make_labeler(method, "energy", conv_tol=conv_tol, grid_level=grid_level, max_cycle=max_cycle)
    except ValueError as exc:
        raise DataError(f"SCF-guess method {method!r}: {exc}") from None
    if not isinstance(lab, PySCFLabeler) or lab.density_fit:
        raise DataError(f"the SCF guess needs a PySCF method XC/BASIS (e.g. pbe/def2-svp), got {method!r}")
    return lab


def guess_density_matrix(mf, density: FittedDensity, xc: str, grid_level: int | None = GUESS_GRID_LEVEL) -> np.ndarray:
    """The density matrix (AO basis of ``mf.mol``; (2, nao, nao) for UHF/UKS) of the occupied
    eigenvectors of the fitted density's Fock matrix (V_xc on a level-``grid_level`` grid; None: the SCF's)."""
    from psilearn.observe.density.fock import fitted_fock

    fock = fitted_fock(mf, density.auxmol, density.coefficients, xc, grid_level)
    energy, coeff = scipy.linalg.eigh(fock, mf.get_ovlp())
    if getattr(mf, "istype", None) is not None and mf.istype("UHF"):
        energy, coeff = np.array([energy, energy]), np.array([coeff, coeff])
    return mf.make_rdm1(coeff, mf.get_occ(energy, coeff))


def _run(mf, dm0) -> tuple[int, float, bool, float]:
    cycles = []
    mf.callback = lambda envs: cycles.append(envs.get("cycle"))
    t0 = time.perf_counter()
    mf.kernel(dm0=dm0)
    return len(cycles), float(mf.e_tot), bool(mf.converged), time.perf_counter() - t0


def scf_guess_of(density: FittedDensity, method: str, conv_tol: float = DEFAULT_CONV_TOL, grid_level: int = 3,
                 max_cycle: int = 100) -> ScfGuessResult:
    """Run the SCF ``method`` (``XC/BASIS``) of ``density.atoms`` from the fitted-density guess and from
    PySCF's default guess; see :class:`ScfGuessResult`."""
    from psilearn.label.base import LabelError

    lab = _labeler(method, conv_tol, grid_level, max_cycle)
    try:
        mol = lab.build_mol(density.atoms)
    except LabelError as exc:
        raise DataError(f"{density.atoms.get_chemical_formula()}: {exc}") from None
    mf = lab.make_scf(mol)
    t0 = time.perf_counter()
    dm0 = guess_density_matrix(mf, density, lab.xc)
    build = time.perf_counter() - t0
    n_guess, e_guess, ok_guess, s_guess = _run(mf, dm0)
    n_def, e_def, ok_def, s_def = _run(lab.make_scf(mol), None)
    return ScfGuessResult(lab.name, n_guess, n_def, e_guess, e_def, ok_guess, ok_def, s_guess + build, s_def)


def scf_guess_cycles(atoms, coefficients, aux_basis: str, method: str = "pbe/def2-svp", charge: int | None = None,
                     conv_tol: float = DEFAULT_CONV_TOL, grid_level: int = 3) -> ScfGuessResult:
    """SCF cycles with the guess from the fitted density versus PySCF's default guess (see the module
    doc). Checks as :func:`psilearn.observe.density.structure.fitted_density`; DataError for a method
    that is not a PySCF ``XC/BASIS`` or a meta-GGA functional."""
    return scf_guess_of(fitted_density(atoms, coefficients, aux_basis, charge), method, conv_tol, grid_level)
