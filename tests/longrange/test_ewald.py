"""Ewald summation of Gaussian charges against a brute-force lattice sum, and periodic QEq."""

import numpy as np
import pytest
from ase import Atoms
from scipy.special import erf

from psilearn.physics import QEqParams, QEqSystem, equilibrate
from psilearn.physics.coulomb import gaussian_coulomb_matrix
from psilearn.physics.ewald import ewald_coulomb_matrix
from psilearn.physics.params import COULOMB

CELL = np.array([[4.0, 0.3, 0.0], [0.5, 4.5, 0.2], [0.1, -0.4, 5.0]])  # triclinic


def _cell_config(seed=0, n=4, min_dist=1.3):
    """n random positions in CELL at least ``min_dist`` apart (minimum image), random widths."""
    from ase.geometry import get_distances

    rng = np.random.default_rng(seed)
    pos = []
    while len(pos) < n:
        p = rng.uniform(0, 1, 3) @ CELL
        if not pos or get_distances([p], pos, cell=CELL, pbc=True)[1].min() > min_dist:
            pos.append(p)
    sigma = rng.uniform(0.5, 0.8, n)
    return np.array(pos), sigma, rng


def _direct_energy(pos, cell, sigma, q, R):
    """Brute force: sum over whole image cells, each weighted by exp(-(|n|/R)^2) (a smooth
    spherical cut-off), of the Gaussian-charge interactions erf(r/(sqrt(2) gamma))/r."""
    rmax = 4.5 * R
    m = int(np.ceil(rmax / 3.5)) + 1
    g = np.arange(-m, m + 1)
    images = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3) @ cell
    images = images[np.linalg.norm(images, axis=1) <= rmax]
    w = np.exp(-((np.linalg.norm(images, axis=1) / R) ** 2))
    gamma = np.sqrt(sigma[:, None] ** 2 + sigma[None] ** 2)
    e = 0.0
    for i in range(len(pos)):
        e += 0.5 * q[i] ** 2 / (sigma[i] * np.sqrt(np.pi))
        for j in range(len(pos)):
            d = np.linalg.norm(pos[j] - pos[i] + images, axis=1)
            keep = d > 1e-12
            e += 0.5 * q[i] * q[j] * np.sum(w[keep] * erf(d[keep] / (np.sqrt(2) * gamma[i, j])) / d[keep])
    return COULOMB * e


def test_ewald_matches_direct_lattice_sum():
    """For a neutral cell, the spherically summed lattice energy converges to the (tin-foil)
    Ewald energy plus the vacuum surface term 2 pi |M|^2 / (3V) (de Leeuw, Perram, Smith 1980).
    The smoothly cut direct sums converge as a + b/R^2 + c/R^4, extrapolated to R -> infinity."""
    pos, sigma, rng = _cell_config()
    c = ewald_coulomb_matrix(pos, CELL, sigma)
    volume = abs(np.linalg.det(CELL))
    radii = np.array([20.0, 30.0, 40.0])
    for _ in range(2):
        q = rng.normal(size=len(pos))
        q -= q.mean()
        m = q @ pos
        expected = 0.5 * q @ c @ q + COULOMB * 2 * np.pi * (m @ m) / (3 * volume)
        direct = np.array([_direct_energy(pos, CELL, sigma, q, r) for r in radii])
        fit = np.linalg.solve(np.stack([np.ones(3), radii**-2, radii**-4], 1), direct)
        assert fit[0] == pytest.approx(expected, rel=3e-6)


def test_ewald_independent_of_splitting():
    pos, sigma, _ = _cell_config(1, 5)
    ref = ewald_coulomb_matrix(pos, CELL, sigma)
    for alpha in (0.45, 0.7, 1.1):
        np.testing.assert_allclose(ewald_coulomb_matrix(pos, CELL, sigma, alpha=alpha), ref, atol=1e-8)
    assert np.allclose(ref, ref.T)


def test_ewald_translation_and_wrapping_invariant():
    pos, sigma, _ = _cell_config(2)
    ref = ewald_coulomb_matrix(pos, CELL, sigma)
    shifted = pos + np.array([0.37, -1.2, 2.9]) + np.array([[1, 0, -2], [0, 3, 0], [-1, -1, 1], [2, 0, 0]]) @ CELL
    np.testing.assert_allclose(ewald_coulomb_matrix(shifted, CELL, sigma), ref, atol=1e-9)


def test_large_box_approaches_isolated_molecule():
    """A neutral molecule in a growing cubic box: periodic QEq charges approach the isolated ones
    (the difference is the O(1/L^3) interaction with the images' dipoles)."""
    mol = Atoms("OH2", positions=[[0.0, 0.0, 0.117], [0.0, 0.757, -0.467], [0.0, -0.757, -0.467]])
    chi = np.array([3.0, -1.0, -1.0])
    q_iso = equilibrate(mol, chi).charges
    errs = []
    for length in (10.0, 20.0, 40.0):
        box = mol.copy()
        box.cell = np.eye(3) * length
        box.pbc = True
        errs.append(np.abs(equilibrate(box, chi).charges - q_iso).max())
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 2e-4


def test_periodic_charged_cell_exact_total_charge():
    pos, sigma, rng = _cell_config(3, 6)
    a = Atoms("CHNOHH", positions=pos, cell=CELL, pbc=True, info={"charge": 1})
    res = equilibrate(a, rng.normal(size=len(a)))
    assert np.abs(res.charges).max() < 5
    assert abs(res.charges.sum() - 1.0) <= 4 * np.finfo(float).eps * np.abs(res.charges).sum()


def test_neutral_charges_do_not_depend_on_background_constant():
    """Adding a constant to every matrix element (the background convention) leaves charges
    unchanged, also for a net charge."""
    pos, sigma, rng = _cell_config(4, 5)
    c = ewald_coulomb_matrix(pos, CELL, sigma)
    chi = rng.normal(size=5)
    for total in (0.0, 1.0, -2.0):
        q1 = QEqSystem.from_matrix(c).charges(chi, total)
        q2 = QEqSystem.from_matrix(c + 3.7).charges(chi, total)
        np.testing.assert_allclose(q1, q2, atol=1e-12)


def test_molecular_matrix_is_the_large_cell_limit():
    pos = np.array([[0.0, 0, 0], [1.1, 0, 0], [0, 1.3, 0.4]])
    sigma = QEqParams().sigma(np.array([8, 1, 1]))
    iso = gaussian_coulomb_matrix(pos, sigma)
    per = ewald_coulomb_matrix(pos, np.eye(3) * 60.0, sigma)
    # differences are the image interactions: a near-constant (absorbed by the constraint) + O(1/L^3)
    d = per - iso
    assert np.ptp(d) < 1e-3


def test_periodic_dipole_molecule_convention_is_wrap_invariant():
    """With periodic_dipole='molecules', wrapping atoms into the cell (which breaks molecules)
    does not change the cell dipole; with 'as_stored' it jumps by q * lattice vector."""
    from psilearn.physics.dipole import dipole_arm

    water = np.array([[0.0, 0.0, 0.117], [0.0, 0.757, -0.467], [0.0, -0.757, -0.467]])
    pos = np.vstack([water + [1.5, 1.5, 1.5], water @ np.diag([1, 1, -1]) + [3.0, 5.6, 0.2]])  # 2nd crosses y and z faces
    whole = Atoms("OH2OH2", positions=pos, cell=np.eye(3) * 6.0, pbc=True)
    wrapped = whole.copy()
    wrapped.wrap()
    assert np.abs(wrapped.positions - whole.positions).max() > 1.0
    q = equilibrate(whole, np.array([2.5, -1.0, -1.0, 2.5, -1.0, -1.0])).charges
    ref = q @ dipole_arm(whole, "com", "as_stored")
    np.testing.assert_allclose(q @ dipole_arm(wrapped, "com", "molecules"), ref, atol=1e-10)
    assert np.abs(q @ dipole_arm(wrapped, "com", "as_stored") - ref).max() > 0.1
