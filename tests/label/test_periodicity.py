"""One periodicity rule (psilearn.data.periodicity) for every reader, labeler and command: an all-zero
lattice is a molecule whatever pbc says; a periodic frame with a partly zero or coplanar cell is
refused with a clear message; the PySCF labeler refuses crystal observables it has no periodic route for.

Before the rule was shared, only read_structures and the features knew it: GFN2-xTB labeling of
an extxyz frame with Lattice="0 0 0 0 0 0 0 0 0" pbc="T T T" failed with a misleading SCF error
("(sygvd) failed to solve eigenvalue problem"), `md` from such a frame crashed in tblite, and
PySCF silently labeled a periodic cell as an isolated cluster."""

import ase.io
import numpy as np
import pytest
from ase import Atoms

from psilearn.data import DataError, read_structures
from psilearn.data.periodicity import apply_periodicity, is_molecule
from psilearn.label.base import LabelError
from psilearn.label.campaign import run_campaign
from psilearn.label.store import LabelStore
from psilearn.label.xtb_labeler import XTBLabeler

from .conftest import water

ZERO_LATTICE = (
    "3\n"
    'Lattice="0 0 0 0 0 0 0 0 0" Properties=species:S:1:pos:R:3 pbc="T T T"\n'
    "O 0.0 0.0 0.117\nH 0.0 0.757 -0.467\nH 0.0 -0.757 -0.467\n"
)


def _zero_lattice_frame(tmp_path) -> Atoms:
    path = tmp_path / "zero.xyz"
    path.write_text(ZERO_LATTICE)
    (a,) = ase.io.read(path, ":")  # ASE's own reader: pbc stays True on a zero cell
    assert a.pbc.all() and not a.cell.any()
    return a


def test_zero_lattice_labels_with_gfn2_as_the_molecule(tmp_path):
    """Failed before: LabelError 'xTB SCC failed: (sygvd) failed to solve eigenvalue problem'."""
    lab = XTBLabeler(observables=("energy", "dipole"))
    boxed = lab.label(_zero_lattice_frame(tmp_path))
    free = lab.label(water())
    np.testing.assert_allclose(boxed.info["dipole_moment"], free.info["dipole_moment"], atol=1e-10)
    assert boxed.info["total_energy"] == pytest.approx(free.info["total_energy"], abs=1e-10)
    assert not boxed.pbc.any()
    # through a campaign (no read_structures on the way) as well, and stored as the molecule
    summary = run_campaign([_zero_lattice_frame(tmp_path)], lab, tmp_path / "l.db", workers=0, progress=False)
    assert summary.done == 1 and not summary.failures
    row = LabelStore(tmp_path / "l.db").to_atoms(next(LabelStore(tmp_path / "l.db").rows(label_status="ok")))
    np.testing.assert_allclose(row.info["dipole_moment"], free.info["dipole_moment"], atol=1e-10)


def test_md_from_a_zero_lattice_frame(tmp_path):
    """Failed before: tblite CalculationFailed on the zero cell."""
    from psilearn.label.sampling import md_sample

    frames = md_sample(_zero_lattice_frame(tmp_path), steps=2, stride=1)
    assert len(frames) == 2 and not frames[0].pbc.any()


@pytest.mark.parametrize("cell,words", [
    ([[5, 0, 0], [0, 5, 0], [0, 0, 0]], "lattice vector c is zero"),
    ([[5, 0, 0], [0, 5, 0], [3, 4, 0]], "coplanar"),
])
def test_degenerate_periodic_cell_is_refused_everywhere(tmp_path, cell, words):
    """Failed before: GFN2 gave a misleading SCF error; the features silently treated the frame as a molecule."""
    a = water()
    a.cell, a.pbc = cell, True
    with pytest.raises(LabelError, match=words) as exc:
        XTBLabeler(observables=("dipole",)).label(a)
    assert exc.value.stage == "validate" and "pbc=\"F F F\"" in str(exc.value)
    with pytest.raises(DataError, match=words):
        apply_periodicity(a.copy(), "x")
    path = tmp_path / "bad.xyz"
    ase.io.write(path, a, format="extxyz")
    with pytest.raises(DataError, match=f"bad.xyz, frame 0: .*{words}"):
        read_structures(str(path))
    from psilearn.features import LambdaSoap, SoapConfig

    with pytest.raises(DataError, match=words):
        LambdaSoap(SoapConfig(cutoff=3.0, max_radial=2, max_angular=1), species=[1, 8]).compute([a], [(0, 1)])


def test_pyscf_refuses_periodic_cells_and_labels_zero_lattices(tmp_path):
    """Failed before: a periodic cell was labeled as an isolated cluster without a word. Crystals
    get energy and efg only (tests/label/test_periodic_efg.py)."""
    from psilearn.label.pyscf_labeler import PySCFLabeler

    lab = PySCFLabeler("hf", "sto-3g", observables=("dipole",))
    crystal = water()
    crystal.cell, crystal.pbc = 6.0 * np.eye(3), True
    with pytest.raises(LabelError, match="computes energy, efg for crystals, not dipole") as exc:
        lab.label(crystal)
    assert exc.value.stage == "validate"
    np.testing.assert_allclose(lab.label(_zero_lattice_frame(tmp_path)).info["dipole_moment"],
                               lab.label(water()).info["dipole_moment"], atol=1e-8)


def test_the_rule():
    a = water()
    assert is_molecule(a)
    a.cell, a.pbc = np.zeros((3, 3)), True
    assert is_molecule(a) and not apply_periodicity(a).pbc.any()
    b = water()
    b.cell, b.pbc = 6.0 * np.eye(3), [True, True, False]
    assert not is_molecule(apply_periodicity(b)) and list(b.pbc) == [True, True, False]
    c = water()
    c.cell = 6.0 * np.eye(3)  # a cell but no periodic axis: a molecule
    assert is_molecule(apply_periodicity(c))
