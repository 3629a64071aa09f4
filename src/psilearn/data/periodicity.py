"""The one periodicity rule of psilearn: which frames are molecules and which are periodic cells.

Every reader (:func:`psilearn.data.read_structures`), labeler (PySCF, GFN2-xTB), ``psilearn md``,
the lambda-SOAP features and the ASE calculator apply :func:`apply_periodicity`, so a frame means
the same thing to every command:

* **molecule**: ``pbc`` is False on every axis, *or* the lattice is all zero (extxyz
  ``Lattice="0 0 0 0 0 0 0 0 0"``, whatever ``pbc`` says; such a frame is set to ``pbc=False``);
* **periodic**: ``pbc`` is True on some axis and the cell is a proper 3D cell: three non-zero
  lattice vectors that are not coplanar (volume above ``MIN_RELATIVE_VOLUME`` x |a||b||c|);
* anything else (``pbc`` True with a partly zero or degenerate cell) is refused with a DataError
  that says how to state a molecule or a cell.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.data.errors import DataError

#: A periodic cell whose volume is below this fraction of |a| |b| |c| is degenerate (coplanar vectors).
MIN_RELATIVE_VOLUME = 1e-6


def _flags(pbc) -> str:
    return " ".join("T" if p else "F" for p in np.atleast_1d(pbc))


def cell_problem(atoms: Atoms) -> str | None:
    """Why the cell of a frame periodic along some axis is not a proper 3D cell (None if it is)."""
    cell = np.asarray(atoms.cell[:], dtype=float)
    lengths = np.linalg.norm(cell, axis=1)
    if not np.all(np.isfinite(cell)):
        return "the lattice has non-finite entries"
    zero = [name for name, n in zip("abc", lengths) if n == 0.0]
    if zero:
        return f"lattice vector{'s' if len(zero) > 1 else ''} {', '.join(zero)} {'are' if len(zero) > 1 else 'is'} zero"
    volume = abs(float(np.linalg.det(cell)))
    if volume <= MIN_RELATIVE_VOLUME * float(np.prod(lengths)):
        return f"the lattice vectors are coplanar (cell volume {volume:.3g} A^3)"
    return None


def is_molecule(atoms: Atoms) -> bool:
    """True for a molecule under the rule above (no periodic axis, or an all-zero lattice)."""
    return not np.any(atoms.pbc) or not np.any(np.asarray(atoms.cell[:]))


def apply_periodicity(atoms: Atoms, where: str = "") -> Atoms:
    """Apply the periodicity rule to ``atoms`` in place and return it: an all-zero lattice makes a
    molecule (``pbc=False``); a periodic frame with a partly zero or degenerate cell raises
    DataError (prefixed by ``where``, e.g. ``'data.xyz, frame 3'``)."""
    if not np.any(atoms.pbc):
        return atoms
    if not np.any(np.asarray(atoms.cell[:])):
        atoms.pbc = False  # extxyz 'Lattice' of zeros: a molecule
        return atoms
    problem = cell_problem(atoms)
    if problem:
        prefix = f"{where}: " if where else ""
        raise DataError(f"{prefix}periodic (pbc=\"{_flags(atoms.pbc)}\") but the cell is degenerate: {problem}; give three "
                        "non-coplanar lattice vectors for a periodic cell, or pbc=\"F F F\" (or an all-zero lattice) for a molecule")
    return atoms


def periodicity_applied(atoms: Atoms, where: str = "") -> Atoms:
    """``atoms`` itself when the rule changes nothing, else a copy with the rule applied (the
    caller's frame is never modified); DataError as :func:`apply_periodicity`."""
    if np.any(atoms.pbc) and not np.any(np.asarray(atoms.cell[:])):
        return apply_periodicity(atoms.copy(), where)
    return apply_periodicity(atoms, where)
