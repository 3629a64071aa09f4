"""The QEq solver: exact total charge, linearity in chi, dipole symmetry, energies."""

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

from psilearn.data import DataError
from psilearn.data.electronic_state import charge_and_multiplicity, structure_states
from psilearn.physics import QEqParams, QEqSystem, equilibrate
from psilearn.physics.coulomb import gaussian_coulomb_matrix

from ._mols import ammonia_borane, random_molecule


@pytest.mark.parametrize("charge", [0, 1, -1, 2])
def test_total_charge_is_exact(charge):
    rng = np.random.default_rng(charge + 10)
    for _ in range(5):
        a = random_molecule(rng)
        a.info["charge"] = charge
        a.info.pop("multiplicity", None)
        chi = rng.normal(scale=3.0, size=len(a))
        res = equilibrate(a, chi)
        assert res.charges.sum() == pytest.approx(charge, abs=4 * np.finfo(float).eps * max(1, abs(charge)))
        assert abs(res.charges.sum() - charge) <= 1e-15 * len(a) + 4e-16


def test_stationarity_and_minimum():
    """A q + chi is the same on every atom (equal chemical potential), and any neutral change of
    the charges raises the energy."""
    rng = np.random.default_rng(3)
    a = random_molecule(rng)
    a.info["charge"] = 1
    a.info["multiplicity"] = 2 if a.numbers.sum() % 2 == 0 else 1
    chi = rng.normal(size=len(a))
    system = QEqSystem.from_atoms(a, QEqParams())
    q = system.charges(chi, 1)
    mu = system.A @ q + chi
    assert np.ptp(mu) < 1e-10 * np.abs(mu).max()
    assert mu[0] == pytest.approx(system.chemical_potential(chi, 1), rel=1e-10)
    e0 = system.energy(q, chi)
    for _ in range(10):
        dq = rng.normal(size=len(a))
        dq -= dq.mean()
        assert system.energy(q + 1e-3 * dq, chi) > e0


def test_linear_in_chi_and_shift_invariant():
    rng = np.random.default_rng(4)
    a = random_molecule(rng)
    system = QEqSystem.from_atoms(a, QEqParams())
    c1, c2 = rng.normal(size=(2, len(a)))
    q1, q2, q12 = system.charges(c1), system.charges(c2), system.charges(2 * c1 - 3 * c2)
    np.testing.assert_allclose(q12, 2 * q1 - 3 * q2, atol=1e-12)
    np.testing.assert_allclose(system.charges(c1 + 7.5), q1, atol=1e-12)  # a common shift of chi does nothing


def test_coulomb_matrix_limits():
    """Far apart, the Gaussian interaction is the point-charge 1/r; the diagonal is the Gaussian
    self-energy; the matrix is positive definite."""
    from psilearn.physics.params import COULOMB

    pos = np.array([[0.0, 0, 0], [0, 0, 30.0], [0, 1.0, 0]])
    sig = np.array([0.5, 0.7, 0.3])
    c = gaussian_coulomb_matrix(pos, sig)
    assert c[0, 1] == pytest.approx(COULOMB / 30.0, rel=1e-12)
    np.testing.assert_allclose(np.diag(c), COULOMB / (sig * np.sqrt(np.pi)))
    assert np.all(np.linalg.eigvalsh(c) > 0)
    assert c[0, 2] < COULOMB / 1.0  # screened at short range


def test_dipole_equivariant_and_origin_independent():
    rng = np.random.default_rng(5)
    a = random_molecule(rng)
    chi = rng.normal(size=len(a))
    ref = equilibrate(a, chi)
    for seed in range(4):
        rot = Rotation.random(random_state=seed).as_matrix()
        if seed % 2:
            rot = -rot  # improper: rotation times inversion
        b = a.copy()
        b.positions = a.positions @ rot.T + rng.normal(size=3) * 5
        res = equilibrate(b, chi)
        np.testing.assert_allclose(res.charges, ref.charges, atol=1e-12)
        np.testing.assert_allclose(res.dipole, rot @ ref.dipole, atol=1e-10)
    # neutral: any origin gives the same dipole
    for origin in ("com", "nuclear_charge", "zero"):
        np.testing.assert_allclose(equilibrate(a, chi, origin=origin).dipole, ref.dipole, atol=1e-12)


def test_ion_dipole_depends_on_origin_as_documented():
    rng = np.random.default_rng(6)
    a = random_molecule(rng)
    a.positions += 3.0
    a.info["charge"] = -1
    chi = rng.normal(size=len(a))
    com = equilibrate(a, chi, origin="com")
    zero = equilibrate(a, chi, origin="zero")
    np.testing.assert_allclose(zero.dipole - com.dipole, -1 * com.origin, atol=1e-10)  # mu_0 - mu_o = Q o


def test_charge_and_multiplicity_validation():
    ch3 = Atoms("CH3", positions=[[0, 0, 0], [1.08, 0, 0], [-0.54, 0.94, 0], [-0.54, -0.94, 0]])
    assert charge_and_multiplicity(ch3) == (0, 2)  # odd electron count: doublet by default
    ch3.info["charge"] = 1
    assert charge_and_multiplicity(ch3) == (1, 1)
    ch3.info.update(charge=0, multiplicity=1)
    with pytest.raises(DataError, match="cannot have multiplicity 1"):
        charge_and_multiplicity(ch3)
    ch3.info.update(charge=10, multiplicity=1)
    with pytest.raises(DataError, match="impossible"):
        charge_and_multiplicity(ch3)
    h2 = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], info={"charge": 0, "multiplicity": 5})
    with pytest.raises(DataError, match="unpaired"):
        charge_and_multiplicity(h2)
    h2.info["multiplicity"] = 0
    with pytest.raises(DataError, match=">= 1"):
        charge_and_multiplicity(h2)
    h2.info.update(charge=0.5, multiplicity=1)
    with pytest.raises(DataError, match="integer"):
        charge_and_multiplicity(h2)
    ch3.info.update(charge=-1, multiplicity=3)
    assert structure_states([ammonia_borane(), ch3]).tolist() == [[0.0, 0.0], [-1.0, 2.0]]


def test_equilibrate_uses_info_charge_and_refuses_impossible_state():
    a = ammonia_borane()
    a.info["charge"] = 1
    a.info["multiplicity"] = 2
    res = equilibrate(a, np.zeros(len(a)))
    assert res.charges.sum() == pytest.approx(1.0, abs=1e-15)
    a.info["multiplicity"] = 1
    with pytest.raises(DataError):
        equilibrate(a, np.zeros(len(a)))


def test_charge_transfer_decays_with_distance():
    """Donor and acceptor with different electronegativities: the transferred charge falls off
    smoothly with separation (QEq's long-range physics), far beyond any local cutoff."""
    transferred = []
    for d in (3.0, 6.0, 12.0, 24.0):
        a = Atoms("NaCl", positions=[[0, 0, 0], [0, 0, d]])
        res = equilibrate(a, np.array([-2.0, 2.0]))
        transferred.append(res.charges[0])
    assert np.all(np.diff(transferred) < 0) and transferred[-1] > 0
