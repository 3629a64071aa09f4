import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from psilearn.label.base import LabelError
from psilearn.label.pyscf_labeler import PySCFLabeler

from .conftest import ammonia, water


def _rotated(atoms, rot):
    b = atoms.copy()
    b.positions = (atoms.positions - atoms.positions.mean(axis=0)) @ rot.T + [0.3, -1.2, 2.0]
    return b


@pytest.mark.parametrize("xc,tol", [("hf", 1e-4), ("pbe0", 0.05)])
def test_shielding_rotates_as_rank2_tensor(xc, tol):
    lab = PySCFLabeler(xc, "6-31g", grid_level=3, observables=("shielding",))
    a = ammonia()
    rot = Rotation.from_euler("zyx", [0.7, -1.1, 2.3]).as_matrix()
    s0 = lab.label(a).arrays["shielding"].reshape(-1, 3, 3)
    s1 = lab.label(_rotated(a, rot)).arrays["shielding"].reshape(-1, 3, 3)
    expected = np.einsum("ab,kbc,dc->kad", rot, s0, rot)
    assert np.abs(s1 - expected).max() < tol
    assert np.abs(s0 - s1).max() > 1.0  # the tensors really changed: the test can fail
    iso = np.trace(s0, axis1=1, axis2=2) / 3
    assert 200 < iso[0] < 300 and np.all((iso[1:] > 25) & (iso[1:] < 40))  # N ~ 260, H ~ 31 ppm


def test_shielding_open_shell_is_a_clear_error():
    a = water()
    a.info.update(charge=1, multiplicity=2)
    with pytest.raises(LabelError, match="closed-shell"):
        PySCFLabeler("hf", "sto-3g", observables=("shielding",)).label(a)


def test_atomic_polar_tensors_sum_rule():
    # for a neutral molecule the APTs sum to zero (translation invariance of the dipole)
    out = PySCFLabeler("hf", "sto-3g", observables=("dipole", "apt")).label(water())
    apt = out.arrays["apt"].reshape(-1, 3, 3)
    assert np.abs(apt.sum(axis=0)).max() < 1e-3
    assert np.abs(apt).max() > 0.1
