"""An SCF starting guess from an AO Hamiltonian (predicted or labelled), and the SCF cycles it saves.

The guess is the aufbau density matrix of ``eigh(F, S)`` (:func:`psilearn.observe.hamiltonian.derive.derive`'s
D), handed to PySCF as ``dm0``; the same SCF (the labeler's ``XC/BASIS``, closed shell) is run once
from it and once from PySCF's default guess (``minao``) by :func:`psilearn.observe.scf_guess.compare_guess`,
the run and count shared with the fitted-density guess. F must be in the AO basis of the method.
"""

from __future__ import annotations

from ase import Atoms

from psilearn.data.electronic_state import with_charge
from psilearn.observe.hamiltonian.structure import aufbau, checked_fock, closed_shell_electrons, density_matrix
from psilearn.observe.scf_guess import DEFAULT_CONV_TOL, ScfGuessResult, compare_guess


def scf_guess_cycles(atoms: Atoms, fock, method: str = "hf/def2-svp", charge: int | None = None,
                     conv_tol: float = DEFAULT_CONV_TOL, grid_level: int = 3, max_cycle: int = 100) -> ScfGuessResult:
    """SCF cycles of ``method`` (``XC/BASIS``) for ``atoms`` (Angstrom) from the density matrix of
    ``fock`` (Hartree, (n_ao, n_ao) or flat, PySCF's AO order in the method's basis) versus PySCF's
    default guess; energies in Hartree (see :class:`psilearn.observe.scf_guess.ScfGuessResult`).
    ``charge`` (e) overrides ``atoms.info['charge']``. DataError (one line) for a method that is not a
    PySCF ``XC/BASIS``, an F of another size than the method's basis, or an open shell."""
    atoms = with_charge(atoms, charge)
    formula = atoms.get_chemical_formula()

    def guess(lab, mf):
        n_el = closed_shell_electrons(mf.mol, formula)
        _, coeff, occ = aufbau(checked_fock(fock, mf.mol.nao, lab.basis), mf.get_ovlp(), n_el)
        return density_matrix(coeff, occ)

    return compare_guess(atoms, method, guess, conv_tol, grid_level, max_cycle)
