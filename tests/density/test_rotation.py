"""PySCF's m order -> e3nn's, derived from refitted coefficients of a rotated molecule, and the
Wigner-D equivariance of the fit through that map (proper and improper rotations) to 1e-10.

HF has no integration grid, so the refit after a rotation differs only by SCF convergence
(conv_tol 1e-11) and the conditioning of the Coulomb metric (~2.5e7): the measured floor is
~4e-11 of the largest coefficient."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from psilearn.label.density import fit_coefficients
from psilearn.label.pyscf_labeler import PySCFLabeler
from psilearn.targets import DensityTarget
from psilearn.targets.ao_basis import e3nn_rotation, pyscf_rotation, pyscf_to_e3nn

from .conftest import AUX, water

N_PROPER = 8  # 1 + 8 frames give >= 2l+1 shell pairs per l for water (O has one g shell)


def _fit(positions):
    from psilearn.targets.ao_basis import make_auxmol

    lab = PySCFLabeler(xc="hf", basis="def2-svp", conv_tol=1e-11)
    atoms = water(shift=(0.0, 0.0, 0.0))
    atoms.positions = positions
    mol = lab.build_mol(atoms)
    mf, _ = lab.run_scf(mol)
    return fit_coefficients(mol, make_auxmol(mol, AUX), mf.make_rdm1())


@pytest.fixture(scope="module")
def rotated_fits():
    """Reference fit, and fits after 8 random proper rotations and one improper one (about the
    origin; positions offset from it)."""
    atoms = water(shift=(0.4, -0.3, 0.2))
    x = atoms.positions
    rots = [Rotation.random(random_state=100 + k).as_matrix() for k in range(N_PROPER)]
    rots.append(-Rotation.random(random_state=99).as_matrix())  # det -1
    return atoms, _fit(x), [(r, _fit(x @ r.T)) for r in rots]


def _shell_pairs(target, atoms, c, c_rot, l):
    idx = target.index_by_l(atoms)[l]
    return list(zip(c[idx], c_rot[idx]))


def test_map_derived_from_refitted_coefficients(rotated_fits):
    """Solve U c' = D_e3nn(R) U c over every shell and rotation (a linear null space), for each l:
    the result is orthogonal and equals the helper's map (measured from PySCF's functions)."""
    atoms, c0, fits = rotated_fits
    target = DensityTarget.from_basis(AUX, ["H", "O"])
    for l in range(1, 5):
        dim, rows = 2 * l + 1, []
        for rot, c1 in fits:
            de = e3nn_rotation(l, rot)
            for a, b in _shell_pairs(target, atoms, c0, c1, l):
                scale = max(np.abs(a).max(), 1e-300)
                rows.append((np.kron(np.eye(dim), b[None, :]) - np.kron(de, a[None, :])) / scale)
        _, s, vt = np.linalg.svd(np.vstack(rows))
        assert s[-1] < 1e-8 * s[0] and s[-2] > 1e-3 * s[0], f"l={l}: the null space is not one-dimensional"
        u = vt[-1].reshape(dim, dim) * np.sqrt(dim)
        u *= np.sign(np.sum(u * pyscf_to_e3nn(l)))
        np.testing.assert_allclose(u @ u.T, np.eye(dim), atol=1e-8)
        np.testing.assert_allclose(u, pyscf_to_e3nn(l), atol=1e-8, err_msg=f"l={l}")  # measured: <= 5e-10


@pytest.mark.parametrize("which", [0, N_PROPER], ids=["proper", "improper"])
def test_fitted_coefficients_rotate_by_wigner_d(rotated_fits, which):
    atoms, c0, fits = rotated_fits
    rot, c1 = fits[which]
    assert np.sign(np.linalg.det(rot)) == (1 if which == 0 else -1)
    target = DensityTarget.from_basis(AUX, ["H", "O"])
    e0, e1 = target.to_irreps(atoms, c0), target.to_irreps(atoms, c1)
    expected = e0.copy()
    for l, idx in target.index_by_l(atoms).items():
        expected[idx] = e0[idx] @ e3nn_rotation(l, rot).T
    assert np.abs(expected - e1).max() < 1e-10 * np.abs(c0).max()
    assert np.abs(target.from_irreps(atoms, expected) - c1).max() < 1e-10 * np.abs(c0).max()


@pytest.mark.parametrize("l", range(0, 6))
def test_helper_map_intertwines_the_representations(l):
    """D_pyscf(R) = U^T D_e3nn(R) U for rotations and rotoinversions the helper never saw."""
    rng = np.random.default_rng(5)
    pts = rng.normal(size=(50, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    u = pyscf_to_e3nn(l)
    np.testing.assert_allclose(u @ u.T, np.eye(2 * l + 1), atol=1e-12)
    for k, sign in ((1, 1.0), (2, -1.0)):
        rot = sign * Rotation.random(random_state=300 + k).as_matrix()
        np.testing.assert_allclose(pyscf_rotation(l, rot, pts), u.T @ e3nn_rotation(l, rot) @ u, atol=1e-12)
