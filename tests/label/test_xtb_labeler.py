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


def test_finite_field_polarizability_is_stored_symmetric():
    """The central differences of the dipole are not symmetric (SCF and truncation noise); the labeler stores
    their symmetric part, exactly symmetric, and the half-difference it removed. A distorted geometry with no
    symmetry makes that asymmetry non-zero; the Δ-learning and dataset checks (relative 1e-6) accept the result
    without --symmetrize."""
    from psilearn.data.dataset import check_symmetry
    from psilearn.label.base import finite_field_polarizability
    from psilearn.targets import Target

    a = ammonia()
    a.positions += np.random.default_rng(1).normal(scale=0.05, size=a.positions.shape)
    lab = XTBLabeler(observables=("polarizability",))
    out = lab.label(a)
    alpha = out.info["alpha"].reshape(3, 3)
    assert np.array_equal(alpha, alpha.T)
    raw = np.zeros((3, 3))
    for b in range(3):
        f = np.zeros(3)
        f[b] = lab.field_step
        raw[:, b] = (np.asarray(lab._run(a, 0, 1, f).get("dipole")) - np.asarray(lab._run(a, 0, 1, -f).get("dipole"))) / (2 * lab.field_step)
    np.testing.assert_allclose(alpha, (raw + raw.T) / 2, rtol=0, atol=1e-12)
    assert out.info["alpha_fd_asymmetry"] == pytest.approx(np.abs(raw - raw.T).max() / 2, abs=1e-12)
    assert 0 < out.info["alpha_fd_asymmetry"] < 1e-3 * np.abs(alpha).max()
    check_symmetry([out], Target("alpha", tensor="ij=ji"), alpha.reshape(1, 9), symmetrize=False)
    sym, asym = finite_field_polarizability(lambda f: np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ f, 0.1)
    np.testing.assert_allclose(sym, [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert asym == pytest.approx(1.0)


def test_polarizability_changes_the_method_hash():
    """Stores labelled before alpha was symmetrised are not reused."""
    assert XTBLabeler(observables=("polarizability",)).spec()["alpha"] == "symmetrised"
    assert "alpha" not in XTBLabeler(observables=("dipole",)).spec()
    assert PySCFLabeler("hf", "sto-3g", observables=("polarizability",), polarizability_mode="finite_field").spec()["alpha"] == "symmetrised"
    assert "alpha" not in PySCFLabeler("hf", "sto-3g", observables=("polarizability",)).spec()  # CPHF: unchanged
