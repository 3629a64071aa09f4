"""The label store: an ASE SQLite database keyed by structure hash + method hash.

Every result (success or failure) is one row written in one SQLite transaction together with
its key in the ``psilearn_label_keys`` table, whose primary key makes a duplicate impossible:
a process killed at any moment leaves either the whole row or nothing. Rows hold the bare
structure; labels live in ``row.data['info']`` / ``row.data['arrays']``. Searchable key-value
pairs: ``structure_hash``, ``method_hash``, ``label_key``, ``label_status`` (ok/failed),
``label_method``, ``label_stage``, ``label_error``, ``label_seconds``.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from psilearn.data.io import write_structures
from psilearn.errors import DataError
from psilearn.label.base import UNITS

KEY_TABLE = "psilearn_label_keys"
UNITS_NOTE = "atomic units: energies Hartree, lengths Bohr, charges e (positions Angstrom; shielding ppm)"


class _Duplicate(Exception):
    pass


def label_key(shash: str, mhash: str) -> str:
    return f"{shash}-{mhash}"


class LabelStore:
    """An ASE SQLite database of labels. ``path`` is created if missing (``create=False``: it must
    exist, and opening it writes nothing, e.g. for ``psilearn db status``).

    A file that is not an SQLite database, or an SQLite database that is not an ASE database, is
    refused with a DataError before anything is written to it."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        import ase.db

        self.path = Path(path)
        if self.path.suffix != ".db":
            raise DataError(f"label database must be an SQLite file ending in .db, got {str(path)!r}")
        _check_database(self.path, create)
        try:
            # No ASE lock file: a SIGKILLed writer would leave it behind and block every later run;
            # SQLite's own locking and one-transaction writes give the needed safety.
            self.db = ase.db.connect(str(self.path), type="db", append=True, use_lock_file=False, serial=True)
            self.db.count()  # creates ASE's tables
            if create:
                with sqlite3.connect(str(self.path), timeout=30) as con:
                    con.execute(f"CREATE TABLE IF NOT EXISTS {KEY_TABLE} (label_key TEXT PRIMARY KEY, row_id INTEGER)")
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path}: unreadable label database ({exc})") from None

    # ---- metadata ----------------------------------------------------------------------------
    def register_method(self, name: str, mhash: str, spec: dict[str, Any]) -> None:
        """Record the method spec and the units in the database metadata."""
        from psilearn._version import __version__

        md = self.db.metadata
        methods = md.get("methods", {})
        if mhash not in methods:
            methods[mhash] = {"name": name, "spec": spec}
        md.update(methods=methods, units=UNITS, units_note=UNITS_NOTE, psilearn=__version__)
        self.db.metadata = md

    # ---- writing -----------------------------------------------------------------------------
    def write(self, atoms: Atoms, shash: str, mhash: str, method: str, result: dict[str, Any]) -> bool:
        """Store one result; returns False (and writes nothing) if the key already exists.

        ``result`` is ``{'status': 'ok', 'atoms': labelled}`` or
        ``{'status': 'failed', 'reason': str, 'stage': str}``.
        """
        key = label_key(shash, mhash)
        status = result["status"]
        kv: dict[str, Any] = {
            "structure_hash": shash, "method_hash": mhash, "label_key": key,
            "label_status": status, "label_method": method,
        }
        if status == "ok":
            labelled: Atoms = result["atoms"]
            info = {k: _plain(v) for k, v in labelled.info.items()}
            arrays = {k: np.asarray(v) for k, v in labelled.arrays.items() if k not in ("numbers", "positions")}
            if "label_seconds" in info:
                kv["label_seconds"] = float(info["label_seconds"])
        else:
            info = {k: _plain(v) for k, v in atoms.info.items()}
            arrays = {}
            kv["label_error"] = str(result.get("reason", "unknown"))[:2000]
            kv["label_stage"] = str(result.get("stage", "label"))
        bare = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        try:
            with self.db as db:  # one transaction: rollback on any exception
                try:
                    db.connection.execute(f"INSERT INTO {KEY_TABLE} VALUES (?, NULL)", (key,))
                except sqlite3.IntegrityError:
                    raise _Duplicate from None
                row_id = db.write(bare, key_value_pairs=kv, data={"info": info, "arrays": arrays})
                db.connection.execute(f"UPDATE {KEY_TABLE} SET row_id=? WHERE label_key=?", (row_id, key))
        except _Duplicate:
            return False
        return True

    def delete_failed(self, mhash: str) -> int:
        """Remove failed rows of one method (to retry them); returns how many."""
        ids = [r.id for r in self.db.select(method_hash=mhash, label_status="failed")]
        if ids:
            with self.db as db:
                db.delete(ids)
                db.connection.executemany(f"DELETE FROM {KEY_TABLE} WHERE row_id=?", [(i,) for i in ids])
        return len(ids)

    # ---- reading -----------------------------------------------------------------------------
    def keys(self) -> set[str]:
        """All stored label keys (successes and failures)."""
        with sqlite3.connect(str(self.path), timeout=30) as con:
            return {k for (k,) in con.execute(f"SELECT label_key FROM {KEY_TABLE}")}

    def count(self, **selection: Any) -> int:
        return self.db.count(**selection)

    def rows(self, **selection: Any) -> Iterator[Any]:
        yield from self.db.select(**selection)

    def get(self, shash: str, mhash: str) -> Any | None:
        rows = list(self.db.select(label_key=label_key(shash, mhash)))
        return rows[0] if rows else None

    def status(self) -> dict[str, Any]:
        """Counts per method and status, plus failure reasons."""
        md = self.db.metadata
        methods = md.get("methods", {})
        counts: Counter = Counter()
        failures: list[dict[str, Any]] = []
        seconds: dict[str, list[float]] = {}
        for row in self.db.select(columns=["id", "key_value_pairs"]):
            kv = row.key_value_pairs
            m = kv.get("method_hash", "?")
            counts[(m, kv.get("label_status", "?"))] += 1
            if kv.get("label_status") == "failed":
                failures.append({"id": row.id, "method_hash": m, "structure_hash": kv.get("structure_hash"),
                                 "stage": kv.get("label_stage"), "reason": kv.get("label_error")})
            elif "label_seconds" in kv:
                seconds.setdefault(m, []).append(kv["label_seconds"])
        summary = {}
        for m in sorted({m for m, _ in counts}):
            summary[m] = {
                "name": methods.get(m, {}).get("name", "?"),
                "ok": counts[(m, "ok")], "failed": counts[(m, "failed")],
                "mean_seconds": float(np.mean(seconds[m])) if seconds.get(m) else None,
            }
        return {"path": str(self.path), "methods": summary, "failures": failures,
                "units_note": md.get("units_note", UNITS_NOTE)}

    def to_atoms(self, row: Any) -> Atoms:
        """The labelled structure of a row (labels restored into info/arrays)."""
        atoms = row.toatoms()
        data = row.data or {}
        for k, v in data.get("info", {}).items():
            atoms.info[k] = v
        for k, v in data.get("arrays", {}).items():
            atoms.arrays[k] = np.asarray(v)
        kv = row.key_value_pairs
        atoms.info["method"] = kv.get("label_method")
        atoms.info["method_hash"] = kv.get("method_hash")
        atoms.info["structure_hash"] = kv.get("structure_hash")
        atoms.info["label_units"] = UNITS_NOTE
        if kv.get("label_status") == "failed":
            atoms.info["label_error"] = kv.get("label_error")
        return atoms

    def export(self, path: str | Path, mhash: str | None = None,
               keys: Iterable[str] | None = None, include_failed: bool = False) -> int:
        """Write labelled structures to extxyz; returns the number written.

        ``keys`` (label keys) selects and orders rows; otherwise all rows (of ``mhash``) by id.
        """
        selection: dict[str, Any] = {} if include_failed else {"label_status": "ok"}
        if mhash:
            selection["method_hash"] = mhash
        if keys is not None:
            by_key = {r.key_value_pairs["label_key"]: r for r in self.db.select(**selection)}
            rows = [by_key[k] for k in keys if k in by_key]
        else:
            rows = list(self.db.select(**selection))
        frames = [self.to_atoms(r) for r in rows]
        write_structures(path, frames, format="extxyz")
        return len(frames)


def _check_database(path: Path, create: bool) -> None:
    """DataError unless ``path`` is an ASE SQLite database (or absent/empty and ``create``)."""
    from psilearn.data.outputs import is_sqlite

    if not path.exists():
        if not create:
            raise DataError(f"{path}: label database not found")
        return
    if path.is_dir():
        raise DataError(f"{path}: a directory, not a label database")
    if path.stat().st_size == 0:
        if not create:
            raise DataError(f"{path}: an empty file, not a label database")
        return
    if not is_sqlite(path):
        raise DataError(f"{path}: not an SQLite database (label databases are ASE SQLite files written by psilearn label)")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as con:
            tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise DataError(f"{path}: unreadable SQLite database ({exc})") from None
    if "systems" not in tables and (tables or not create):
        raise DataError(f"{path}: an SQLite database but not an ASE label database (tables: {', '.join(sorted(tables)) or 'none'})")


def _plain(value: Any) -> Any:
    """NumPy scalars -> Python numbers so they survive JSON; arrays stay arrays."""
    if isinstance(value, np.generic):
        return value.item()
    return value
