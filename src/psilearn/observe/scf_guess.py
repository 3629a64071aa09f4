"""An SCF run twice, from a given starting density matrix and from PySCF's default guess: the cycles a guess saves.

Shared by the guesses built from a fitted density (:mod:`psilearn.observe.density.scf_guess`) and
from a (predicted or labelled) AO Hamiltonian (:mod:`psilearn.observe.hamiltonian.scf_guess`). The
SCF is the labeler's (:class:`psilearn.label.pyscf_labeler.PySCFLabeler`: ``XC/BASIS``, grid level,
charge and multiplicity from the structure) with ``conv_tol``; cycles are counted with a callback
(one call per SCF iteration), once from the guess (``dm0``) and once from PySCF's default (``minao``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from psilearn.errors import DataError

DEFAULT_CONV_TOL = 1e-9


@dataclass
class ScfGuessResult:
    """Cycles (callback calls) and energies (Hartree) of the SCF from a guess and from PySCF's
    default guess; ``seconds_*`` wall times of each SCF (the guess's own construction included)."""

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


def scf_labeler(method: str, conv_tol: float = DEFAULT_CONV_TOL, grid_level: int = 3, max_cycle: int = 100):
    """The labeler of the SCF ``method`` (a PySCF ``XC/BASIS`` without density fitting); DataError otherwise."""
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


def labeler_mol(lab, atoms):
    """``lab.build_mol(atoms)`` with the labeler's one-line refusals as DataError naming the formula."""
    from psilearn.label.base import LabelError

    try:
        return lab.build_mol(atoms)
    except LabelError as exc:
        raise DataError(f"{atoms.get_chemical_formula()}: {exc}") from None


def _run(mf, dm0) -> tuple[int, float, bool, float]:
    cycles = []
    mf.callback = lambda envs: cycles.append(envs.get("cycle"))
    t0 = time.perf_counter()
    mf.kernel(dm0=dm0)
    return len(cycles), float(mf.e_tot), bool(mf.converged), time.perf_counter() - t0


def compare_guess(atoms, method: str, guess: Callable[[object, object], np.ndarray], conv_tol: float = DEFAULT_CONV_TOL,
                  grid_level: int = 3, max_cycle: int = 100) -> ScfGuessResult:
    """Run the SCF ``method`` (``XC/BASIS``) of ``atoms`` (Angstrom) from ``guess(labeler, mf)`` (a
    density matrix in the AO basis of ``mf.mol``, the layout of ``mf.make_rdm1()``) and from PySCF's
    default guess; the guess's construction time counts towards ``seconds_guess``."""
    lab = scf_labeler(method, conv_tol, grid_level, max_cycle)
    mol = labeler_mol(lab, atoms)
    mf = lab.make_scf(mol)
    t0 = time.perf_counter()
    dm0 = guess(lab, mf)
    build = time.perf_counter() - t0
    n_guess, e_guess, ok_guess, s_guess = _run(mf, dm0)
    n_def, e_def, ok_def, s_def = _run(lab.make_scf(mol), None)
    return ScfGuessResult(lab.name, n_guess, n_def, e_guess, e_def, ok_guess, ok_def, s_guess + build, s_def)
