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


#: a small hamiltonian model (seconds to fit on a few sto-3g waters)
TINY = {"nn": {"channels": 4, "layers": 1, "radial_hidden": 16}, "hamiltonian": {"edge_channels": 4},
        "nn_train": {"batch_size": 4, "threads": 1, "val_fraction": 0.2}}


def distorted_waters(n: int, seed: int = 0) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    base = np.array([[0.0, 0.0, 0.117], [0.0, 0.76, -0.47], [0.0, -0.76, -0.47]])
    out = []
    for k in range(n):
        pos = (base + rng.normal(scale=0.06, size=(3, 3))) @ Rotation.random(random_state=seed * 100 + k).as_matrix().T
        out.append(Atoms("OH2", positions=pos))
    return out


@pytest.fixture(scope="session")
def sto3g_waters():
    from psilearn.label import make_labeler

    lab = make_labeler("hf/sto-3g", "hamiltonian", conv_tol=1e-10)
    return [lab.label(a) for a in distorted_waters(16)]


