"""PsilearnCalculator: ASE properties backed by fitted models, in ASE units."""

import numpy as np
import pytest
from ase.calculators.calculator import PropertyNotImplementedError
from ase.units import Bohr, Hartree

from psilearn.calculator import PsilearnCalculator
from psilearn.data import load_dataset
from psilearn.models import SAGPR
from psilearn.targets import Target

from ._synth import label_frames, molecules, small_model, small_soap


def _fit(frames, key, kind, per="structure", tensor="", units=""):
    target = Target(key, per=per, tensor=tensor, units=units)
    return SAGPR(target, small_soap(), small_model()).fit(load_dataset(label_frames(frames, key, kind, per), target))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    frames = molecules(41, 22)
    train = frames[:18]
    dip = _fit(train, "dipole", "vector", tensor="i", units="e*Bohr")
    path = tmp_path_factory.mktemp("calc") / "dipole.model"
    dip.save(path)
    return {
        "dipole": dip,
        "dipole_path": path,
        "polarizability": _fit(train, "polarizability", "sym2", tensor="ij=ji", units="a.u."),
        "charges": _fit(train, "charges", "scalar", per="atom", units="e"),
        "energy": _fit(train, "e", "scalar", units="Hartree"),
        "no_units": _fit(train, "mu", "vector", tensor="i"),
        "test": frames[18:],
    }


def test_dipole_in_e_angstrom_from_an_e_bohr_model(models):
    """Before, get_dipole_moment() returned the model's e*Bohr where ASE means e*Angstrom (x 1.89)."""
    atoms = models["test"][0].copy()
    atoms.calc = PsilearnCalculator({"dipole": models["dipole"], "polarizability": models["polarizability"]})
    mu = atoms.get_dipole_moment()
    assert mu.shape == (3,)
    pred = models["dipole"].predict([atoms])
    np.testing.assert_allclose(mu, pred.values[0] * Bohr, rtol=1e-12, atol=1e-14)
    std = atoms.calc.results["dipole_std"]
    assert std.shape == (3,) and np.all(std > 0)
    np.testing.assert_allclose(std, pred.std[0] * Bohr, rtol=1e-12)
    assert atoms.calc.conversions["dipole"] == {"from": "e*Bohr", "to": "e*Angstrom", "factor": Bohr}


def test_polarizability_in_cubic_angstrom(models):
    atoms = models["test"][1].copy()
    atoms.calc = PsilearnCalculator({"dipole": models["dipole"], "polarizability": models["polarizability"]})
    alpha = atoms.calc.get_property("polarizability", atoms)
    assert alpha.shape == (3, 3)
    np.testing.assert_allclose(alpha, alpha.T, rtol=0, atol=1e-13 * np.abs(alpha).max())
    np.testing.assert_allclose(alpha.ravel(), models["polarizability"].predict([atoms]).values[0] * Bohr**3, rtol=1e-12)
    assert atoms.calc.results["polarizability_std"].shape == (3, 3)


def test_model_given_as_path(models):
    atoms = models["test"][2].copy()
    expected = models["dipole"].predict([atoms]).values[0] * Bohr
    atoms.calc = PsilearnCalculator({"dipole": str(models["dipole_path"])})
    np.testing.assert_allclose(atoms.get_dipole_moment(), expected, rtol=1e-12, atol=1e-14)
    atoms.calc = PsilearnCalculator({"dipole": models["dipole_path"]})  # a Path object works too
    np.testing.assert_allclose(atoms.get_dipole_moment(), expected, rtol=1e-12, atol=1e-14)


def test_recomputes_after_move(models):
    atoms = models["test"][0].copy()
    atoms.calc = PsilearnCalculator({"dipole": models["dipole"]})
    mu0 = atoms.get_dipole_moment().copy()
    atoms.positions[0] += [0.3, -0.2, 0.1]
    mu1 = atoms.get_dipole_moment()
    assert not np.allclose(mu0, mu1)
    np.testing.assert_allclose(mu1, models["dipole"].predict([atoms]).values[0] * Bohr, rtol=1e-12, atol=1e-14)


def test_per_atom_model(models):
    atoms = models["test"][3].copy()
    atoms.calc = PsilearnCalculator({"charges": models["charges"]})
    q = atoms.get_charges()
    assert q.shape == (len(atoms),)
    np.testing.assert_allclose(q, models["charges"].predict([atoms]).values[:, 0], rtol=1e-12)
    assert atoms.calc.results["charges_std"].shape == (len(atoms),)


def test_energy_in_ev_and_a_scalar_gives_float(models):
    atoms = models["test"][0].copy()
    atoms.calc = PsilearnCalculator({"energy": models["energy"]})
    e = atoms.get_potential_energy()
    assert isinstance(atoms.calc.results["energy"], float) and isinstance(atoms.calc.results["energy_std"], float)
    assert e == pytest.approx(models["energy"].predict([atoms]).values[0, 0] * Hartree, rel=1e-12)


def test_unknown_units_are_refused_unless_stated(models):
    """Before, a model without recorded units was used as if its numbers were ASE units."""
    with pytest.raises(ValueError, match=r"records no units.*units=\{'dipole': 'e\*Bohr'\}.*convert=\{'dipole': False\}"):
        PsilearnCalculator({"dipole": models["no_units"]})
    atoms = models["test"][0].copy()
    pred = models["no_units"].predict([atoms]).values[0]
    atoms.calc = PsilearnCalculator({"dipole": models["no_units"]}, units={"dipole": "Debye"})
    np.testing.assert_allclose(atoms.get_dipole_moment(), pred * 0.20819433442462576, rtol=1e-12)
    atoms.calc = PsilearnCalculator({"dipole": models["no_units"]}, convert={"dipole": False})
    np.testing.assert_allclose(atoms.get_dipole_moment(), pred, rtol=1e-12)
    with pytest.raises(ValueError, match="contradict the units the model records"):
        PsilearnCalculator({"dipole": models["dipole"]}, units={"dipole": "e*A"})
    PsilearnCalculator({"dipole": models["dipole"]}, units={"dipole": "au"})  # the same units: fine
    with pytest.raises(ValueError, match="does not know"):
        PsilearnCalculator({"dipole": models["no_units"]}, units={"dipole": "furlong"})
    with pytest.raises(ValueError, match=r"not an ASE property.*convert=\{'mu': False\}"):
        PsilearnCalculator({"mu": models["dipole"]})
    atoms.calc = PsilearnCalculator({"mu": models["dipole"]}, convert=False)
    np.testing.assert_allclose(atoms.calc.get_property("mu", atoms), models["dipole"].predict([atoms]).values[0], rtol=1e-12)


def test_zero_lattice_frame_is_the_molecule(models):
    atoms = models["test"][0].copy()
    atoms.calc = PsilearnCalculator({"dipole": models["dipole"]})
    mu = atoms.get_dipole_moment().copy()
    boxed = models["test"][0].copy()
    boxed.cell, boxed.pbc = np.zeros((3, 3)), True
    boxed.calc = PsilearnCalculator({"dipole": models["dipole"]})
    np.testing.assert_allclose(boxed.get_dipole_moment(), mu, rtol=1e-12, atol=1e-14)


def test_unbound_property(models):
    atoms = models["test"][0].copy()
    atoms.calc = PsilearnCalculator({"dipole": models["dipole"]})
    with pytest.raises(PropertyNotImplementedError, match="polarizability"):
        atoms.calc.get_property("polarizability", atoms)
