"""The Löwdin-projected DOS of the ``orbitals`` observable (psilearn.label.projection), tblite and PySCF.

Sum rule (sum over atoms of pdos = dos), weights >= 0 summing to 1 per orbital, an independent Löwdin route
(PySCF's own lo.orth_ao; for tblite: scipy's sqrtm, with the AO -> atom map checked against tblite's Mulliken
charges), invariance under rotation and reflection, and permutation with the atoms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from ase import Atoms
from scipy.spatial.transform import Rotation

from psilearn.label import make_labeler
from psilearn.label.base import LabelError
from psilearn.label.orbitals import DOSGrid
from psilearn.label.projection import lowdin_atom_weights

from .conftest import ammonia, water

METHODS = ("gfn2", "gfn1", "hf/sto-3g", "pbe/sto-3g")


def hydroxyl() -> Atoms:
    a = Atoms("OH", positions=[[0.0, 0.0, 0.0], [0.0, 0.1, 0.97]])
    a.info["multiplicity"] = 2
    return a


def _weights(a: Atoms) -> list[np.ndarray]:
    return [a.arrays[k] for k in ("orbital_atom_weights", "orbital_atom_weights_alpha", "orbital_atom_weights_beta") if k in a.arrays]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("make", [water, ammonia, hydroxyl])
def test_sum_rule_and_weights(method, make):
    a = make_labeler(method, "orbitals").label(make())
    pdos, dos = a.arrays["pdos"], a.info["dos"]
    assert pdos.shape == (len(a), a.info["dos_npts"]) and a.info["pdos_npts"] == a.info["dos_npts"]
    assert a.info["pdos_sigma"] == a.info["dos_sigma"] and a.info["pdos_emin"] == a.info["dos_emin"]
    assert np.abs(pdos.sum(axis=0) - dos).max() < 1e-10 * dos.max()
    weights = _weights(a)
    unrestricted = "orbital_energies_alpha" in a.info
    assert len(weights) == (2 if unrestricted else 1)  # tblite's orbitals are restricted, also for OH
    for w, spin in zip(weights, ("_alpha", "_beta") if unrestricted else ("",)):
        assert w.shape == (len(a), len(a.info["orbital_energies" + spin]))
        assert w.min() >= 0.0
        np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-12)


@pytest.mark.parametrize("make", [water, hydroxyl])
def test_pyscf_weights_equal_pyscf_lowdin_orbitals(make):
    """PySCF's own Löwdin-orthogonalised AOs L = S^-1/2 (lo.orth_ao, L^T S L = 1): the MO coefficients on them are L^T S C,
    and an atom's weight the sum of their squares over the atom's AOs (mol.aoslice_by_atom)."""
    from pyscf import lo

    labeler = make_labeler("hf/sto-3g", "orbitals")
    atoms = make()
    a = labeler.label(atoms)
    mol = labeler.build_mol(atoms)
    mf, _ = labeler.run_scf(mol)
    s = mol.intor("int1e_ovlp")
    orth = lo.orth_ao(mol, "lowdin", pre_orth_ao=None)  # plain symmetric orthogonalisation of the AOs
    mo = np.asarray(mf.mo_coeff)
    for c, w in zip(mo if mo.ndim == 3 else [mo], _weights(a)):
        x2 = (orth.T @ s @ c) ** 2
        ref = np.array([x2[p0:p1].sum(axis=0) for _, _, p0, p1 in mol.aoslice_by_atom()])
        assert np.abs(w - ref).max() < 1e-10


def test_tblite_weights_independent_route():
    """tblite: the AO -> atom map reproduces tblite's Mulliken charges, and Löwdin weights from scipy's sqrtm of the
    overlap equal the labeler's."""
    from ase.units import Bohr
    from tblite.interface import Calculator

    atoms = ammonia()
    a = make_labeler("gfn2", "orbitals").label(atoms)
    calc = Calculator("GFN2-xTB", atoms.numbers, atoms.positions / Bohr)
    calc.set("verbosity", 0)
    calc.set("save-integrals", 1)
    calc.set("accuracy", 0.01)  # the labeler's SCC accuracy
    res = calc.singlepoint()
    c, s, occ = res.get("orbital-coefficients"), res.get("overlap-matrix"), res.get("orbital-occupations")
    ao_atom = np.asarray(calc.get("shell-map"))[np.asarray(calc.get("orbital-map"))]
    mulliken = np.zeros(len(atoms))
    np.add.at(mulliken, ao_atom, np.diag((c * np.reshape(occ, (-1, c.shape[1])).sum(0)) @ c.T @ s))
    np.testing.assert_allclose(np.array([5.0, 1.0, 1.0, 1.0]) - mulliken, res.get("charges"), atol=1e-8)
    x2 = (np.real(scipy.linalg.sqrtm(s)) @ c) ** 2
    ref = np.zeros((len(atoms), c.shape[1]))
    np.add.at(ref, ao_atom, x2)
    assert np.abs(a.arrays["orbital_atom_weights"] - ref).max() < 1e-10


@pytest.mark.parametrize("method", ["gfn2", "hf/sto-3g"])
def test_rotation_reflection_and_permutation(method):
    labeler = make_labeler(method, "orbitals")
    base = ammonia()
    ref = labeler.label(base).arrays["pdos"]
    scale = ref.max()
    moved = base.copy()
    moved.positions = (moved.positions @ Rotation.random(random_state=3).as_matrix().T) * np.array([1.0, -1.0, 1.0]) + 0.7
    np.testing.assert_allclose(labeler.label(moved).arrays["pdos"], ref, atol=1e-6 * scale)
    perm = np.array([2, 0, 3, 1])
    np.testing.assert_allclose(labeler.label(base[perm]).arrays["pdos"], ref[perm], atol=1e-6 * scale)


def test_projection_with_hamiltonian_labels_uses_the_stored_fock():
    a = make_labeler("hf/sto-3g", ("orbitals", "hamiltonian")).label(water())
    assert np.abs(a.arrays["pdos"].sum(axis=0) - a.info["dos"]).max() < 1e-10 * a.info["dos"].max()
    n = int(np.sqrt(len(a.info["overlap"])))
    f, s = a.info["hamiltonian"].reshape(n, n), a.info["overlap"].reshape(n, n)
    _, c = scipy.linalg.eigh(f, s)
    np.testing.assert_allclose(a.arrays["orbital_atom_weights"], lowdin_atom_weights(c, s, [0, 0, 0, 0, 0, 1, 2], 3), atol=1e-12)


def test_grid_and_refusals():
    a = make_labeler("gfn2", "orbitals").label(water())
    grid = DOSGrid()
    assert (a.info["pdos_emin"], a.info["pdos_emax"], a.info["pdos_npts"], a.info["pdos_sigma"]) == (grid.emin, grid.emax, grid.npts, grid.sigma)
    with pytest.raises(LabelError, match="not orthonormal in the AO overlap") as e:
        lowdin_atom_weights(2.0 * np.eye(2), np.eye(2), [0, 1], 2)
    assert "\n" not in str(e.value)
    with pytest.raises(LabelError, match="not positive definite"):
        lowdin_atom_weights(np.eye(2), np.array([[1.0, 2.0], [2.0, 1.0]]), [0, 1], 2)
