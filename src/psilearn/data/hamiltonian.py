"""Hamiltonian labels as data: the HamiltonianTarget of a labelled file, and HamiltonianDatasets.

A structure labelled with ``--observables hamiltonian`` carries ``hamiltonian`` (F, Hartree) and
``overlap`` (S), both n_ao x n_ao flattened row-major in PySCF's AO order, ``orbital_energies``,
``mo_occ``, ``hamiltonian_basis`` and ``hamiltonian_shells`` in ``atoms.info``
(:mod:`psilearn.label.hamiltonian`, docs/hamiltonian.md). Every check names the file and frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from psilearn.data.dataset import Dataset
from psilearn.data.density import _recorded, labelled_frames
from psilearn.data.errors import DataError, frame_location
from psilearn.targets.density import parse_shells
from psilearn.targets.hamiltonian import HAMILTONIAN_KEY, HamiltonianTarget

BASIS_KEY, SHELLS_KEY, OVERLAP_KEY = "hamiltonian_basis", "hamiltonian_shells", "overlap"


def hamiltonian_target(frames: list[Atoms], key: str = HAMILTONIAN_KEY) -> HamiltonianTarget:
    """The HamiltonianTarget recorded in labelled ``frames``: their basis and, per element, shells
    (from ``hamiltonian_shells``; DataError when frames disagree)."""
    if not frames:
        raise DataError("no structures")
    basis = _recorded(frames, BASIS_KEY, "orbital bases")
    shells: dict[str, tuple[int, ...]] = {}
    for i, a in enumerate(frames):
        if SHELLS_KEY not in a.info:
            raise DataError(f"{frame_location(a, i)}: no {SHELLS_KEY!r} recorded with the hamiltonian labels "
                            f"(label with psilearn label --observables hamiltonian)")
        for sym, ls in parse_shells(a.info[SHELLS_KEY]).items():
            if shells.setdefault(sym, ls) != ls:
                raise DataError(f"{frame_location(a, i)}: the basis functions of {sym} differ from those of "
                                f"earlier frames in the same basis {basis!r}")
    return HamiltonianTarget(basis, tuple(shells.items()), key)


def _matrix(atoms: Atoms, i: int, key: str, n: int, flag: str) -> np.ndarray:
    where = frame_location(atoms, i)
    if key not in atoms.info:
        avail = sorted(k for k in atoms.info if k not in ("source",))
        raise DataError(f"{where}: no label {key!r} (labels present: {', '.join(avail) or 'none'}); {flag}")
    try:
        m = np.asarray(atoms.info[key], dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise DataError(f"{where}: label {key!r} is not numeric") from None
    if m.size != n * n:
        raise DataError(f"{where}: {m.size} {key!r} entries, expected {n}x{n} = {n * n} for "
                        f"{atoms.get_chemical_formula()} in the model's basis")
    if not np.all(np.isfinite(m)):
        raise DataError(f"{where}: label {key!r} contains NaN or infinite values")
    return m


def check_hamiltonian_frame(atoms: Atoms, i: int, target: HamiltonianTarget, overlap: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """The validated flat F (and S, when ``overlap``) of one labelled structure for ``target``."""
    where, info = frame_location(atoms, i), atoms.info
    have = str(info.get(BASIS_KEY, target.basis)).strip().lower()
    if have != target.basis:
        raise DataError(f"{where}: the hamiltonian was labelled in basis {have!r}, but the target is in {target.basis!r}")
    if atoms.pbc.any():
        raise DataError(f"{where}: periodic structure: the hamiltonian kind learns molecules only (no k-points)")
    for sym in set(atoms.get_chemical_symbols()):
        if sym not in target.elements:
            raise DataError(f"{where}: element {sym} is not in the hamiltonian target (basis {target.basis!r}; "
                            f"elements {', '.join(target.elements)})")
    if SHELLS_KEY in info:
        for sym, ls in parse_shells(info[SHELLS_KEY]).items():
            if sym in target.elements and tuple(ls) != target.shells_of(sym):
                raise DataError(f"{where}: the recorded basis functions of {sym} differ from the target's")
    n = target.n_ao(atoms)
    flag = "label with psilearn label --observables hamiltonian"
    h = _matrix(atoms, i, target.key, n, flag)
    s = _matrix(atoms, i, OVERLAP_KEY, n, flag) if overlap else None
    return h, s


@dataclass
class HamiltonianDataset(Dataset):
    """Structures with validated Hamiltonians: ``values`` is every structure's flat F concatenated
    (Hartree, PySCF's order), ``overlaps`` the same for S; ``offsets[i]:offsets[i + 1]`` the slice of
    structure ``i``."""

    overlaps: np.ndarray = field(default=None, repr=False)
    offsets: np.ndarray = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.offsets is None:
            sizes = [self.target.n_ao(a) ** 2 for a in self.frames]
            self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)

    def matrix(self, i: int) -> np.ndarray:
        """F of structure ``i``, (n_ao, n_ao), Hartree."""
        n = self.target.n_ao(self.frames[i])
        return self.values[self.offsets[i] : self.offsets[i + 1]].reshape(n, n)

    def overlap(self, i: int) -> np.ndarray:
        """S of structure ``i``, (n_ao, n_ao)."""
        n = self.target.n_ao(self.frames[i])
        return self.overlaps[self.offsets[i] : self.offsets[i + 1]].reshape(n, n)

    def subset(self, idx) -> "HamiltonianDataset":
        idx = np.asarray(idx, dtype=int)
        cat = lambda arr: np.concatenate([arr[self.offsets[i] : self.offsets[i + 1]] for i in idx]) if len(idx) else arr[:0]  # noqa: E731
        return HamiltonianDataset([self.frames[i] for i in idx], self.target, cat(self.values), self.name, overlaps=cat(self.overlaps))


def load_hamiltonian_dataset(source, target: HamiltonianTarget | None = None) -> HamiltonianDataset:
    """A HamiltonianDataset from a path/spec (``labelled.xyz@:100``) or a list of Atoms; ``target``
    defaults to the one recorded in the file (:func:`hamiltonian_target`)."""
    frames, name = labelled_frames(source)
    if target is None:
        target = hamiltonian_target(frames)
    pairs = [check_hamiltonian_frame(a, i, target) for i, a in enumerate(frames)]
    return HamiltonianDataset(frames, target, np.concatenate([h for h, _ in pairs]), name,
                              overlaps=np.concatenate([s for _, s in pairs]))


def truncated(target: HamiltonianTarget, atoms: Atoms, h: np.ndarray, cutoff: float) -> np.ndarray:
    """F with the blocks of atom pairs at least ``cutoff`` (Angstrom) apart set to zero: what a model
    with that cutoff would predict at best (molecules; distances without periodic images)."""
    off = target.offsets(atoms)
    d = atoms.get_all_distances()
    out = np.array(h, dtype=np.float64, copy=True)
    for i in range(len(atoms)):
        for j in range(len(atoms)):
            if i != j and d[i, j] >= cutoff:
                out[off[i]:off[i + 1], off[j]:off[j + 1]] = 0.0
    return out


def check_prediction_inputs(frames: list[Atoms], target: HamiltonianTarget, kind: str) -> None:
    """DataError naming file and frame for an input a Hamiltonian model of ``kind`` cannot predict:
    hamiltonian labels in another basis than the model's, or a periodic structure."""
    for i, a in enumerate(frames):
        where = frame_location(a, i)
        have = str(a.info.get(BASIS_KEY, target.basis)).strip().lower()
        if have != target.basis:
            raise DataError(f"{where}: the input's hamiltonian labels are in basis {have!r} but the model "
                            f"was trained on and predicts {target.basis!r}")
        if a.pbc.any():
            raise DataError(f"{where}: periodic structure: the {kind} kind predicts molecules only")
