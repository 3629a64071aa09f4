import numpy as np
import pytest

from psilearn.label import pyscf_labeler as pl
from psilearn.label.base import LabelError
from psilearn.label.campaign import label_one
from psilearn.label.multipoles import dipole_moment
from psilearn.label.pyscf_labeler import PySCFLabeler

from .conftest import ammonia, h2, hf_molecule, water

ALL = ("energy", "forces", "dipole", "quadrupole", "polarizability", "charges", "orbitals")


@pytest.mark.parametrize(
    "xc,basis,atoms_fn,extra",
    [("hf", "sto-3g", water, {}), ("pbe0", "sto-3g", ammonia, {"grid_level": 2}),
     ("hf", "6-31g", hf_molecule, {"density_fit": True})],
)
def test_cphf_matches_finite_field(xc, basis, atoms_fn, extra):
    lab = PySCFLabeler(xc, basis, observables=("polarizability",), polarizability_mode="both", **extra)
    out = lab.label(atoms_fn())
    alpha = out.info["alpha"].reshape(3, 3)
    ff = out.info["alpha_ff"].reshape(3, 3)
    assert out.info["alpha_method"] == "cphf"
    assert np.all(np.diag(alpha) > 0.01)  # minimal bases give tiny out-of-plane alpha
    rel = np.abs(alpha - ff).max() / np.abs(alpha).max()
    assert rel < 1e-3, rel
    assert out.info["alpha_ff_rel_diff"] == pytest.approx(rel)


def test_open_shell_cphf_matches_finite_field():
    oh = h2()
    oh.set_chemical_symbols(["O", "H"])
    oh.positions[1, 2] = 0.97
    oh.info["multiplicity"] = 2
    out = PySCFLabeler("hf", "sto-3g", observables=("energy", "polarizability"),
                       polarizability_mode="both").label(oh)
    assert out.info["multiplicity"] == 2
    assert out.info["alpha_ff_rel_diff"] < 1e-3


def test_dipole_independent_of_origin_and_translation():
    lab = PySCFLabeler("hf", "sto-3g", observables=("dipole", "quadrupole"))
    a = water()
    mu = lab.label(a).info["dipole_moment"]
    assert abs(mu[2]) > 0.3  # water has a real dipole along z
    b = a.copy()
    b.translate([3.0, -2.0, 7.5])
    mu_t = lab.label(b).info["dipole_moment"]
    np.testing.assert_allclose(mu_t, mu, atol=1e-6)
    mol = lab.build_mol(a)
    mf, _ = lab.run_scf(mol)
    dm = mf.make_rdm1()
    for origin in ([0, 0, 0], [10.0, -4.0, 2.0]):
        np.testing.assert_allclose(dipole_moment(mol, dm, np.array(origin, float)), mu, atol=1e-8)
    # the check can fail: for a cation the dipole does depend on the origin
    ion = a.copy()
    ion.info.update(charge=1, multiplicity=2)
    mol_i = lab.build_mol(ion)
    mf_i, _ = lab.run_scf(mol_i)
    d0 = dipole_moment(mol_i, mf_i.make_rdm1(), np.zeros(3))
    d1 = dipole_moment(mol_i, mf_i.make_rdm1(), np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(d0 - d1, [1.0, 0.0, 0.0], atol=1e-8)  # shift = charge * origin shift


def test_forces_match_energy_finite_difference():
    lab = PySCFLabeler("hf", "sto-3g", observables=("energy", "forces"))
    a = water()
    f = lab.label(a).arrays["atomic_forces"]
    h = 1e-3  # Angstrom
    ep, em = (lab.label(_moved(a, 1, 1, s * h)).info["total_energy"] for s in (1, -1))
    fd = -(ep - em) / (2 * h / 0.52917721092)  # Ha/Bohr
    assert f[1, 1] == pytest.approx(fd, abs=1e-5)
    assert np.abs(f.sum(axis=0)).max() < 1e-6  # no net force


def _moved(a, i, c, d):
    b = a.copy()
    b.positions[i, c] += d
    return b


def test_all_observables_shapes_and_sum_rules():
    out = PySCFLabeler("pbe", "sto-3g", grid_level=2, observables=ALL).label(water())
    info, arr = out.info, out.arrays
    assert arr["atomic_forces"].shape == (3, 3)
    assert info["quadrupole_moment"].shape == (9,)
    assert abs(np.trace(info["quadrupole_moment"].reshape(3, 3))) < 1e-10
    assert abs(arr["mulliken_charges"].sum()) < 1e-8
    assert abs(arr["hirshfeld_charges"].sum()) < 2e-3
    assert arr["hirshfeld_charges"][0] < -0.1 and np.all(arr["hirshfeld_charges"][1:] > 0.05)
    eps = info["orbital_energies"]
    assert len(eps) == 7 and info["homo"] == pytest.approx(eps[4]) and info["lumo"] == pytest.approx(eps[5])
    assert info["gap"] > 0
    grid = np.linspace(info["dos_emin"], info["dos_emax"], info["dos_npts"])
    from scipy.stats import norm

    sig = info["dos_sigma"]
    expected = 2 * (norm.cdf((grid[-1] - eps) / sig) - norm.cdf((grid[0] - eps) / sig)).sum()
    assert expected > 4  # several levels fall in the window
    assert np.trapezoid(info["dos"], grid) == pytest.approx(expected, rel=1e-3)
    assert info["scf_strategy"] == "default"


def test_scf_ladder_rescues_a_failing_default(monkeypatch):
    ladder = (("default", {"max_cycle": 1}),) + pl.SCF_LADDER[1:]
    monkeypatch.setattr(pl, "SCF_LADDER", ladder)
    out = PySCFLabeler("hf", "sto-3g", observables=("energy",), conv_tol=1e-10).label(water())
    assert out.info["scf_strategy"] == "level_shift"
    ref = PySCFLabeler("hf", "sto-3g", observables=("energy",)).label(water())
    assert out.info["total_energy"] == pytest.approx(ref.info["total_energy"], abs=1e-8)


def test_scf_failure_is_recorded_with_every_attempt():
    lab = PySCFLabeler("hf", "sto-3g", observables=("energy",), max_cycle=1, conv_tol=1e-14)
    with pytest.raises(LabelError) as err:
        lab.label(water())
    assert err.value.stage == "scf"
    for rung in ("default", "level_shift", "damping", "newton"):
        assert rung in str(err.value)
    res = label_one(lab, water())
    assert res["status"] == "failed" and res["stage"] == "scf"


@pytest.mark.parametrize(
    "atoms_fn,stage,words",
    [
        (lambda: _with(h2(0.1)), "validate", "overlapping atoms"),
        (lambda: _with(_oh(), multiplicity=1), "validate", "odd electron count"),
        (lambda: _with(h2(), charge=0.5), "validate", "integer"),
    ],
)
def test_invalid_inputs_clear_errors(atoms_fn, stage, words):
    with pytest.raises(LabelError) as err:
        PySCFLabeler("hf", "sto-3g").label(atoms_fn())
    assert err.value.stage == stage and words in str(err.value)


def test_element_missing_from_basis():
    from ase import Atoms

    with pytest.raises(LabelError) as err:
        PySCFLabeler("hf", "6-31g").label(Atoms("Au", positions=[[0, 0, 0]]))
    assert err.value.stage == "basis" and "Au" in str(err.value) and "6-31g" in str(err.value)


def _oh():
    a = h2(0.97)
    a.set_chemical_symbols(["O", "H"])
    return a


def _with(a, **info):
    a.info.update(info)
    return a
