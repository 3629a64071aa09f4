"""PsilearnCalculator: ASE properties backed by fitted models."""

import numpy as np
import pytest
from ase.calculators.calculator import PropertyNotImplementedError

from psilearn.calculator import PsilearnCalculator
from psilearn.data import load_dataset
from psilearn.models import SAGPR
from psilearn.targets import Target

from ._synth import label_frames, molecules, small_model, small_soap


def _fit(frames, key, kind, per="structure", tensor=""):
    target = Target(key, per=per, tensor=tensor)
    return SAGPR(target, small_soap(), small_model()).fit(load_dataset(label_frames(frames, key, kind, per), target))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    frames = molecules(41, 22)
    train = frames[:18]
    dip = _fit(train, "dipole", "vector", tensor="i")
    path = tmp_path_factory.mktemp("calc") / "dipole.model"
    dip.save(path)
    return {
        "dipole": dip,
        "dipole_path": path,
        "polarizability": _fit(train, "polarizability", "sym2", tensor="ij=ji"),
        "charges": _fit(train, "charges", "scalar", per="atom"),
        "energy_like": _fit(train, "e", "scalar"),
        "test": frames[18:],
    }


def test_dipole_matches_model(models):
    atoms = models["test"][0].copy()
    atoms.calc = PsilearnCalculator({"dipole": models["dipole"], "polarizability": models["polarizability"]})
    mu = atoms.get_dipole_moment()
    assert mu.shape == (3,)
    np.testing.assert_allclose(mu, models["dipole"].predict([atoms]).values[0], rtol=1e-12, atol=1e-14)
    std = atoms.calc.results["dipole_std"]
    assert std.shape == (3,) and np.all(std > 0)


def test_polarizability(models):
    atoms = models["test"][1].copy()
    atoms.calc = PsilearnCalculator({"dipole": models["dipole"], "polarizability": models["polarizability"]})
    alpha = atoms.calc.get_property("polarizability", atoms)
    assert alpha.shape == (3, 3)
    np.testing.assert_allclose(alpha, alpha.T, rtol=0, atol=1e-13 * np.abs(alpha).max())
    np.testing.assert_allclose(alpha.ravel(), models["polarizability"].predict([atoms]).values[0], rtol=1e-12)
    assert atoms.calc.results["polarizability_std"].shape == (3, 3)


def test_model_given_as_path(models):
    atoms = models["test"][2].copy()
    atoms.calc = PsilearnCalculator({"dipole": str(models["dipole_path"])})
    np.testing.assert_allclose(atoms.get_dipole_moment(), models["dipole"].predict([atoms]).values[0], rtol=1e-12, atol=1e-14)
    atoms.calc = PsilearnCalculator({"dipole": models["dipole_path"]})  # a Path object works too
    np.testing.assert_allclose(atoms.get_dipole_moment(), models["dipole"].predict([atoms]).values[0], rtol=1e-12, atol=1e-14)


def test_recomputes_after_move(models):
    atoms = models["test"][0].copy()
    atoms.calc = PsilearnCalculator({"dipole": models["dipole"]})
    mu0 = atoms.get_dipole_moment().copy()
    atoms.positions[0] += [0.3, -0.2, 0.1]
    mu1 = atoms.get_dipole_moment()
    assert not np.allclose(mu0, mu1)
    np.testing.assert_allclose(mu1, models["dipole"].predict([atoms]).values[0], rtol=1e-12, atol=1e-14)


def test_per_atom_model(models):
    atoms = models["test"][3].copy()
    atoms.calc = PsilearnCalculator({"charges": models["charges"]})
    q = atoms.get_charges()
    assert q.shape == (len(atoms),)
    np.testing.assert_allclose(q, models["charges"].predict([atoms]).values[:, 0], rtol=1e-12)
    assert atoms.calc.results["charges_std"].shape == (len(atoms),)


def test_scalar_structure_model_gives_float(models):
    atoms = models["test"][0].copy()
    atoms.calc = PsilearnCalculator({"e": models["energy_like"]})
    val = atoms.calc.get_property("e", atoms)
    assert isinstance(val, float)
    assert isinstance(atoms.calc.results["e_std"], float)


def test_unbound_property(models):
    atoms = models["test"][0].copy()
    atoms.calc = PsilearnCalculator({"dipole": models["dipole"]})
    with pytest.raises(PropertyNotImplementedError, match="polarizability"):
        atoms.calc.get_property("polarizability", atoms)
