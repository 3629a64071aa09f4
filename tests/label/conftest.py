"""Shared fixtures: tiny molecules (positions in Angstrom)."""

import os

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
from ase import Atoms


def water() -> Atoms:
    return Atoms("OH2", positions=[[0.0, 0.0, 0.117], [0.0, 0.757, -0.467], [0.0, -0.757, -0.467]])


def hf_molecule() -> Atoms:
    return Atoms("FH", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 0.917]])


def ammonia() -> Atoms:
    return Atoms("NH3", positions=[[0.0, 0.0, 0.1165], [0.0, 0.9397, -0.2718],
                                   [0.8138, -0.4699, -0.2718], [-0.8138, -0.4699, -0.2718]])


def h2(d: float = 0.74) -> Atoms:
    return Atoms("H2", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, d]])


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
