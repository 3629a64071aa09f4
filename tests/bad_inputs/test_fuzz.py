"""Property-based fuzzing (hypothesis) of the readers and the tensor-formula parser: any input
either loads, giving structures psilearn can use, or raises psilearn's own error type
(DataError for data, ConfigError for a formula) -- never an IndexError, KeyError,
UnicodeDecodeError or another accident of a parser.

Inputs are drawn from each format's grammar, mostly with good values and sometimes a bad one, and
then a few lines are edited, so that examples sit near the boundary between valid and invalid
files. Few examples, derandomized, no deadline: this runs in the default suite; the ``slow``
variant of the formula fuzzer also exercises e3nn's change of basis.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import psilearn.targets.cartesian as cartesian
from psilearn.data import read_structures
from psilearn.errors import ConfigError, DataError
from psilearn.targets import Target

#: PSILEARN_FUZZ_EXAMPLES=5000 pytest tests/bad_inputs/test_fuzz.py: a long, random (not derandomized) hunt
_HUNT = int(os.environ.get("PSILEARN_FUZZ_EXAMPLES", "0"))
FAST = settings(max_examples=_HUNT or 60, deadline=None, derandomize=not _HUNT, database=None,
                suppress_health_check=list(HealthCheck))

GOOD_SYMBOLS = ["H", "C", "O"]
BAD_SYMBOLS = ["h", "Xx", "X", "Si", "0", "6", "", "Q"]
GOOD_NUMBERS = ["0.0", "1.5", "-2", "0.74", "3"]
BAD_NUMBERS = ["1e30", "nan", "inf", "-inf", "abc", "1,5", "0x10", "1e", ""]


def often(good: list, bad: list):
    """Mostly a good value, sometimes a bad one."""
    return st.sampled_from(good * 4 + bad)


SYMBOL = often(GOOD_SYMBOLS, BAD_SYMBOLS)
NUMBER = often(GOOD_NUMBERS, BAD_NUMBERS)
EDITS = st.sampled_from([0, 0, 0, 1, 1, 2])


def check_loaded(frames, name: str) -> None:
    """What a successful read promises (psilearn.data.frame_checks)."""
    assert frames
    for atoms in frames:
        assert len(atoms) > 0
        assert np.isfinite(atoms.positions).all() and np.abs(atoms.positions).max() <= 1e6
        assert ((atoms.numbers >= 1) & (atoms.numbers <= 118)).all()
        assert np.isfinite(atoms.cell[:]).all()
        assert name in atoms.info["source"]


def read_or_data_error(path: Path, selection: str = "") -> str:
    """Read ``path`` + ``selection``; 'loaded' or 'error' (a DataError naming the file)."""
    try:
        frames = read_structures(str(path) + selection)
    except DataError as exc:
        assert path.name in str(exc), f"the message does not name the file: {exc}"
        return "error"
    check_loaded(frames, path.name)
    return "loaded"


@st.composite
def mutated(draw, text: str) -> str:
    """``text`` with a few random edits: deleted, duplicated, blank or replaced lines and characters."""
    lines = text.split("\n")
    for _ in range(draw(EDITS)):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "dup", "blank", "chars", "junk"]))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "blank":
            lines.insert(i, "")
        elif op == "chars" and lines[i]:
            j = draw(st.integers(0, len(lines[i]) - 1))
            lines[i] = lines[i][:j] + draw(st.text(max_size=3)) + lines[i][j + 1:]
        else:
            lines[i] = draw(st.text(max_size=12))
    return "\n".join(lines)


# ---- extxyz ------------------------------------------------------------------------------------------
@st.composite
def xyz_frame(draw) -> str:
    n = draw(st.integers(1, 3))
    count = draw(often([str(n), f" {n} "], [str(n + 1), str(n - 1), "-1", "x", "1.0"]))
    comment = []
    if draw(st.booleans()):
        lattice = draw(often(["5 0 0 0 5 0 0 0 5", "0 0 0 0 0 0 0 0 0", "4 0 0 2 3 0 0 0 6"],
                             ["1 0 0 2 0 0 0 0 1", "5 0 0 0 5 0 0 0", "nan 0 0 0 5 0 0 0 5", "5 0 0 0 5 0 0 0 0",
                              "1e9 0 0 0 1 0 0 0 1"]))
        comment.append(f'Lattice="{lattice}"')
    if draw(st.booleans()):
        comment.append(f'pbc="{draw(often(["T T T", "F F F", "T T F"], ["T T", "T X T", "1 1 1"]))}"')
    props, width = draw(often([(None, 3), ("species:S:1:pos:R:3", 3), ("species:S:1:pos:R:3:q:R:1", 4)],
                              [("species:S:1:pos:R:2", 2), ("Z:I:1:pos:R:3", 3), ("species:Q:1:pos:R:3", 3),
                               ("species:S:1:pos:R", 3), ("pos:R:3", 3)]))
    if props:
        comment.append(f"Properties={props}")
    if draw(st.booleans()):
        comment.append(f"energy={draw(NUMBER)}")
    atoms = [" ".join([draw(SYMBOL)] + [draw(NUMBER) for _ in range(width + draw(often([0], [-1, 1])))]) for _ in range(n)]
    return "\n".join([count, " ".join(comment), *atoms])


@FAST
@given(frames=st.lists(xyz_frame(), min_size=1, max_size=3), data=st.data(),
       selection=often(["", "@0", "@-1", "@:2"], ["@1:", "@0-1", "@::0", "@5", "@a", "@1:0"]))
def test_fuzz_extxyz(frames, data, selection):
    text = data.draw(mutated("\n".join(frames) + "\n"))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.xyz"
        path.write_bytes(text.encode("utf-8", errors="replace"))
        read_or_data_error(path, selection)


@FAST
@given(data=st.binary(max_size=80))
def test_fuzz_extxyz_bytes(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.xyz"
        path.write_bytes(b"2\n\nH 0 0 0\n" + data)
        read_or_data_error(path)


# ---- magres ------------------------------------------------------------------------------------------
@st.composite
def magres_text(draw) -> str:
    lines = ["#$magres-abinitio-v1.0", "[atoms]", "units atom Angstrom"]
    if draw(st.booleans()):
        lattice = draw(often(["5 0 0 0 5 0 0 0 5"], ["1 0 0 2 0 0 0 0 1", "1 2", "nan 0 0 0 1 0 0 0 1"]))
        lines += ["units lattice Angstrom", f"lattice {lattice}"]
    n = draw(st.integers(1, 3))
    for i in range(n):
        sym = draw(SYMBOL)
        index = draw(often([str(i + 1)], ["0", "x"]))
        lines.append(f"atom {sym} {sym} {index} " + " ".join(draw(NUMBER) for _ in range(3 + draw(often([0], [-1, 1])))))
    lines.append(draw(often(["[/atoms]"], ["[atoms]", ""])))
    if draw(st.booleans()):
        lines += ["[magres]", draw(often(["units ms ppm"], ["units ms", "units xx ppm"]))]
        for i in range(draw(often([n], [0, n + 1]))):
            lines.append(f"ms {draw(SYMBOL)} {i + 1} " + " ".join(draw(NUMBER) for _ in range(9 + draw(often([0], [-1, 2])))))
        lines.append("[/magres]")
    return "\n".join(lines) + "\n"


@FAST
@given(text=magres_text(), data=st.data())
def test_fuzz_magres(text, data):
    text = data.draw(mutated(text))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.magres"
        path.write_bytes(text.encode("utf-8", errors="replace"))
        read_or_data_error(path)


# ---- DeePMD ------------------------------------------------------------------------------------------
def array(shape: tuple, kind: str) -> np.ndarray:
    """An array of ``shape``: floats, a non-finite or absurd value, ints, strings, complex or bool."""
    if kind == "str":
        return np.full(shape, "a")
    fill = {"float": 0.5, "nan": np.nan, "huge": 1e30, "int": 3, "complex": 1 + 0j, "bool": True}[kind]
    out = np.full(shape, fill)
    return out * np.arange(out.size).reshape(shape) if kind == "float" and out.size else out


@st.composite
def deepmd_system(draw) -> dict:
    n_atoms, n_frames = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    types = " ".join(draw(often(["0", "1"], ["2", "-1", "a", "1.0"])) for _ in range(n_atoms + draw(often([0], [-1, 1]))))
    kind = draw(often(["float"], ["nan", "huge", "int", "str", "complex", "bool"]))

    def width(w: int) -> int:
        return draw(often([w], [w - 1, w + 1, 0]))

    def frames() -> int:
        return draw(often([n_frames], [n_frames + 1, 0]))

    coord_shape = draw(often([(n_frames, 3 * n_atoms), (n_frames, n_atoms, 3)], [(frames(), width(3 * n_atoms)), (), (3,)]))
    box = draw(often([None, np.tile(np.eye(3).ravel() * 5, (n_frames, 1))], [array((frames(), width(9)), kind)]))
    label_name = draw(st.sampled_from(["energy", "atom_dipole", "force"]))
    label_width = 1 if label_name == "energy" else 3 * n_atoms
    label = draw(often([None, array((n_frames, label_width), "float")], [array((frames(), width(label_width)), kind)]))
    return {"type.raw": types, "type_map.raw": draw(often(["H O", "O H C"], ["", "H Xx", "q"])), "coord": array(coord_shape, kind),
            "box": box, label_name: label, "nopbc": draw(st.booleans()),
            "raw_coord": draw(often([None], [b"", b"\x93NUMPY garbage"]))}


@FAST
@given(system=deepmd_system(), selection=often(["", "@0", "@:1"], ["@3", "@0-1"]))
def test_fuzz_deepmd(system, selection):
    with tempfile.TemporaryDirectory() as d:
        sysdir = Path(d) / "sys"
        (sysdir / "set.000").mkdir(parents=True)
        for name, value in system.items():
            if name.endswith(".raw"):
                (sysdir / name).write_text(value)
            elif name == "nopbc" and value:
                (sysdir / "nopbc").write_text("")
            elif name == "raw_coord" and value is not None:
                (sysdir / "set.000" / "coord.npy").write_bytes(value)
            elif isinstance(value, np.ndarray) and not (name == "coord" and system["raw_coord"] is not None):
                np.save(sysdir / "set.000" / f"{name}.npy", value)
        read_or_data_error(sysdir, selection)


# ---- tensor formulas ---------------------------------------------------------------------------------
FORMULAS = st.one_of(
    st.text(alphabet="ijklab=IJé -", max_size=10),
    st.lists(st.permutations("ijkl").map("".join), min_size=1, max_size=3).flatmap(
        lambda parts: st.integers(1, 4).map(lambda r: "=".join(p[:r] for p in parts))),
)


def _formula_or_config_error(formula: str, traceless: bool, parity: int) -> None:
    try:
        basis = cartesian.cartesian_basis(formula)
        target = Target("x", tensor=formula, traceless=traceless, parity=parity)
    except ConfigError:
        return
    n = 3**basis.rank
    assert basis.to_irreps.shape[0] == n and basis.to_cartesian.shape[1] == n
    assert np.allclose(basis.to_cartesian @ basis.to_irreps, np.eye(basis.to_irreps.shape[1]), atol=1e-10)
    assert target.size == n


class _NeedsE3nn(Exception):
    pass


def _no_e3nn(formula):
    raise _NeedsE3nn(formula)


@FAST
@given(formula=FORMULAS, traceless=st.booleans(), parity=st.sampled_from([1, -1]))
def test_fuzz_tensor_formula(formula, traceless, parity):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cartesian, "e3nn_cartesian_basis", _no_e3nn)
        try:
            _formula_or_config_error(formula, traceless, parity)
        except _NeedsE3nn:
            pass  # a well-formed formula outside the shipped table: the slow variant computes it with e3nn


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(formula=FORMULAS, traceless=st.booleans(), parity=st.sampled_from([1, -1]))
def test_fuzz_tensor_formula_with_e3nn(formula, traceless, parity):
    _formula_or_config_error(formula, traceless, parity)
