"""Observables derived from an AO Hamiltonian (Fock/Kohn-Sham matrix F, Hartree, PySCF's AO order).

Each function takes ``(atoms, F, basis or method[, charge])``: ``atoms`` an ASE molecule in
Angstrom, ``F`` the (n_ao, n_ao) (or flat, row-major) matrix of the ``hamiltonian`` label
(``psilearn label --observables hamiltonian``) or of a Hamiltonian model's prediction. Modules:
``structure`` (the Mole, S, the checks, aufbau), ``derive`` (orbital energies, HOMO/LUMO/gap, the
density matrix, Mulliken charges, dipole) and ``scf_guess`` (SCF cycles from F versus PySCF's
default guess). Closed-shell molecules only.
"""

from psilearn.observe.hamiltonian.derive import HamiltonianObservables, derive
from psilearn.observe.hamiltonian.scf_guess import scf_guess_cycles
from psilearn.observe.hamiltonian.structure import mol_of, overlap_matrix
from psilearn.observe.scf_guess import ScfGuessResult

__all__ = ["HamiltonianObservables", "derive", "scf_guess_cycles", "mol_of", "overlap_matrix", "ScfGuessResult"]
