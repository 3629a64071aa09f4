"""Stable hashes that key the label store: one for the structure, one for the method."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from ase import Atoms

from psilearn.data.electronic_state import charge_multiplicity  # noqa: F401  (re-exported)

#: Positions are rounded to this many decimals (Angstrom) before hashing: 1e-6 A.
POSITION_DECIMALS = 6


def _round(values: np.ndarray, decimals: int) -> list:
    arr = np.round(np.asarray(values, dtype=np.float64), decimals)
    arr[arr == 0.0] = 0.0  # -0.0 -> 0.0 so sign of zero does not change the hash
    return arr.tolist()


def structure_hash(atoms: Atoms) -> str:
    """SHA-256 (32 hex digits) of numbers, positions rounded to 1e-6 A, cell, pbc, charge and
    multiplicity. Invariant to anything else in ``atoms.info``/``atoms.arrays``."""
    try:
        charge, mult = charge_multiplicity(atoms)
    except ValueError:
        charge, mult = repr(atoms.info.get("charge")), repr(atoms.info.get("multiplicity"))
    payload = {
        "numbers": [int(z) for z in atoms.numbers],
        "positions": _round(atoms.positions, POSITION_DECIMALS),
        "cell": _round(atoms.cell.array, POSITION_DECIMALS),
        "pbc": [bool(p) for p in atoms.pbc],
        "charge": charge,
        "multiplicity": mult,
    }
    return _digest(payload)


def method_hash(spec: dict[str, Any]) -> str:
    """SHA-256 (32 hex digits) of a labeler spec (canonical JSON, sorted keys)."""
    return _digest(spec)


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def code_version(dist: str) -> str:
    """Installed version of a distribution, or ``'not-installed'``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not-installed"
