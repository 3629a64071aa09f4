"""Where labels come from: the pool itself (``--oracle KEY``, for benchmarks) or a labeling method
run through the resumable label store (``--method``), so labels persist as they arrive and a
structure is never labelled twice, whenever the run is killed."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.errors import ConfigError, DataError


class OracleLabels:
    """Labels already in the pool: ``key`` of each frame (in ``info`` or ``arrays``)."""

    def __init__(self, pool: list[Atoms], key: str, name: str) -> None:
        for i, atoms in enumerate(pool):
            if key not in atoms.info and key not in atoms.arrays:
                raise DataError(f"{name}: frame {i} has no label {key!r} (--oracle reads the labels from the pool; "
                                f"every frame needs it)")
        self.pool = pool
        self.key = key

    def label(self, indices: list[int], progress: bool = False) -> dict[int, Atoms | str]:
        """Pool index -> labelled structure (here: the pool frame)."""
        return {i: self.pool[i] for i in indices}

    def describe(self) -> str:
        return f"oracle {self.key} (labels read from the pool)"


class MethodLabels:
    """Labels computed by ``method`` (gfn2, XC/BASIS) into the label store ``db``, on Dask
    (:func:`psilearn.label.campaign.run_campaign`). ``observables`` default: the one computing the
    Target's key (``alpha`` -> polarizability, ``dipole_moment`` -> dipole, ...)."""

    def __init__(self, pool: list[Atoms], key: str, method: str, db: str, observables: str | None = None,
                 workers: int = 0, scheduler: str | None = None) -> None:
        from psilearn.label.registry import make_labeler
        from psilearn.models.fidelity.baseline_method import OBSERVABLE_OF

        if observables is None:
            if key not in OBSERVABLE_OF:
                raise ConfigError(f"--method: no labeler observable writes {key!r}; name --target after a label key "
                                  f"({', '.join(sorted(OBSERVABLE_OF))}) or give --observables")
            observables = OBSERVABLE_OF[key]
        self.labeler = make_labeler(method, observables)
        self.pool, self.key, self.db = pool, key, db
        self.workers, self.scheduler = workers, scheduler

    def label(self, indices: list[int], progress: bool = False) -> dict[int, Atoms | str]:
        """Pool index -> labelled structure, or the failure's reason (str). Structures already in the
        store with this method hash are read, not recomputed."""
        from psilearn.label.campaign import run_campaign
        from psilearn.label.hashing import structure_hash
        from psilearn.label.store import LabelStore

        frames = [self.pool[i] for i in indices]
        if frames:
            run_campaign(frames, self.labeler, self.db, workers=self.workers, scheduler=self.scheduler, progress=progress)
        store, mhash = LabelStore(self.db), self.labeler.method_hash()
        out: dict[int, Atoms | str] = {}
        for i, atoms in zip(indices, frames):
            row = store.get(structure_hash(atoms), mhash)
            kv = row.key_value_pairs if row is not None else {}
            if row is None or kv.get("label_status") != "ok":
                out[i] = f"{kv.get('label_stage', 'missing')}: {kv.get('label_error', 'no result stored')}"
                continue
            labelled = store.to_atoms(row)
            if self.key not in labelled.info and self.key not in labelled.arrays:
                raise DataError(f"{self.db}: the {self.labeler.name} labels have no {self.key!r}; check --observables")
            out[i] = labelled
        return out

    def describe(self) -> str:
        return f"{self.labeler.name} [{self.labeler.method_hash()[:12]}] into {self.db}"


def order_indices(rounds: list[dict]) -> list[int]:
    """Every pool index selected so far, in selection order (each once)."""
    seen: dict[int, None] = {}
    for r in rounds:
        for i in r["selected"]:
            seen.setdefault(int(i), None)
    return list(seen)


def check_unique(indices) -> None:
    """RuntimeError if a pool index was selected twice (the loop's invariant)."""
    idx = np.asarray(list(indices), int)
    if len(np.unique(idx)) != len(idx):
        raise RuntimeError("active learning selected a structure twice; this is a bug")
