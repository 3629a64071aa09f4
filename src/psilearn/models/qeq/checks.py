"""Checks shared by the QEq backends (kernel and NN): which Targets QEq learns, and reference charges.

Kept free of featomic and torch imports so that either backend can use them.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.data import DataError
from psilearn.targets import Target


def is_charge_target(t: Target) -> bool:
    """Per-atom polar scalar: atomic charges (e)."""
    return t.per == "atom" and t.tensor == "" and t.parity == 1


def is_dipole_target(t: Target) -> bool:
    """Per-structure polar vector: a dipole (units given by the Target)."""
    return t.per == "structure" and t.tensor == "i" and t.parity == 1


def check_target(target: Target) -> None:
    """ValueError unless ``target`` is atomic charges or a dipole."""
    if not (is_charge_target(target) or is_dipole_target(target)):
        raise ValueError(f"the QEq model learns atomic charges (--per atom, scalar) or dipoles (--tensor i), "
                         f"not {target.describe()}")


def _where(frames: list[Atoms], i: int) -> str:
    return str(frames[i].info.get("source", f"frame {i}")).replace(":", ", frame ", 1)


def check_charge_sums(frames: list[Atoms], q: np.ndarray, total: np.ndarray, key: str, tol: float = 1e-3) -> None:
    """DataError naming the first structure whose reference charges ``q`` (n_atoms_total,) e do not
    sum to its total charge ``total`` (n_structures,) e within ``tol``."""
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
    sums = np.add.reduceat(q, offsets[:-1]) if len(q) else np.zeros(0)
    bad = np.flatnonzero(np.abs(sums - total) > tol)
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{_where(frames, i)}: reference charges {key!r} sum to {sums[i]:+.4f} e but the total charge is "
                        f"{total[i]:+.0f} (atoms.info['charge']); set the charge of charged structures "
                        f"({len(bad)} of {len(frames)} structures disagree)")


def reference_charges(frames: list[Atoms], key: str, total: np.ndarray) -> np.ndarray:
    """Per-atom reference charges ``atoms.arrays[key]`` of every structure, flattened (n_atoms_total,) e,
    checked to be finite and to sum to each structure's total charge."""
    rows = []
    for i, a in enumerate(frames):
        if key not in a.arrays:
            raise DataError(f"{_where(frames, i)}: no per-atom charges {key!r} (needed by charges_key)")
        q = np.asarray(a.arrays[key], float).reshape(-1)
        if q.size != len(a) or not np.all(np.isfinite(q)):
            raise DataError(f"{_where(frames, i)}: charges {key!r} must be one finite number per atom")
        rows.append(q)
    q = np.concatenate(rows)
    check_charge_sums(frames, q, total, key)
    return q


class QEqTargetMixin:
    """What both QEq estimators (kernel and NN) derive from their Target and config: whether the
    Target is a dipole, and the key under which predicted charges are written."""

    @property
    def is_dipole(self) -> bool:
        return is_dipole_target(self.target)

    @property
    def charges_name(self) -> str:
        """Key under which predicted charges are written (arrays)."""
        if not self.is_dipole:
            return self.target.key
        return self.config.charges_key or "qeq_charges"
