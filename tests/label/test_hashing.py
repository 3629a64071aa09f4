import numpy as np

from psilearn.label.hashing import structure_hash
from psilearn.label.pyscf_labeler import PySCFLabeler
from psilearn.label.xtb_labeler import XTBLabeler

from .conftest import water


def test_structure_hash_ignores_labels_but_not_geometry_charge_or_spin():
    a = water()
    h = structure_hash(a)
    b = a.copy()
    b.info["total_energy"] = -76.0
    b.arrays["x"] = np.zeros(3)
    assert structure_hash(b) == h
    c = a.copy()
    c.positions[0, 0] += 1e-7  # below the 1e-6 A rounding
    assert structure_hash(c) == h
    d = a.copy()
    d.positions[0, 0] += 1e-4
    assert structure_hash(d) != h
    e = a.copy()
    e.info["charge"] = 1
    e.info["multiplicity"] = 2
    assert structure_hash(e) != h
    f = a.copy()
    f.info["multiplicity"] = 1  # the default for 10 electrons: same structure
    assert structure_hash(f) == h


def test_method_hash_stable_and_sensitive():
    a = PySCFLabeler("pbe0", "def2-svp", observables=("energy", "dipole"))
    b = PySCFLabeler("PBE0", "def2-SVP", observables=("dipole", "energy"), threads=2)
    assert a.method_hash() == b.method_hash()  # case, order and thread count do not matter
    assert PySCFLabeler("pbe0", "sto-3g", observables=("energy", "dipole")).method_hash() != a.method_hash()
    assert PySCFLabeler("pbe0", "def2-svp", observables=("energy", "dipole"),
                        density_fit=True).method_hash() != a.method_hash()
    assert PySCFLabeler("pbe0", "def2-svp", observables=("energy",)).method_hash() != a.method_hash()
    assert a.spec()["versions"]["pyscf"].startswith("2.")
    x = XTBLabeler(observables=("energy",))
    assert x.method_hash() == XTBLabeler(observables=("energy",)).method_hash()
    assert x.method_hash() != XTBLabeler(method="gfn1", observables=("energy",)).method_hash()


def test_ecp_bases_carry_the_ecp_in_the_hash():
    """Labels with a basis that goes with ECPs (def2 from Rb, LANL2DZ) were made all-electron before
    the labeler applied the ECPs: their hash differs, so an older store is never reused; bases
    without ECPs keep their hash."""
    assert PySCFLabeler("pbe", "def2-svp", observables=("dipole",)).spec()["ecp"] == "basis"
    assert PySCFLabeler("pbe", "lanl2dz", observables=("dipole",)).spec()["ecp"] == "basis"
    for basis in ("6-31g", "sto-3g", "cc-pvdz"):
        assert "ecp" not in PySCFLabeler("pbe", basis, observables=("dipole",)).spec()


def test_crystal_with_an_ecp_basis_is_refused():
    import pytest
    from ase import Atoms

    from psilearn.label.base import LabelError
    from psilearn.label.periodic import build_cell

    rbf = Atoms("RbF", positions=[(0, 0, 0), (2.8, 0, 0)], cell=[5.6, 5.6, 5.6], pbc=True)
    with pytest.raises(LabelError, match="valence electrons only of Rb|valence electrons of Rb"):
        build_cell(PySCFLabeler("pbe", "def2-svp", observables=("energy",)), rbf, 0, 0)
