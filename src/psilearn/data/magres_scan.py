"""Where a .magres file goes wrong (file and line), for the files ASE's magres reader refuses.

Only what psilearn reads is explained: the version header, the ``[atoms]`` block (units, lattice,
``atom SYMBOL LABEL INDEX x y z``) and the 3x3 tensors of the ``[magres]`` block
(``ms LABEL INDEX`` + 9 numbers, likewise ``efg``). Anything else falls back to ASE's message.
"""

from __future__ import annotations

from psilearn.data.xyz_scan import read_text

TENSOR_KEYS = ("ms", "efg", "efg_local", "efg_nonlocal")


def is_magres(path: str, format: str | None) -> bool:
    return format == "magres" if format else path.lower().endswith(".magres")


def diagnose_magres(path: str, exc: Exception) -> str:
    """One line naming the file and, when found, the line that ASE's reader (``exc``) choked on."""
    from psilearn.errors import DataError

    try:
        lines = read_text(path).split("\n")
    except DataError as text_error:
        return str(text_error)
    reason = _first_problem(lines)
    return f"{path}, {reason}" if reason else f"{path}: cannot read structures ({type(exc).__name__}: {exc})"


def _numbers(tokens: list[str]) -> str | None:
    for tok in tokens:
        try:
            float(tok)
        except ValueError:
            return tok
    return None


def _first_problem(lines: list[str]) -> str | None:
    from ase.data import chemical_symbols

    if not lines or not lines[0].startswith("#$magres-abinitio"):
        return "line 1: not a magres file (the first line must be '#$magres-abinitio-v1.0')"
    block, atoms, seen_atoms = None, set(), False
    for n, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        head = tokens[0]
        if head.startswith("[/"):
            block = None
        elif head.startswith("["):
            block = head.strip("[]")
            seen_atoms |= block == "atoms"
        elif block == "atoms" and head == "lattice" and (len(tokens) != 10 or _numbers(tokens[1:]) is not None):
            return f"line {n}: lattice must be 9 numbers (three lattice vectors), got {' '.join(tokens[1:])[:40]!r}"
        elif block == "atoms" and head == "units" and len(tokens) == 3 and tokens[2] != "Angstrom":
            return f"line {n}: units {tokens[2]!r} for {tokens[1]!r}; only Angstrom is supported"
        elif block == "atoms" and head == "atom":
            if len(tokens) != 7:
                return f"line {n}: an atom line is 'atom SYMBOL LABEL INDEX x y z', got {len(tokens)} fields"
            if tokens[1].split(":")[0] not in chemical_symbols[1:]:
                return f"line {n}: unknown element symbol {tokens[1]!r}"
            if not tokens[3].isdigit() or _numbers(tokens[4:]) is not None:
                return f"line {n}: {(tokens[3] if not tokens[3].isdigit() else _numbers(tokens[4:]))!r} is not a number"
            atoms.add((tokens[2], tokens[3]))
        elif block == "magres" and head in TENSOR_KEYS:
            if len(tokens) != 12 or _numbers(tokens[3:]) is not None:
                return f"line {n}: {head} is 'LABEL INDEX' and 9 numbers, got {' '.join(tokens[1:])[:50]!r}"
            if (tokens[1], tokens[2]) not in atoms:
                return f"line {n}: {head} for atom {tokens[1]} {tokens[2]}, which the [atoms] block does not list"
    if not seen_atoms:
        return "no [atoms] block: the file holds no structure"
    return None
