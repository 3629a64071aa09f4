"""Constants computed once with e3nn and featomic and shipped with the package.

Cartesian <-> irreps bases of common index formulas, Wigner 3j symbols and the featomic -> e3nn
harmonic rotations are pure numbers, but computing them imports torch and e3nn (several seconds),
which a kernel model's ``psilearn predict`` of one molecule should not pay. ``scripts/make_constant_tables.py``
computes them with the libraries themselves into ``psilearn/tables/constants.npz``, recording the
e3nn and featomic versions; ``tests/architecture/test_constant_tables.py`` recomputes every entry
and compares. At run time an entry is used only when the installed library has the recorded
version; otherwise (or for an entry not in the table) the caller computes it with the library.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

TABLE = Path(__file__).parent / "tables" / "constants.npz"


@lru_cache(maxsize=None)
def _table() -> dict[str, np.ndarray]:
    if not TABLE.is_file():
        return {}
    with np.load(TABLE, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@lru_cache(maxsize=None)
def _versions() -> dict[str, str]:
    raw = _table().get("versions")
    return json.loads(raw.tobytes().decode()) if raw is not None else {}


@lru_cache(maxsize=None)
def _installed(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def lookup(key: str, made_with: tuple[str, ...]) -> np.ndarray | None:
    """The shipped array ``key``, or None when it is absent or when any library in ``made_with``
    ("e3nn", "featomic") is installed in another version than the one that computed it."""
    versions = _versions()
    if any(versions.get(p) is None or versions.get(p) != _installed(p) for p in made_with):
        return None
    value = _table().get(key)
    return None if value is None else value.copy()
