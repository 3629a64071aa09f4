"""Labeling campaigns: one Dask task per structure, results stored as they arrive, resumable.

Finished work (successes and recorded failures) is looked up by structure hash + method hash
and skipped; each result is written in one SQLite transaction with a unique key, so a campaign
killed at any moment (even SIGKILL) resumes with no lost and no duplicated labels.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from psilearn.label.base import Labeler, LabelError
from psilearn.label.hashing import structure_hash
from psilearn.label.store import LabelStore, label_key


@dataclass
class CampaignSummary:
    """What a campaign did. ``failures`` lists ``(input_index, structure_hash, stage, reason)``
    for every structure of this input whose stored result is a failure (new or from before)."""

    method: str
    method_hash: str
    n_input: int
    n_unique: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    failures: list[tuple[int, str, str, str]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [
            f"{self.method} [{self.method_hash[:12]}]: {self.n_input} structures "
            f"({self.n_unique} unique): {self.done} labelled now, {self.skipped} already in the "
            f"database, {self.failed} failed now, {len(self.failures)} failed in total "
            f"({self.seconds:.1f} s)"
        ]
        for idx, shash, stage, reason in self.failures:
            lines.append(f"  FAILED structure {idx} [{shash[:12]}] ({stage}): {reason}")
        return "\n".join(lines)


def label_one(labeler: Labeler, atoms: Atoms) -> dict[str, Any]:
    """Run one label; never raises: failures come back as ``{'status': 'failed', ...}``."""
    try:
        return {"status": "ok", "atoms": labeler.label(atoms)}
    except LabelError as exc:
        return {"status": "failed", "stage": exc.stage, "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - record every failure, never drop it
        return {"status": "failed", "stage": "internal", "reason": f"{type(exc).__name__}: {exc}"}


def _structure_key(atoms: Atoms) -> str:
    return structure_hash(atoms)


def run_campaign(
    structures: Sequence[Atoms],
    labeler: Labeler,
    db_path: str | Path,
    workers: int = 1,
    threads_per_worker: int = 1,
    scheduler: str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
) -> CampaignSummary:
    """Label ``structures`` with ``labeler`` into the ASE database ``db_path``.

    ``workers=0`` runs in this process without Dask (debugging). Otherwise a
    ``dask.distributed.LocalCluster`` of ``workers`` processes with ``threads_per_worker``
    threads each is started, unless ``scheduler`` (an address such as ``tcp://host:8786``) is
    given, in which case that cluster is used.
    """
    t0 = time.perf_counter()
    store = LabelStore(db_path)
    mhash = labeler.method_hash()
    store.register_method(labeler.name, mhash, labeler.spec())
    if retry_failed:
        store.delete_failed(mhash)
    shashes = [_structure_key(a) for a in structures]
    keys = [label_key(s, mhash) for s in shashes]
    unique: dict[str, int] = {}
    for i, k in enumerate(keys):
        unique.setdefault(k, i)
    existing = store.keys()
    pending = [i for k, i in unique.items() if k not in existing]
    summary = CampaignSummary(
        method=labeler.name, method_hash=mhash, n_input=len(structures), n_unique=len(unique),
        skipped=len(unique) - len(pending), keys=keys,
    )
    if pending:
        _execute(structures, shashes, pending, labeler, store, summary, workers,
                 threads_per_worker, scheduler, progress)
    for k, i in unique.items():
        row = store.get(shashes[i], mhash)
        if row is not None and row.key_value_pairs.get("label_status") == "failed":
            kv = row.key_value_pairs
            summary.failures.append((i, shashes[i], kv.get("label_stage", "?"), kv.get("label_error", "?")))
    summary.seconds = time.perf_counter() - t0
    return summary


def _execute(structures, shashes, pending, labeler, store, summary, workers, threads, scheduler, progress) -> None:
    from tqdm.auto import tqdm

    mhash = labeler.method_hash()
    bar = tqdm(total=len(pending), unit="label", desc=f"labeling {labeler.name}", disable=not progress,
               dynamic_ncols=True)

    def record(i: int, result: dict[str, Any]) -> None:
        written = store.write(structures[i], shashes[i], mhash, labeler.name, result)
        if not written:
            summary.duplicates += 1
        elif result["status"] == "ok":
            summary.done += 1
        else:
            summary.failed += 1
        bar.update(1)
        bar.set_postfix(failed=summary.failed, refresh=False)

    try:
        if workers == 0 and scheduler is None:
            for i in pending:
                record(i, label_one(labeler, structures[i]))
            return
        _execute_dask(structures, pending, labeler, record, workers, threads, scheduler, shashes, mhash)
    finally:
        bar.close()


def _execute_dask(structures, pending, labeler, record, workers, threads, scheduler, shashes, mhash) -> None:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"cannot connect to Dask scheduler {scheduler!r}: {exc}") from None
    else:
        if workers < 1 or threads < 1:
            raise ValueError("--workers and --threads-per-worker must be >= 1")
        # Inherited by the spawned worker processes, before they import PySCF/NumPy.
        os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
        import dask

        dask.config.set({"distributed.nanny.pre-spawn-environ.OMP_NUM_THREADS": threads,
                         "distributed.nanny.pre-spawn-environ.OPENBLAS_NUM_THREADS": threads,
                         "distributed.nanny.pre-spawn-environ.MKL_NUM_THREADS": threads})
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        futures = {}
        for i in pending:
            fut = client.submit(label_one, labeler, structures[i], pure=False,
                                key=f"label-{shashes[i][:16]}-{mhash[:8]}-{i}")
            futures[fut] = i
        for fut in as_completed(list(futures)):
            i = futures.pop(fut)
            try:
                result = fut.result()
            except Exception as exc:  # worker died (e.g. out of memory), task cancelled, ...
                result = {"status": "failed", "stage": "worker", "reason": f"{type(exc).__name__}: {exc}"}
            fut.release()
            record(i, result)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


#: keys that describe a frame or how it was labeled, not labels: never kept as KEY_input
BOOKKEEPING = frozenset({"numbers", "positions", "source", "charge", "multiplicity", "method", "method_hash",
                         "structure_hash", "label_units", "label_error", "label_seconds", "label_status"})


def _same(a: Any, b: Any) -> bool:
    try:
        x, y = np.asarray(a), np.asarray(b)
        if x.shape == y.shape and x.dtype.kind in "biuf" and y.dtype.kind in "biuf":
            return bool(np.allclose(x, y, rtol=1e-9, atol=1e-12, equal_nan=True))
        return bool(np.all(x == y)) if x.shape == y.shape else False
    except (TypeError, ValueError):
        return a == b


def keep_input_labels(inp: Atoms, out: Atoms) -> list[str]:
    """Put back into the labelled frame ``out`` what its input ``inp`` had and the labeling replaced:
    every input label (``info`` or ``arrays``, not :data:`BOOKKEEPING`) whose value differs in ``out``
    is kept as ``KEY_input`` (``KEY_input_input`` if that is taken by another value); input keys that
    ``out`` lacks are copied. Returns the replaced keys (``out`` is modified in place)."""
    replaced = []
    for src, dst in ((inp.info, out.info), (inp.arrays, out.arrays)):
        for key, value in src.items():
            if key in BOOKKEEPING:
                continue
            if key not in dst:
                if dst is out.info or len(value) == len(out):
                    dst[key] = value
                continue
            if _same(value, dst[key]):
                continue
            name = f"{key}_input"
            while name in dst and not _same(dst[name], value):
                name += "_input"
            dst[name] = value
            replaced.append(key)
    return replaced


def labelled_output(structures: Sequence[Atoms], summary: CampaignSummary, db_path: str | Path) -> tuple[list[Atoms], list[str]]:
    """What ``psilearn label -o`` writes: the labelled structures of this campaign's input, in input
    order, one per unique structure (failures left out), each the stored labels with the input's own
    labels that the labeling replaced kept as ``KEY_input`` (:func:`keep_input_labels`), never lost.
    Returns (frames, the replaced keys, sorted)."""
    store = LabelStore(db_path)
    first: dict[str, int] = {}
    for i, key in enumerate(summary.keys):
        first.setdefault(key, i)
    rows = {r.key_value_pairs["label_key"]: r for r in store.rows(label_status="ok", method_hash=summary.method_hash)}
    frames, replaced = [], set()
    for key, i in first.items():
        if key in rows:
            atoms = store.to_atoms(rows[key])
            replaced.update(keep_input_labels(structures[i], atoms))
            frames.append(atoms)
    return frames, sorted(replaced)
