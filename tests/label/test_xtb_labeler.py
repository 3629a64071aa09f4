import numpy as np
import pytest

from psilearn.label.pyscf_labeler import PySCFLabeler
from psilearn.label.xtb_labeler import XTBLabeler

from .conftest import ammonia, hf_molecule, water


@pytest.mark.parametrize("atoms_fn", [water, hf_molecule, ammonia])
def test_gfn2_and_dft_dipoles_agree_in_sign_and_size(atoms_fn):
    a = atoms_fn()
    mu_x = XTBLabeler(observables=("dipole",)).label(a).info["dipole_moment"]
    mu_d = PySCFLabeler("pbe0", "6-31g", grid_level=2, observables=("dipole",)).label(a).info["dipole_moment"]
    cos = mu_x @ mu_d / np.linalg.norm(mu_x) / np.linalg.norm(mu_d)
    assert cos > 0.99
    assert 0.5 < np.linalg.norm(mu_x) / np.linalg.norm(mu_d) < 2.0


def test_gfn2_observables():
    lab = XTBLabeler(observables=("energy", "forces", "dipole", "charges", "orbitals", "polarizability"))
    out = lab.label(water())
    assert out.info["total_energy"] == pytest.approx(-5.07, abs=0.01)
    f = out.arrays["atomic_forces"]
    assert f.shape == (3, 3) and np.abs(f.sum(axis=0)).max() < 1e-8
    q = out.arrays["mulliken_charges"]
    assert abs(q.sum()) < 1e-6 and q[0] < -0.3
    assert out.info["homo"] < out.info["lumo"]
    alpha = out.info["alpha"].reshape(3, 3)
    np.testing.assert_allclose(alpha, alpha.T, atol=1e-4)
    assert alpha[1, 1] > 1.0  # in-plane response is non-zero


def test_gfn2_forces_match_energy_difference():
    lab = XTBLabeler(observables=("energy", "forces"), accuracy=1e-4)
    a = water()
    f = lab.label(a).arrays["atomic_forces"]
    h = 1e-3
    e = []
    for s in (1, -1):
        b = a.copy()
        b.positions[0, 2] += s * h
        e.append(lab.label(b).info["total_energy"])
    assert f[0, 2] == pytest.approx(-(e[0] - e[1]) / (2 * h / 0.52917721092), abs=1e-4)


def test_gfn2_rejects_unsupported_observable():
    with pytest.raises(ValueError, match="shielding"):
        XTBLabeler(observables=("shielding",))
