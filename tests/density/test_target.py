"""The density target: layout from PySCF's auxiliary basis, exact round trips, data loading and
one-line errors. No SCF here: labelled frames are synthetic."""

import json

import ase.io
import numpy as np
import pytest
from ase import Atoms
from pyscf import gto

from psilearn.data import DataError, density_target, load_dataset, load_density_dataset
from psilearn.targets import DensityTarget
from psilearn.targets.ao_basis import make_auxmol, pyscf_to_e3nn

from .conftest import AUX, water


def _labelled(atoms: Atoms, target: DensityTarget, seed: int = 0) -> Atoms:
    a = atoms.copy()
    a.info.update(density_coefficients=np.random.default_rng(seed).normal(size=target.size(a)),
                  density_aux_basis=target.aux_basis, density_metric=target.metric,
                  density_aux_shells=target.shells_text())
    return a


@pytest.fixture(scope="module")
def target():
    return DensityTarget.from_basis(AUX, ["H", "O", "C"])


def test_layout_is_pyscfs_make_auxmol(target):
    atoms = water()
    mol = gto.M(atom=[(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)],
                basis="def2-svp", verbose=0)
    aux = make_auxmol(mol, AUX)
    assert target.size(atoms) == aux.nao
    np.testing.assert_array_equal(target.offsets(atoms)[:-1], aux.aoslice_by_atom()[:, 2])
    ls = [aux.bas_angular(b) for b in range(aux.nbas) for _ in range(aux.bas_nctr(b))]
    assert [b.l for s in atoms.get_chemical_symbols() for b in target.blocks_of(s)] == ls
    assert target.irreps_of("H") == "2x0e+2x1o+2x2e"
    assert target.irreps_of("O") == "10x0e+8x1o+4x2e+2x3o+1x4e"
    o = target.blocks_of("O")
    assert [(b.n, b.l, b.name) for b in o[9:11]] == [(9, 0, "0e"), (0, 1, "1o")]
    assert target.block_index("O", 3).shape == (2, 7)


def test_flat_blocks_and_irreps_round_trips_are_exact(target):
    atoms = Atoms("CH3OH", positions=np.random.default_rng(1).normal(size=(6, 3)) * 2)
    c = np.random.default_rng(2).normal(size=(3, target.size(atoms)))  # leading batch axis
    parts = target.split(atoms, c)
    assert [p.shape[-1] for p in parts] == [target.atom_size(s) for s in atoms.get_chemical_symbols()]
    np.testing.assert_array_equal(target.join(parts), c)
    e = target.to_irreps(atoms, c)
    back = target.from_irreps(atoms, e)
    assert np.abs(back - c).max() < 1e-14
    np.testing.assert_allclose(np.linalg.norm(e, axis=-1), np.linalg.norm(c, axis=-1), rtol=1e-14)
    idx = target.index_by_l(atoms)
    np.testing.assert_array_equal(e[:, idx[0]], c[:, idx[0]])  # s and p: PySCF's x, y, z is e3nn's
    np.testing.assert_array_equal(pyscf_to_e3nn(1), np.eye(3))
    np.testing.assert_allclose(e[:, idx[2]], c[:, idx[2]] @ pyscf_to_e3nn(2).T, atol=1e-15)


def test_serialisation(target):
    d = json.loads(str(target))
    assert d["kind"] == "density" and d["shells"]["H"] == [0, 0, 1, 1, 2, 2]
    assert DensityTarget.from_dict(d) == target
    assert "def2-universal-jkfit" in target.describe()


def test_dataset_from_a_labelled_file(tmp_path, target):
    frames = [_labelled(water(seed), target, seed) for seed in range(3)]
    frames.append(_labelled(Atoms("CH4", positions=np.vstack([np.zeros(3), np.eye(3), -np.ones(3) / np.sqrt(3)]) * 1.1), target, 9))
    path = tmp_path / "d.xyz"
    ase.io.write(path, frames, format="extxyz")
    ds = load_density_dataset(str(path))
    assert ds.target.elements == ("C", "H", "O") and ds.target.shells == target.shells
    assert len(ds) == 4 and ds.values.size == ds.offsets[-1]
    for i, f in enumerate(frames):
        np.testing.assert_array_equal(ds.coefficients(i), f.info["density_coefficients"])
    sub = ds.subset([3, 0])
    np.testing.assert_array_equal(sub.coefficients(0), frames[3].info["density_coefficients"])
    assert load_dataset(str(path), target).fingerprint() == ds.fingerprint()
    assert density_target(frames) == target


def _error(fn) -> str:
    with pytest.raises(DataError) as exc:
        fn()
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_bad_inputs_give_one_clear_line(tmp_path, target):
    assert "unknown auxiliary basis 'nosuch-jkfit'" in _error(lambda: DensityTarget.from_basis("nosuch-jkfit", ["H"]))
    # cc-pvdz-jkfit has no lithium: a basis too small for the structure
    assert "Li has no functions in auxiliary basis 'cc-pvdz-jkfit'" in _error(
        lambda: DensityTarget.from_basis("cc-pvdz-jkfit", ["Li", "H"]))
    mol = gto.M(atom="Li 0 0 0; H 0 0 1.6", basis="def2-svp", verbose=0)
    assert "Li has no functions" in _error(lambda: make_auxmol(mol, "cc-pvdz-jkfit"))
    w = _labelled(water(), target)
    other = DensityTarget.from_basis("cc-pvdz-jkfit", ["H", "O"])
    text = _error(lambda: load_dataset([w], other))
    assert "fitted with auxiliary basis 'def2-universal-jkfit'" in text and "expects 'cc-pvdz-jkfit'" in text
    overlap = DensityTarget(AUX, target.shells, metric="overlap")
    assert "metric 'coulomb'" in _error(lambda: load_dataset([w], overlap))
    no_o = DensityTarget(AUX, (("H", target.shells[1][1]),))
    assert "element O not in the density target" in _error(lambda: load_dataset([w], no_o))
    short = w.copy()
    short.info["density_coefficients"] = w.info["density_coefficients"][:-1]
    assert "112 density coefficients, expected 113" in _error(lambda: load_dataset([short], target))
    assert "no label 'density_coefficients'" in _error(lambda: load_dataset([water()], target))
    mixed = _labelled(water(), other)
    assert "different auxiliary bases" in _error(lambda: density_target([w, mixed]))
    with pytest.raises(DataError, match="unknown density-fitting metric"):
        DensityTarget(AUX, target.shells, metric="l2")
