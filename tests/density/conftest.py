"""One water molecule labelled once per session (PBE/def2-SVP, density in def2-universal-jkfit), and
24 small molecules (water, methane, HCN, randomly distorted) labelled with HF/STO-3G in
def2-universal-jkfit (Coulomb metric) for the density-model tests.

The molecule is distorted and rotated off the axes so that every dipole component and every m
component of the fit is non-zero."""

import os

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from dataclasses import dataclass

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from scipy.spatial.transform import Rotation

from psilearn.data import load_density_dataset

AUX = "def2-universal-jkfit"


def water(rotation_seed: int = 7, shift=(0.3, -0.2, 0.1)) -> Atoms:
    """A distorted water molecule, rotated (seeded) and shifted off the origin."""
    pos = np.array([[0.0, 0.0, 0.117], [0.05, 0.77, -0.46], [-0.02, -0.74, -0.48]])
    rot = Rotation.random(random_state=rotation_seed).as_matrix()
    return Atoms("OH2", positions=pos @ rot.T + np.asarray(shift))


@dataclass
class WaterRun:
    labelled: Atoms
    mol: object
    mf: object
    auxmol: object


@pytest.fixture(scope="session")
def water_pbe() -> WaterRun:
    """The labeler's own output, and an SCF of the same structure for independent checks."""
    from psilearn.label import make_labeler
    from psilearn.targets.ao_basis import make_auxmol

    lab = make_labeler("pbe/def2-svp", "density,dipole")
    atoms = water()
    labelled = lab.label(atoms)
    mol = lab.build_mol(atoms)
    mf, _ = lab.run_scf(mol)
    return WaterRun(labelled, mol, mf, make_auxmol(mol, AUX))


@pytest.fixture(scope="session")
def labelled(tmp_path_factory):
    from psilearn.label import make_labeler

    rng = np.random.default_rng(3)
    lab = make_labeler("hf/sto-3g", "density", grid_level=2)
    frames = []
    for k in range(24):
        a = molecule(["H2O", "CH4", "HCN"][k % 3])
        a.positions += rng.normal(0, 0.08, a.positions.shape)
        frames.append(lab.label(a))
    path = tmp_path_factory.mktemp("density_model") / "train.xyz"
    ase.io.write(path, frames)
    return path


@pytest.fixture(scope="session")
def data(labelled):
    return load_density_dataset(str(labelled))
