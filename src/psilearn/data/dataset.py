"""A Dataset pairs structures with the validated values of one Target."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from psilearn.data.errors import DataError, frame_location
from psilearn.data.frame_checks import check_structure
from psilearn.data.io import read_structures
from psilearn.targets import Target

_SYM_RTOL = 1e-6  # relative tolerance for "this tensor has the declared symmetry"


def read_label_mask(frames: list[Atoms], target: Target, key: str) -> np.ndarray:
    """Which atoms carry the per-atom label (``atoms.arrays[key]`` nonzero, e.g. ``has_tensor``), as
    a boolean array over all atoms in frame order. DataError naming file and frame for a structure
    target, a missing or non-numeric mask, or no labelled atom at all."""
    if target.per != "atom":
        raise DataError(f"a label mask ({key!r}) applies to per-atom targets only (--per atom)")
    out = []
    for i, atoms in enumerate(frames):
        if key not in atoms.arrays:
            raise DataError(f"{frame_location(atoms, i)}: no per-atom label mask {key!r}")
        try:
            m = np.asarray(atoms.arrays[key], dtype=np.float64).reshape(len(atoms), -1)
        except (TypeError, ValueError):
            raise DataError(f"{frame_location(atoms, i)}: label mask {key!r} is not numeric (1: labelled, 0: not)") from None
        if m.shape[1] != 1 or not np.all(np.isfinite(m)):
            raise DataError(f"{frame_location(atoms, i)}: label mask {key!r} needs one finite number per atom (1: labelled, 0: not)")
        out.append(m[:, 0] != 0)
    labelled = np.concatenate(out) if out else np.zeros(0, bool)
    if not labelled.any():
        raise DataError(f"label mask {key!r}: no atom is labelled")
    return labelled


def extract_values(frames: list[Atoms], target: Target, labelled: np.ndarray | None = None) -> np.ndarray:
    """Labels of ``target`` as a float64 array: (n_structures, 3**rank) per structure, or
    (n_atoms_total, 3**rank) per atom (atoms in frame order). With ``labelled`` (per-atom targets:
    a boolean per atom, :func:`read_label_mask`) only the labelled atoms' rows are returned and
    checked; the others' values (NaN, zeros) are never read. Raises DataError naming file, frame and
    key for a missing key, a wrong number of components, or a non-finite value."""
    key, size, rows = target.key, target.size, []
    start = 0
    for i, atoms in enumerate(frames):
        store, other = (atoms.info, atoms.arrays) if target.per == "structure" else (atoms.arrays, atoms.info)
        where = frame_location(atoms, i)
        if key not in store:
            if key in other:
                other_per = "atom" if target.per == "structure" else "structure"
                raise DataError(f"{where}: {key!r} is a per-{other_per} label here; declare the target with per={other_per!r} (--per {other_per})")
            avail = sorted(k for k in list(atoms.info) + list(atoms.arrays) if k not in ("numbers", "positions", "source"))
            raise DataError(f"{where}: no label {key!r} (labels present: {', '.join(avail) or 'none'})")
        try:
            raw = np.asarray(store[key], dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{where}: label {key!r} is not numeric") from None
        form = f"tensor {target.tensor!r}" if target.tensor else "scalar"
        if target.per == "structure":
            if raw.size != size:
                raise DataError(f"{where}: label {key!r} has {raw.size} numbers, expected {size} for a {form} (row-major, flattened)")
            vals = raw.reshape(1, size)
        else:
            if raw.size != size * len(atoms):
                raise DataError(f"{where}: per-atom label {key!r} has {raw.size} numbers for {len(atoms)} atoms, expected {size} per atom for a {form}")
            vals = raw.reshape(len(atoms), size)
            if labelled is not None:
                vals = vals[labelled[start : start + len(atoms)]]
            start += len(atoms)
        if not np.all(np.isfinite(vals)):
            raise DataError(f"{where}: label {key!r} contains NaN or infinite values")
        rows.append(vals)
    return np.concatenate(rows) if rows else np.zeros((0, size))


def check_symmetry(frames: list[Atoms], target: Target, values: np.ndarray, symmetrize: bool,
                   sample_structure: np.ndarray | None = None) -> np.ndarray:
    """Check that ``values`` have the Target's declared symmetry (index permutations, tracelessness).
    Returns the projected values when ``symmetrize`` is set; otherwise raises DataError reporting the
    largest violation and where it is (``sample_structure``: the structure of each row, when not
    every atom has one)."""
    if target.rank < 2 and not target.traceless:
        return values
    projected = target.project(values)
    resid = np.abs(values - projected).max(axis=1)
    scale = np.abs(values).max(axis=1)
    bad = resid > _SYM_RTOL * scale + 1e-12
    if not bad.any():
        return projected
    if symmetrize:
        return projected
    worst = int(np.argmax(np.where(bad, resid / np.maximum(scale, 1e-300), 0)))
    if sample_structure is not None:
        frame = int(sample_structure[worst])
    else:
        frame = worst if target.per == "structure" else int(np.searchsorted(np.cumsum([len(a) for a in frames]), worst, side="right"))
    what = "traceless/symmetric" if target.traceless else "symmetric"
    raise DataError(
        f"{frame_location(frames[frame], frame)}: label {target.key!r} is declared {target.tensor!r}"
        f"{' traceless' if target.traceless else ''} but is not {what}: largest violation {resid[worst]:.3g} "
        f"(relative {resid[worst] / max(scale[worst], 1e-300):.2e}) in {int(bad.sum())} of {len(bad)} values; "
        f"pass --symmetrize to project onto the declared symmetry"
    )


@dataclass
class Dataset:
    """Structures with validated labels of one Target.

    ``values``: Cartesian labels, (n_structures, 3**rank) for structure targets or
    (n_atoms_total, 3**rank) for atom targets, in the units of the file. Per-atom labels present on
    only some atoms (``load_dataset(..., label_mask="has_tensor")``): ``labelled`` is a boolean per
    atom (all atoms, frame order), ``values`` holds the labelled atoms' rows only and ``label_mask``
    names the mask; models that accept such data use ``sample_structure`` and ``labelled``.
    Per-pair targets: ``pairs[s]`` the canonical (i < j) atom pairs (P_s, 2) of structure s and
    ``values`` one row per pair, structures in order (:mod:`psilearn.data.pairs`).
    """

    frames: list[Atoms]
    target: Target
    values: np.ndarray
    name: str = ""
    labelled: np.ndarray | None = None
    label_mask: str | None = None
    pairs: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def species(self) -> list[int]:
        return sorted({int(z) for a in self.frames for z in a.numbers})

    @property
    def atom_structure(self) -> np.ndarray:
        """Index of the structure each atom belongs to, (n_atoms_total,)."""
        return np.repeat(np.arange(len(self.frames)), [len(a) for a in self.frames])

    @property
    def sample_structure(self) -> np.ndarray:
        """Index of the structure of each row of ``values`` (the labelled atoms only, with a mask)."""
        if self.target.per == "structure":
            return np.arange(len(self.frames))
        if self.pairs is not None:
            return np.repeat(np.arange(len(self.frames)), [len(p) for p in self.pairs])
        s = self.atom_structure
        return s if self.labelled is None else s[self.labelled]

    def subset(self, idx) -> "Dataset":
        """Structures ``idx`` (and, for atom targets, their atoms' values and label mask)."""
        idx = np.asarray(idx, dtype=int)
        frames = [self.frames[i] for i in idx]
        labelled, pairs = None, None
        if self.target.per == "structure":
            values = self.values[idx]
        elif self.pairs is not None:
            from psilearn.data.pairs import pair_offsets

            offsets = pair_offsets(self.pairs)
            pairs = [self.pairs[i] for i in idx]
            values = np.concatenate([self.values[offsets[i] : offsets[i + 1]] for i in idx]) if len(idx) else self.values[:0]
        else:
            sizes = [len(a) for a in self.frames]
            if self.labelled is not None:
                atoms = np.concatenate([[0], np.cumsum(sizes)])
                labelled = np.concatenate([self.labelled[atoms[i] : atoms[i + 1]] for i in idx]) if len(idx) else self.labelled[:0]
                sizes = [int(self.labelled[atoms[i] : atoms[i + 1]].sum()) for i in range(len(self.frames))]
            offsets = np.concatenate([[0], np.cumsum(sizes)])
            values = np.concatenate([self.values[offsets[i] : offsets[i + 1]] for i in idx]) if len(idx) else self.values[:0]
        return Dataset(frames, self.target, values, self.name, labelled, self.label_mask, pairs)

    def fingerprint(self) -> str:
        """SHA-256 of the structures and labels: identifies the training data in model files."""
        h = hashlib.sha256()
        h.update(repr(self.target.to_dict()).encode())
        for a in self.frames:
            h.update(np.ascontiguousarray(a.numbers, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(a.positions, dtype=np.float64).round(8).tobytes())
            h.update(np.ascontiguousarray(a.cell[:], dtype=np.float64).round(8).tobytes())
        h.update(np.ascontiguousarray(self.values, dtype=np.float64).tobytes())
        if self.labelled is not None:
            h.update(np.ascontiguousarray(self.labelled, dtype=np.uint8).tobytes())
        for p in self.pairs or []:
            h.update(np.ascontiguousarray(p, dtype=np.int64).tobytes())
        return h.hexdigest()


def load_dataset(source, target: Target, symmetrize: bool = False, label_mask: str | None = None) -> Dataset:
    """Read structures (a path/spec such as ``coords.xyz@:200``, or a list of Atoms) and validate
    the Target's labels. See :func:`extract_values` and :func:`check_symmetry` for the checks.
    ``label_mask``: for per-atom labels present on only some atoms, the per-atom array saying which
    (nonzero: labelled, e.g. ``has_tensor``); the other atoms' values are ignored (no dummies).
    A :class:`psilearn.targets.DensityTarget` gives a DensityDataset (:mod:`psilearn.data.density`)."""
    if getattr(target, "kind", None) == "density":
        from psilearn.data.density import load_density_dataset

        return load_density_dataset(source, target)
    if isinstance(source, (list, tuple)):
        frames, name = list(source), "<memory>"
        for i, atoms in enumerate(frames):
            check_structure(atoms, frame_location(atoms, i))
    else:
        frames, name = read_structures(source), str(source)
    if not frames:
        raise DataError(f"{name}: no structures")
    if target.per == "pair":
        if label_mask:
            raise DataError(f"a label mask ({label_mask!r}) applies to per-atom targets only; a per-pair label lists its own pairs")
        from psilearn.data.pairs import extract_pair_values

        values, pairs = extract_pair_values(frames, target)
        ds = Dataset(frames, target, values, name, pairs=pairs)
        ds.values = check_symmetry(frames, target, values, symmetrize, ds.sample_structure)
        return ds
    labelled = read_label_mask(frames, target, label_mask) if label_mask else None
    values = extract_values(frames, target, labelled)
    ds = Dataset(frames, target, values, name, labelled, label_mask or None)
    ds.values = check_symmetry(frames, target, values, symmetrize, ds.sample_structure if labelled is not None else None)
    return ds
