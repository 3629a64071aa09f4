"""HF/def2-SVP water (no grid; tight convergence) labelled with --observables hamiltonian, once per session.

The molecule is distorted and rotated off the axes so that no irreps component vanishes by symmetry."""

import os

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

CONV_TOL = 1e-12


def water(rotation_seed: int = 7, shift=(0.3, -0.2, 0.1)) -> Atoms:
    pos = np.array([[0.0, 0.0, 0.117], [0.05, 0.77, -0.46], [-0.02, -0.74, -0.48]])
    rot = Rotation.random(random_state=rotation_seed).as_matrix()
    return Atoms("OH2", positions=pos @ rot.T + np.asarray(shift))


@pytest.fixture(scope="session")
def labeler():
    from psilearn.label import make_labeler

    return make_labeler("hf/def2-svp", "hamiltonian", conv_tol=CONV_TOL)


@pytest.fixture(scope="session")
def water_hf(labeler):
    return labeler.label(water())


@pytest.fixture(scope="session")
def target(water_hf):
    from psilearn.targets import HamiltonianTarget

    return HamiltonianTarget.from_labels(water_hf)


@pytest.fixture(scope="session")
def water_observed():
    """The same water labelled with the observables that a Hamiltonian gives again (orbitals, dipole, charges)."""
    from psilearn.label import make_labeler

    return make_labeler("hf/def2-svp", "hamiltonian,orbitals,dipole,charges", conv_tol=CONV_TOL).label(water())
