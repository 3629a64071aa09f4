"""Reader details behind the corpus: frame numbers in messages are the file's, database queries
pass through the selection check, a file name with '@' reads whole, good files still read."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from psilearn.data import read_structures, write_structures
from psilearn.data.frame_checks import check_selection
from psilearn.errors import DataError


def _frames(n: int) -> list[Atoms]:
    return [Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7 + 0.01 * i]]) for i in range(n)]


def test_messages_name_the_frame_of_the_file_not_of_the_selection(tmp_path):
    frames = _frames(6)
    frames[4].positions[1, 2] = np.nan
    write_structures(tmp_path / "f.xyz", frames)
    with pytest.raises(DataError, match=r"f.xyz, frame 4: atom 1 \(H\) has a non-finite position"):
        read_structures(f"{tmp_path / 'f.xyz'}@3:")
    assert [a.info["source"] for a in read_structures(f"{tmp_path / 'f.xyz'}@1:3")] == ["f.xyz:1", "f.xyz:2"]


def test_parse_error_in_a_later_frame_names_frame_and_line(tmp_path):
    write_structures(tmp_path / "f.xyz", _frames(3))
    lines = (tmp_path / "f.xyz").read_text().splitlines()
    lines[10] = lines[10].replace("H", "Hq", 1)  # frame 2, first atom line (line 11)
    (tmp_path / "f.xyz").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"f.xyz, frame 2, line 11: unknown element symbol 'Hq'"):
        read_structures(tmp_path / "f.xyz")
    assert len(read_structures(f"{tmp_path / 'f.xyz'}@:2")) == 2  # frames before the bad one still read


def test_selection_syntax():
    for good in ["0", "-1", ":", "2:5", "::2", "-3:", "1:10:3"]:
        assert check_selection(good, "f.xyz") == good
    assert check_selection("energy<0", "x.db", database=True) == "energy<0"  # ASE database queries
    for bad, hint in [("0-50", "did you mean '@0:50'?"), ("0..50", "did you mean '@0:50'?"), ("1,3", "did you mean '@1:3'?"),
                      ("first", "use @N"), ("::0", "step cannot be 0")]:
        with pytest.raises(DataError, match=hint.replace("?", r"\?")):
            check_selection(bad, "f.xyz")
    with pytest.raises(DataError, match="did you mean"):
        check_selection("0-50", "x.db", database=True)  # a range typo, not a query


def test_database_query_and_at_sign_in_file_name(tmp_path):
    from psilearn.label.store import LabelStore

    store = LabelStore(tmp_path / "l.db")
    for i, a in enumerate(_frames(3)):
        b = a.copy()
        b.info["energy"] = float(i)
        store.write(a, f"s{i}", "m", "test", {"status": "ok", "atoms": b})
    assert len(read_structures(f"{tmp_path / 'l.db'}@label_status=ok")) == 3
    odd = tmp_path / "run@2.xyz"
    write_structures(odd, _frames(2))
    assert len(read_structures(odd)) == 2


def test_good_cells_still_read(tmp_path):
    cubic = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=[5, 5, 5], pbc=True)
    skewed = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=[[4, 0, 0], [2, 3, 0], [0, 0, 6]], pbc=True)
    molecule = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    write_structures(tmp_path / "ok.xyz", [cubic, skewed, molecule])
    frames = read_structures(tmp_path / "ok.xyz")
    assert [bool(a.pbc.all()) for a in frames] == [True, True, False]


def test_models_check_structures_built_in_memory(world):
    """The ASE calculator and Python callers hand Atoms to Model.predict directly: same checks."""
    from psilearn.models import load

    model = load(world / "e.model")
    flat = Atoms("OH2", positions=[[0, 0, 0], [0, 0.76, 0.59], [0, -0.76, 0.59]], cell=[[1, 0, 0], [2, 0, 0], [0, 0, 1]], pbc=True)
    with pytest.raises(DataError, match="coplanar or collinear"):
        model.predict(flat)
    far = Atoms("OH2", positions=[[0, 0, 0], [0, 0.76, 0.59], [0, -0.76, 1e7]])
    with pytest.raises(DataError, match="from the origin"):
        model.predict([far])
    zero_cell = Atoms("OH2", positions=[[0, 0, 0], [0, 0.76, 0.59], [0, -0.76, 0.59]], pbc=True)  # all-zero lattice: a molecule
    assert model.predict(zero_cell).values.shape == (1, 1)
