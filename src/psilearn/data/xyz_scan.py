"""The layout of an (extended) XYZ file, and where it goes wrong: file, frame and line.

:func:`scan_xyz` walks the frames the way ASE's reader does (a count line, a comment line, that
many atom lines, up to three ``VEC`` lines) without parsing them, so that a count line that is not a
number, a truncated last frame or a blank line between frames (where ASE silently stops reading,
losing every later frame) is reported with its line number before ASE reads anything.
:func:`diagnose_xyz` explains a frame ASE could not parse: the comment line, ``Lattice``,
``Properties``, a missing column, an unknown element symbol or a value that is not a number.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from psilearn.errors import DataError

XYZ_SUFFIXES = (".xyz", ".extxyz")


def is_xyz(path: str, format: str | None) -> bool:
    """True for the files ASE reads with its extended XYZ reader."""
    if format is not None:
        return format in ("extxyz", "xyz")
    return path.lower().endswith(XYZ_SUFFIXES)


@dataclass
class XYZLayout:
    path: str
    lines: list[str]
    starts: list[int]  # index in ``lines`` of each frame's count line

    def natoms(self, frame: int) -> int:
        return int(self.lines[self.starts[frame]])


def read_text(path: str) -> str:
    """The file as text (UTF-8), DataError naming the line of the first byte that is not."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not a text file (byte {exc.start} is not UTF-8)") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as Python's universal newlines


def scan_xyz(path: str) -> XYZLayout:
    """Frame boundaries of an XYZ file; DataError (file, frame, line) for a broken layout."""
    lines = read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    starts: list[int] = []
    n = 0
    while n < len(lines):
        line = lines[n]
        if not line.strip():
            more = next((k for k in range(n + 1, len(lines)) if lines[k].strip()), None)
            if more is not None:
                after = f"after frame {len(starts) - 1}" if starts else "before the first frame"
                raise DataError(f"{path}, line {n + 1}: blank line {after}; readers stop there, so the frames from line "
                                f"{more + 1} on would be lost (remove the blank line)")
            break
        try:
            natoms = int(line)
        except ValueError:
            after = " (does the previous frame have more atom lines than its count?)" if starts else ""
            raise DataError(f"{path}, frame {len(starts)}, line {n + 1}: expected the number of atoms, got "
                            f"{_short(line)}{after}") from None
        if natoms < 0:
            raise DataError(f"{path}, frame {len(starts)}, line {n + 1}: negative number of atoms ({natoms})")
        if n + 1 + natoms >= len(lines):
            have = max(len(lines) - n - 2, 0)
            raise DataError(f"{path}, frame {len(starts)}, line {n + 1}: announces {natoms} atoms but the file ends after "
                            f"{have} atom line{'s' * (have != 1)} (truncated?)")
        starts.append(n)
        n += 2 + natoms
        for _ in range(3):
            if n < len(lines) and lines[n].lstrip().startswith("VEC"):
                n += 1
    return XYZLayout(path, lines, starts)


def frame_text(layout: XYZLayout, frame: int) -> str:
    start = layout.starts[frame]
    end = layout.starts[frame + 1] if frame + 1 < len(layout.starts) else len(layout.lines)
    return "\n".join(layout.lines[start:end]) + "\n"


def diagnose_xyz(layout: XYZLayout, frames, exc: Exception) -> str:
    """The message for ASE failing (``exc``) to read frames ``frames`` of ``layout``: the first
    frame that does not parse on its own, with the line and the reason."""
    import ase.io

    for k in frames:
        try:
            ase.io.read(io.StringIO(frame_text(layout, k)), format="extxyz", index=0)
        except Exception as frame_exc:  # noqa: BLE001 -- ASE raises many types; each is explained below
            reason = _diagnose_frame(layout, k)
            if reason:
                return reason
            return f"{layout.path}, frame {k}, line {layout.starts[k] + 1}: cannot read the frame ({_ase_reason(frame_exc)})"
    return f"{layout.path}: cannot read structures ({_ase_reason(exc)})"


def _ase_reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".replace("ase.io.extxyz: ", "")


def _short(text: str, n: int = 40) -> str:
    text = text.strip()
    return repr(text if len(text) <= n else text[: n - 3] + "...")


def _diagnose_frame(layout: XYZLayout, k: int) -> str | None:
    from ase.io.extxyz import key_val_str_to_dict, parse_properties

    start, lines = layout.starts[k], layout.lines
    where = f"{layout.path}, frame {k}, line {start + 2}"
    comment = lines[start + 1].strip()
    try:
        info = key_val_str_to_dict(comment) if comment else {}
    except Exception as exc:  # noqa: BLE001
        return f"{where}: cannot parse the comment line ({_ase_reason(exc)})"
    if "Lattice" in info:
        lat = np.asarray(info["Lattice"])
        if lat.shape != (3, 3) or not np.issubdtype(lat.dtype, np.number):
            return f"{where}: Lattice must be 9 numbers (three lattice vectors), got {_short(str(info['Lattice']))}"
    if "pbc" in info and np.asarray(info["pbc"]).shape != (3,):
        return f"{where}: pbc must be three T/F values, got {_short(str(info['pbc']))}"
    props = info.get("Properties", "species:S:1:pos:R:3")
    try:
        _, _, dtype, convs = parse_properties(props)
    except Exception as exc:  # noqa: BLE001
        return f"{where}: invalid Properties {_short(str(props))} ({_ase_reason(exc)}); expected NAME:TYPE:NCOLS fields, e.g. species:S:1:pos:R:3"
    fields = str(props).split(":")
    shape = dict(zip(fields[::3], zip(fields[1::3], fields[2::3])))
    if shape.get("pos", ("R", "3")) != ("R", "3") or "pos" not in shape:
        return f"{where}: Properties {_short(str(props))} must hold pos:R:3 (the positions, three real columns)"
    for j in range(layout.natoms(k)):
        row = start + 2 + j
        reason = _diagnose_atom_line(lines[row].split(), dtype.names, convs, str(props))
        if reason:
            return f"{layout.path}, frame {k}, line {row + 1}: {reason}"
    return None


def _diagnose_atom_line(tokens: list[str], names, convs, props: str) -> str | None:
    from ase.data import chemical_symbols

    if len(tokens) < len(convs):
        return f"{len(tokens)} columns, expected {len(convs)} (Properties={props})"
    for col, (name, conv, tok) in enumerate(zip(names, convs, tokens)):
        kind = {float: "a number", int: "an integer"}.get(conv, "T or F")
        if conv is str:
            if name == "species" and tok.capitalize() not in chemical_symbols[1:]:
                return f"unknown element symbol {_short(tok)}"
            continue
        try:
            value = conv(tok)
        except (ValueError, TypeError):
            value = None
        if value is None:
            return f"column {col + 1} ({name}): {_short(tok)} is not {kind}"
    return None
