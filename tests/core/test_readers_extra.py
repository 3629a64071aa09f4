"""Readers: .magres NMR tensors, and labels that ASE's extxyz reader moves into a calculator."""

import ase.io
import numpy as np
from ase.build import molecule

from psilearn import Target, load_dataset, read_structures


def test_magres_shielding_tensors_read_per_atom(tmp_path):
    atoms = molecule("H2O")
    ms = np.random.default_rng(0).normal(size=(3, 3, 3))
    atoms.new_array("ms", ms)
    atoms.info["magres_units"] = {"ms": "ppm"}
    path = tmp_path / "water.magres"
    ase.io.write(path, atoms)
    ds = load_dataset(str(path), Target("ms", per="atom", tensor="ij"))
    assert ds.values.shape == (3, 9)
    np.testing.assert_allclose(ds.values.reshape(3, 3, 3), ms, atol=1e-12)
    assert not ds.frames[0].pbc.any()


def test_calculator_keys_come_back_as_labels(tmp_path):
    # extxyz keys named energy/dipole/forces/charges/stress are turned into a SinglePointCalculator by ASE
    path = tmp_path / "labels.xyz"
    path.write_text(
        "2\n"
        'Lattice="0 0 0 0 0 0 0 0 0" Properties=species:S:1:pos:R:3:forces:R:3:charges:R:1 '
        'energy=-1.5 dipole="0.1 0.2 0.3" stress="1 2 3 2 5 6 3 6 9" pbc="T T T"\n'
        "H 0 0 0 0.1 0.2 0.3 0.4\n"
        "H 0 0 0.74 -0.1 -0.2 -0.3 -0.4\n"
    )
    (a,) = read_structures(str(path))
    assert a.calc is None
    assert a.info["energy"] == -1.5
    np.testing.assert_allclose(a.info["dipole"], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(a.arrays["forces"][0], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(a.arrays["charges"], [0.4, -0.4])
    np.testing.assert_allclose(np.asarray(a.info["stress"]).reshape(3, 3), [[1, 2, 3], [2, 5, 6], [3, 6, 9]])
    assert not a.pbc.any()  # all-zero lattice: a molecule
    ds = load_dataset(str(path), Target("dipole", tensor="i"))
    np.testing.assert_allclose(ds.values, [[0.1, 0.2, 0.3]])
