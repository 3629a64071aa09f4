"""The checked inputs of every derived observable: a molecule, its fitted density and the aux Mole.

A density is given as the flat coefficient vector c_P of rho(r) = sum_P c_P phi_P(r) (e/Bohr^3,
electrons positive) over the functions of ``pyscf.df.addons.make_auxmol(mol, aux_basis)`` in PySCF's
order (:mod:`psilearn.label.density`). Positions are in Angstrom as in the ASE Atoms; PySCF works in
Bohr. Molecules only: a periodic cell is refused.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from psilearn.data.electronic_state import checked_electronic_state, with_charge
from psilearn.data.periodicity import is_molecule, periodicity_applied
from psilearn.errors import DataError
from psilearn.targets.ao_basis import check_aux_basis, make_auxmol, missing_elements

#: A fitted density whose electron count is further than this from the structure's (e) is warned about.
ELECTRON_WARNING = 0.1


class DensityWarning(UserWarning):
    """A derived observable that is computable but suspicious (e.g. an electron count far off)."""


@dataclass
class FittedDensity:
    """One molecule with its fitted density: ``atoms`` (Angstrom), ``auxmol`` (PySCF, Bohr),
    ``coefficients`` (n_aux,), the total ``charge`` and ``multiplicity`` and ``n_electrons`` of the
    structure, and ``fitted_electrons`` = sum_P c_P int phi_P. ``core_electrons`` (n_atoms,): the
    electrons each atom's effective core potential replaced in the labelling SCF (0 without one); the
    density holds only the others, so ``n_electrons`` excludes them and :attr:`nuclear_charges` are Z - core."""

    atoms: Atoms
    auxmol: object
    coefficients: np.ndarray
    aux_basis: str
    charge: int
    multiplicity: int
    n_electrons: int
    fitted_electrons: float
    core_electrons: np.ndarray = None

    def __post_init__(self) -> None:
        if self.core_electrons is None:
            self.core_electrons = np.zeros(len(self.atoms), dtype=int)

    @property
    def nuclear_charges(self) -> np.ndarray:
        """Effective nuclear charges Z - core (e), (n_atoms,) float: the charges that go with the density."""
        return (self.atoms.numbers - self.core_electrons).astype(float)


def _aux_mole(atoms: Atoms, aux_basis: str, charge: int, multiplicity: int):
    from pyscf import gto

    mol = gto.Mole()
    mol.atom = [(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)]
    mol.unit = "Angstrom"
    mol.basis = aux_basis
    mol.charge, mol.spin, mol.verbose = charge, multiplicity - 1, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mol.build()
    return make_auxmol(mol, aux_basis)


def _core(atoms: Atoms, core_electrons, formula: str) -> np.ndarray:
    """The ECP core electrons per atom: given, or recorded in ``atoms`` (:func:`psilearn.data.density.frame_core_electrons`)."""
    from psilearn.data.density import CORE_KEY, frame_core_electrons

    if core_electrons is not None:
        atoms = atoms.copy()
        atoms.arrays[CORE_KEY] = np.asarray(core_electrons).reshape(-1)
    return frame_core_electrons(atoms, formula)


def fitted_density(atoms: Atoms, coefficients, aux_basis: str, charge: int | None = None, core_electrons=None) -> FittedDensity:
    """Check one structure and its coefficients and build the auxiliary Mole.

    ``charge`` (e) overrides ``atoms.info['charge']`` (default 0). ``core_electrons`` (n_atoms,) the
    electrons replaced by ECPs (default: ``atoms.arrays['density_core_electrons']`` as labelled; a
    structure without it whose elements have ECPs in the orbital basis of ``info['method']``, def2-svp
    when none, is refused). DataError (one line) for a periodic
    cell, an element without functions in ``aux_basis``, an unknown basis, a coefficient count that
    does not match the structure in that basis, or non-finite coefficients. A fitted electron count
    more than :data:`ELECTRON_WARNING` e from the structure's gives a :class:`DensityWarning`."""
    from psilearn.label.density import aux_moments

    if not isinstance(atoms, Atoms):
        raise DataError(f"expected an ase.Atoms, got {type(atoms).__name__}")
    atoms = periodicity_applied(atoms)
    formula = atoms.get_chemical_formula()
    if not is_molecule(atoms):
        raise DataError(f"{formula}: derived density observables are for molecules only, but this structure is "
                        "periodic (pbc with a cell); set pbc=\"F F F\" to treat it as an isolated molecule")
    atoms = with_charge(atoms, charge)
    q, mult, n_elec = checked_electronic_state(atoms, formula)
    core = _core(atoms, core_electrons, formula)
    n_elec -= int(core.sum())
    name = check_aux_basis(aux_basis)
    missing = missing_elements(name, atoms.get_chemical_symbols())
    if missing:
        raise DataError(f"{formula}: element{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                        f"{'have' if len(missing) > 1 else 'has'} no functions in auxiliary basis {name!r}")
    try:
        c = np.asarray(coefficients, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise DataError(f"{formula}: the density coefficients are not numeric") from None
    auxmol = _aux_mole(atoms, name, q, mult)
    if c.size != auxmol.nao:
        raise DataError(f"{formula}: {c.size} density coefficients, but this structure has {auxmol.nao} functions in "
                        f"auxiliary basis {name!r} (coefficients of another structure or basis?)")
    if not np.all(np.isfinite(c)):
        raise DataError(f"{formula}: the density coefficients are not all finite")
    fitted = float(aux_moments(auxmol)[0] @ c)
    if abs(fitted - n_elec) > ELECTRON_WARNING:
        warnings.warn(f"{formula}: the fitted density holds {fitted:.3f} electrons but the structure (charge {q:+d}) has "
                      f"{n_elec}{' outside the ECP cores' if core.any() else ''}: derived observables will be off "
                      "(a poor prediction, another charge, or other ECPs?)", DensityWarning, stacklevel=2)
    return FittedDensity(atoms, auxmol, c, name, q, mult, n_elec, fitted, core)


def density_values(auxmol, coefficients: np.ndarray, coords_bohr: np.ndarray, block: int = 20000) -> np.ndarray:
    """rho(r) = sum_P c_P phi_P(r) (e/Bohr^3) at ``coords_bohr`` (n, 3), in blocks of points."""
    from pyscf.dft import numint

    coords_bohr = np.asarray(coords_bohr, dtype=float).reshape(-1, 3)
    out = np.empty(len(coords_bohr))
    for p0 in range(0, len(coords_bohr), block):
        out[p0 : p0 + block] = numint.eval_ao(auxmol, coords_bohr[p0 : p0 + block]) @ coefficients
    return out
