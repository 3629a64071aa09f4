"""One water molecule labelled once per session (PBE/def2-SVP, density in def2-universal-jkfit).

The molecule is distorted and rotated off the axes so that every dipole component and every m
component of the fit is non-zero."""

import os

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from dataclasses import dataclass

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

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
