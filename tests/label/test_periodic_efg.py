"""Crystal EFGs (issue 16): the Ewald-split evaluator of psilearn.label.periodic_efg against
independent routes — the molecular EFG of a molecule in a large box, a Gamma-point supercell for a
k-point mesh with complex phases, site symmetry — and the labeler's crystal path and its refusals."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, make_supercell

from psilearn.label.base import LabelError
from psilearn.label.periodic import kmesh_for
from psilearn.label.pyscf_labeler import PySCFLabeler

from .conftest import ammonia


def _cell(atoms: Atoms, basis: str):
    from pyscf.pbc import gto

    cell = gto.Cell()
    cell.atom = list(zip(atoms.get_chemical_symbols(), atoms.positions))
    cell.a, cell.basis, cell.unit, cell.verbose, cell.exp_to_discard = np.array(atoms.cell), basis, "A", 0, 0.1
    cell.build()
    return cell


def _scf(cell, mesh):
    from pyscf.pbc import scf

    mf = scf.KRHF(cell, cell.make_kpts(mesh)).density_fit()  # HF: periodic DFT grids cost 10x more here
    mf.conv_tol = 1e-11
    mf.kernel()
    assert mf.converged
    return mf


def _lih(a: float = 4.0, rattle: float = 0.08) -> Atoms:
    atoms = bulk("LiH", "rocksalt", a=a)
    if rattle:
        atoms.rattle(rattle, seed=3)
    return atoms


def test_molecule_in_a_box_matches_the_molecular_efg_for_any_splitting():
    """NH3 in a 10 A box at Gamma: the crystal route equals the molecular one up to the periodic
    images' own field gradient (HF/6-31G, measured 2.9e-3 of max|V| at 10 A, 1.2e-3 at 14 A; PBE
    4.6e-4 at 10 A) and does not depend on w."""
    from pyscf import scf

    from psilearn.label.magnetic import efg_tensors
    from psilearn.label.periodic_efg import periodic_efg_tensors

    nh3 = ammonia()
    mol = PySCFLabeler("hf", "6-31g").build_mol(nh3)
    ref = efg_tensors(mol, scf.RHF(mol).run(conv_tol=1e-11).make_rdm1())
    nh3.cell, nh3.pbc = 10.0 * np.eye(3), True
    mf = _scf(_cell(nh3, "6-31g"), [1, 1, 1])
    dm = np.asarray(mf.make_rdm1())
    v1 = periodic_efg_tensors(mf.cell, mf.kpts, dm, omega=0.7)
    v2 = periodic_efg_tensors(mf.cell, mf.kpts, dm, omega=1.4)
    assert np.abs(v1 - v2).max() < 1e-6 * np.abs(v1).max()
    assert np.abs(v1 - ref).max() < 5e-3 * np.abs(ref).max()
    np.testing.assert_allclose(v1, v1.transpose(0, 2, 1), atol=1e-12)
    np.testing.assert_allclose(np.trace(v1, axis1=1, axis2=2), 0, atol=1e-12)


def test_a_kpoint_mesh_equals_the_gamma_point_supercell():
    """A 3x1x1 mesh (k = 0, +-1/3: complex phases, so a wrong sign convention of the lattice density
    matrix would show) against the 3x1x1 supercell at Gamma, on a rattled LiH cell."""
    from psilearn.label.periodic_efg import periodic_efg_tensors

    prim = _lih()
    mf1 = _scf(_cell(prim, "sto-3g"), [3, 1, 1])
    mf3 = _scf(_cell(make_supercell(prim, np.diag([3, 1, 1])), "sto-3g"), [1, 1, 1])
    v1 = periodic_efg_tensors(mf1.cell, mf1.kpts, np.asarray(mf1.make_rdm1()))
    v3 = periodic_efg_tensors(mf3.cell, mf3.kpts, np.asarray(mf3.make_rdm1()))
    assert np.abs(v1).max() > 1e-3  # the rattle makes a real field gradient
    for image in range(3):  # every copy in the supercell sees the same tensor
        np.testing.assert_allclose(v3[2 * image:2 * image + 2], v1, atol=2e-4 * np.abs(v1).max())  # 5e-5 measured


def test_site_symmetry_cubic_zero_and_tetragonal_axial():
    """Rocksalt sites are cubic: V = 0. Stretched along z they are tetragonal: eta = 0 with V_zz on z."""
    from psilearn.label.periodic_efg import periodic_efg_tensors

    cubic = _lih(rattle=0.0)
    mf = _scf(_cell(cubic, "sto-3g"), [1, 1, 1])  # Gamma keeps the point symmetry
    v = periodic_efg_tensors(mf.cell, mf.kpts, np.asarray(mf.make_rdm1()))
    assert np.abs(v).max() < 1e-7
    tetra = cubic.copy()
    tetra.set_cell(np.array(cubic.cell) @ np.diag([1.0, 1.0, 1.05]), scale_atoms=True)
    mf = _scf(_cell(tetra, "sto-3g"), [1, 1, 1])
    v = periodic_efg_tensors(mf.cell, mf.kpts, np.asarray(mf.make_rdm1()))
    for t in v:
        assert abs(t[2, 2]) > 1e-3
        np.testing.assert_allclose(t, np.diag([-t[2, 2] / 2, -t[2, 2] / 2, t[2, 2]]), atol=1e-6 * abs(t[2, 2]))


def test_labeler_labels_a_crystal_and_rotates_its_tensors():
    from scipy.spatial.transform import Rotation

    lab = PySCFLabeler("hf", "sto-3g", observables=("energy", "efg"), kmesh=(2, 1, 1), conv_tol=1e-11)
    crystal = _lih()
    out = lab.label(crystal)
    assert out.arrays["efg"].shape == (2, 9) and list(out.info["kmesh"]) == [2, 1, 1]
    assert list(out.arrays["efg_quadrupolar"]) == [1, 1]  # 7Li and 2H
    assert out.info["efg_isotopes"] == "Li:7Li;H:2H" and np.isfinite(out.info["total_energy"])
    rot = Rotation.from_euler("zyx", [0.4, -0.9, 1.3]).as_matrix()
    turned = crystal.copy()
    turned.set_cell(np.array(crystal.cell) @ rot.T, scale_atoms=True)
    out_r = lab.label(turned)
    assert abs(out_r.info["total_energy"] - out.info["total_energy"]) < 1e-7
    v, v_r = out.arrays["efg"].reshape(-1, 3, 3), out_r.arrays["efg"].reshape(-1, 3, 3)
    np.testing.assert_allclose(v_r, rot @ v @ rot.T, atol=1e-5 * np.abs(v).max())


def test_crystal_refusals_and_kmesh_rule():
    lab = PySCFLabeler("hf", "sto-3g", observables=("efg", "dipole"))
    with pytest.raises(LabelError, match="computes energy, efg for crystals, not dipole") as exc:
        lab.label(_lih())
    assert exc.value.stage == "validate"
    slab = _lih()
    slab.pbc = [True, True, False]
    with pytest.raises(LabelError, match="all three directions"):
        PySCFLabeler("hf", "sto-3g", observables=("efg",)).label(slab)
    charged = _lih()
    charged.info["charge"] = 1
    with pytest.raises(LabelError, match="neutral cell"):
        PySCFLabeler("hf", "sto-3g", observables=("efg",)).label(charged)
    with pytest.raises(ValueError, match="kmesh"):
        PySCFLabeler("hf", "sto-3g", kmesh=(2, 0, 1))
    assert kmesh_for(np.diag([3.0, 7.0, 7.5]), 7.0) == (3, 1, 1)
    base = PySCFLabeler("hf", "sto-3g", observables=("efg",))
    assert base.method_hash() != PySCFLabeler("hf", "sto-3g", observables=("efg",), kmesh=(2, 2, 2)).method_hash()
    assert "kmesh" not in base.spec() and "kpoint_length" not in base.spec()  # molecular hashes unchanged


def test_cli_labels_a_crystal_and_refuses_a_bad_kmesh(tmp_path, capsys):
    import ase.io

    from psilearn.cli.main import main as cli_main

    inp, out = tmp_path / "cell.xyz", tmp_path / "out.xyz"
    ase.io.write(inp, _lih())
    common = ["label", str(inp), "--db", str(tmp_path / "l.db"), "--workers", "0", "--no-progress"]
    assert cli_main(common + ["--method", "hf/sto-3g", "--observables", "efg", "--kmesh", "2,x,1"]) == 2
    assert "--kmesh takes three integers" in capsys.readouterr().err
    assert cli_main(common + ["--method", "gfn2", "--kmesh", "2,2,2"]) == 2
    assert "--kmesh applies to PySCF methods only" in capsys.readouterr().err
    assert cli_main(common + ["--method", "hf/sto-3g", "--observables", "efg", "--kmesh", "1,1,1", "-o", str(out)]) == 0
    frame = ase.io.read(out)
    assert frame.arrays["efg"].shape == (2, 9) and list(frame.info["kmesh"]) == [1, 1, 1] and all(frame.pbc)
