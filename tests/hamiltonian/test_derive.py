"""Observables derived from an AO Hamiltonian: with the exact labelled F they are the SCF's (orbital
energies, HOMO/LUMO/gap, dipole, Mulliken charges), the SCF from F needs far fewer cycles than PySCF's
default guess, a perturbed F is worse, orbital energies are rotation invariant, bad input is one line."""

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

from psilearn.errors import DataError
from psilearn.observe.hamiltonian import derive, mol_of, overlap_matrix, scf_guess_cycles

from .conftest import water

BASIS = "def2-svp"
N_AO = 24


def _fock(atoms) -> np.ndarray:
    return atoms.info["hamiltonian"].reshape(N_AO, N_AO)


def _perturbed(atoms, scale: float = 1e-2) -> np.ndarray:
    p = np.random.default_rng(0).normal(size=(N_AO, N_AO))
    return _fock(atoms) + scale * 0.5 * (p + p.T)


def test_overlap_is_the_labelled_one(water_hf):
    assert np.abs(overlap_matrix(water_hf, BASIS).ravel() - water_hf.info["overlap"]).max() < 1e-14
    assert mol_of(water_hf, BASIS).nao == N_AO


def test_exact_f_reproduces_the_labels(water_observed):
    """Measured: orbital energies 7e-15 Ha, HOMO/LUMO/gap 2e-15 Ha, dipole 1.7e-9 e*Bohr, Mulliken 1.5e-9 e."""
    info = water_observed.info
    d = derive(water_observed, info["hamiltonian"], BASIS)
    assert np.abs(d.orbital_energies - info["orbital_energies"]).max() < 1e-8
    assert np.array_equal(d.mo_occ, info["mo_occ"]) and d.n_electrons == 10 and d.charge == 0
    for key in ("homo", "lumo", "gap"):
        assert abs(getattr(d, key) - info[key]) < 1e-8, key
    assert np.abs(d.dipole - info["dipole_moment"]).max() < 1e-6
    assert np.abs(d.mulliken_charges - water_observed.arrays["mulliken_charges"]).max() < 1e-6
    assert abs(d.mulliken_charges.sum()) < 1e-10
    s = overlap_matrix(water_observed, BASIS)
    assert abs(np.trace(d.density_matrix @ s) - 10) < 1e-10
    assert np.abs(d.mo_coeff.T @ s @ d.mo_coeff - np.eye(N_AO)).max() < 1e-10


def test_dipole_matches_an_independent_pyscf_scf(water_hf, labeler):
    mf, _ = labeler.run_scf(labeler.build_mol(water()))
    d = derive(water_hf, _fock(water_hf), BASIS)
    assert np.abs(d.dipole - mf.dip_moment(unit="AU", verbose=0)).max() < 1e-6
    assert np.abs(d.density_matrix - mf.make_rdm1()).max() < 1e-6


def test_charged_molecule_sums_to_its_charge():
    """H3O+ (10 electrons): the charges sum to +1 and the dipole is the labeler's (centre-of-mass origin)."""
    from psilearn.label import make_labeler

    ion = Atoms("OH3", positions=[[0, 0, 0.1], [0.95, 0, -0.2], [-0.45, 0.82, -0.2], [-0.45, -0.82, -0.25]])
    ion.info["charge"] = 1
    a = make_labeler("hf/sto-3g", "hamiltonian,dipole").label(ion)
    d = derive(a, a.info["hamiltonian"], "sto-3g")
    assert d.charge == 1 and abs(d.mulliken_charges.sum() - 1) < 1e-10
    assert np.abs(d.dipole - a.info["dipole_moment"]).max() < 1e-6


def test_scf_from_the_exact_f_needs_far_fewer_cycles(water_hf):
    """Measured: 1 cycle from the labelled F, 8 from PySCF's minao guess (HF/def2-SVP water)."""
    exact = scf_guess_cycles(water_hf, _fock(water_hf), f"hf/{BASIS}")
    assert exact.converged_guess and exact.converged_default
    assert abs(exact.energy_guess - exact.energy_default) < 1e-8
    assert exact.cycles_guess <= 2 < exact.cycles_default - 3, exact
    worse = scf_guess_cycles(water_hf, _perturbed(water_hf), f"hf/{BASIS}")
    assert worse.cycles_guess > exact.cycles_guess, (worse, exact)


def test_perturbed_f_is_worse(water_observed):
    info = water_observed.info
    exact = derive(water_observed, info["hamiltonian"], BASIS)
    noisy = derive(water_observed, _perturbed(water_observed), BASIS)
    for got, ref in ((lambda d: d.orbital_energies, info["orbital_energies"]), (lambda d: d.dipole, info["dipole_moment"])):
        assert np.abs(got(noisy) - ref).max() > 100 * max(np.abs(got(exact) - ref).max(), 1e-12)


def test_orbital_energies_are_rotation_invariant(water_hf, labeler):
    rot = Rotation.random(random_state=11).as_matrix()
    moved = water()
    moved.positions = moved.positions @ rot.T
    relabelled = labeler.label(moved)
    ref = derive(water_hf, _fock(water_hf), BASIS)
    new = derive(relabelled, _fock(relabelled), BASIS)
    assert np.abs(new.orbital_energies - ref.orbital_energies).max() < 1e-8
    assert abs(new.gap - ref.gap) < 1e-8
    assert np.abs(new.dipole - rot @ ref.dipole).max() < 1e-6


def _one_line_error(call, match: str) -> None:
    with pytest.raises(DataError, match=match) as err:
        call()
    assert "\n" not in str(err.value), str(err.value)


def test_bad_inputs_are_one_line(water_hf):
    f = _fock(water_hf)
    _one_line_error(lambda: derive(water_hf, f[:20, :20], BASIS), "the Hamiltonian is 20x20, but this structure has 24 atomic orbitals")
    _one_line_error(lambda: derive(water_hf, f, "sto-3g"), "24x24, but this structure has 7 atomic orbitals in basis 'sto-3g'")
    _one_line_error(lambda: derive(water_hf, f, "def2-nonsense"), "unknown basis 'def2-nonsense'")
    _one_line_error(lambda: derive(water_hf, f, BASIS, charge=1), "H2O: 9 electrons, multiplicity 2: .* closed shell")
    _one_line_error(lambda: scf_guess_cycles(water_hf, f, "hf/sto-3g"), "24x24, but this structure has 7 atomic orbitals")
    _one_line_error(lambda: scf_guess_cycles(water_hf, f, "gfn2"), "needs a PySCF method")
    nan = f.copy()
    nan[0, 0] = np.nan
    _one_line_error(lambda: derive(water_hf, nan, BASIS), "non-finite")
    cell = water_hf.copy()
    cell.cell, cell.pbc = np.eye(3) * 10, True
    _one_line_error(lambda: derive(cell, f, BASIS), "molecules only")
