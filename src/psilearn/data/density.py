"""Density labels as data: the DensityTarget of a labelled file, and DensityDatasets.

A structure labelled with ``--observables density`` carries ``density_coefficients`` (flat, PySCF's
order), ``density_aux_basis``, ``density_metric`` and ``density_aux_shells`` in ``atoms.info``
(:mod:`psilearn.label.density`), and ``density_core_electrons`` per atom in ``atoms.arrays`` (the
electrons replaced by effective core potentials). Every check names the file and frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from psilearn.data.dataset import Dataset
from psilearn.data.errors import DataError, frame_location
from psilearn.targets.density import CORE_KEY, DENSITY_KEY, DensityTarget, parse_shells

BASIS_KEY, METRIC_KEY, SHELLS_KEY = "density_aux_basis", "density_metric", "density_aux_shells"
#: The orbital basis whose ECPs decide whether a file without ``density_core_electrons`` is refused,
#: when the frame records no ``method`` (def2 JK-fitting aux bases go with def2's ECPs).
DEFAULT_ECP_BASIS = "def2-svp"


def orbital_basis(atoms: Atoms) -> str:
    """The orbital basis of the labelling method ``info['method']`` (``'pbe/def2-svp'`` -> ``'def2-svp'``),
    or :data:`DEFAULT_ECP_BASIS` when none is recorded."""
    parts = str(atoms.info.get("method") or "").strip().lower().split("/")
    return parts[1] if len(parts) >= 2 and parts[1] else DEFAULT_ECP_BASIS


def frame_core_electrons(atoms: Atoms, where: str = "") -> np.ndarray:
    """Electrons replaced by each atom's effective core potential, (n_atoms,) int, as the labeler
    records them (``atoms.arrays['density_core_electrons']``). A frame written before they were
    recorded gets zeros, unless one of its elements has an ECP in the orbital basis of its method
    (:func:`orbital_basis`): its density then may hold only the valence electrons (or, labelled
    before psilearn used ECPs, was computed without them), and it is refused (DataError, one line)."""
    from psilearn.targets.ao_basis import ecp_table

    where = f"{where}: " if where else ""
    if CORE_KEY not in atoms.arrays:
        basis = orbital_basis(atoms)
        ecp = sorted(ecp_table(basis, atoms.get_chemical_symbols()))
        if ecp:
            raise DataError(f"{where}no {CORE_KEY!r} recorded, but {', '.join(ecp)} {'has an' if len(ecp) == 1 else 'have'} "
                            f"effective core potential{'s' if len(ecp) > 1 else ''} in basis {basis!r}: the density's "
                            "electron count and nuclear charges are unknown (relabel with this psilearn version)")
        return np.zeros(len(atoms), dtype=int)
    core = np.asarray(atoms.arrays[CORE_KEY]).reshape(-1)
    if core.shape != (len(atoms),) or not np.all(np.isfinite(core.astype(float))) or np.any(core < 0) \
            or np.any(core != np.round(core)) or np.any(core > atoms.numbers):
        raise DataError(f"{where}{CORE_KEY!r} must be one non-negative integer <= Z per atom, got {core.tolist()}")
    return core.astype(int)


def _element_cores(frames: list[Atoms]) -> dict[str, int]:
    """{element: ECP core electrons} over ``frames`` (nonzero only); DataError when an element's differ."""
    core: dict[str, tuple[int, int]] = {}
    for i, a in enumerate(frames):
        for sym, n in zip(a.get_chemical_symbols(), frame_core_electrons(a, frame_location(a, i))):
            n0, i0 = core.setdefault(sym, (int(n), i))
            if n0 != n:
                raise DataError(f"{frame_location(a, i)}: {sym} has {n} ECP core electrons, but {n0} in "
                                f"{frame_location(frames[i0], i0)} (labelled with different ECPs)")
    return {s: n for s, (n, _) in core.items() if n}


def _recorded(frames: list[Atoms], name: str, label: str) -> str:
    """The one value of ``info[name]`` over ``frames`` (DataError when absent or mixed)."""
    values: dict[str, int] = {}
    for i, a in enumerate(frames):
        if name not in a.info:
            raise DataError(f"{frame_location(a, i)}: no {name!r} recorded with the density labels "
                            f"(label with psilearn label --observables density)")
        values.setdefault(str(a.info[name]).strip().lower(), i)
    if len(values) > 1:
        (v0, i0), (v1, i1) = list(values.items())[:2]
        raise DataError(f"the structures were labelled with different {label}: {v0!r} "
                        f"({frame_location(frames[i0], i0)}) and {v1!r} ({frame_location(frames[i1], i1)})")
    return next(iter(values))


def density_target(frames: list[Atoms], key: str = DENSITY_KEY) -> DensityTarget:
    """The DensityTarget recorded in labelled ``frames``: their aux basis, metric and shells (from
    ``density_aux_shells``; from PySCF for files that do not record them)."""
    if not frames:
        raise DataError("no structures")
    basis = _recorded(frames, BASIS_KEY, "auxiliary bases")
    metric = _recorded(frames, METRIC_KEY, "density-fitting metrics")
    core = tuple(_element_cores(frames).items())
    shells: dict[str, tuple[int, ...]] = {}
    for i, a in enumerate(frames):
        if SHELLS_KEY not in a.info:
            elements = sorted({s for f in frames for s in f.get_chemical_symbols()})
            return DensityTarget.from_basis(basis, elements, metric, key, core)
        for sym, ls in parse_shells(a.info[SHELLS_KEY]).items():
            if shells.setdefault(sym, ls) != ls:
                raise DataError(f"{frame_location(a, i)}: the auxiliary functions of {sym} differ from those of "
                                f"earlier frames in the same basis {basis!r}")
    return DensityTarget(basis, tuple(shells.items()), metric, key, core_electrons=core)


def check_density_frame(atoms: Atoms, i: int, target: DensityTarget) -> np.ndarray:
    """The validated coefficient vector of one labelled structure for ``target``."""
    where, info = frame_location(atoms, i), atoms.info
    if target.key not in info:
        avail = sorted(k for k in list(info) + list(atoms.arrays) if k not in ("numbers", "positions", "source"))
        raise DataError(f"{where}: no label {target.key!r} (labels present: {', '.join(avail) or 'none'}); "
                        f"label with psilearn label --observables density")
    for name, want, what, flag in ((BASIS_KEY, target.aux_basis, "auxiliary basis", "--aux-basis"),
                                   (METRIC_KEY, target.metric, "metric", "--density-metric")):
        have = str(info.get(name, "")).strip().lower()
        if have and have != want:
            raise DataError(f"{where}: {target.key!r} was fitted with {what} {have!r}, but the target expects "
                            f"{want!r} (relabel with {flag} {want}, or use the file's own target: "
                            f"psilearn.data.density_target(frames))")
    target.check_elements(atoms, where)
    core, want = frame_core_electrons(atoms, where), target.core_of(atoms)
    if np.any(core != want):
        k = int(np.argmax(core != want))
        raise DataError(f"{where}: atom {k} ({atoms[k].symbol}) was labelled with {core[k]} ECP core electrons, but the "
                        f"target expects {want[k]} (a density of another ECP; use the file's own target)")
    if SHELLS_KEY in info:
        for sym, ls in parse_shells(info[SHELLS_KEY]).items():
            if sym in target.elements and tuple(ls) != target.shells[target.elements.index(sym)][1]:
                raise DataError(f"{where}: the recorded auxiliary functions of {sym} differ from the target's "
                                f"for the same basis {target.aux_basis!r} (another PySCF basis library?)")
    try:
        c = np.asarray(info[target.key], dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise DataError(f"{where}: label {target.key!r} is not numeric") from None
    if c.size != target.size(atoms):
        raise DataError(f"{where}: {c.size} density coefficients, expected {target.size(atoms)} for "
                        f"{atoms.get_chemical_formula()} in auxiliary basis {target.aux_basis!r}")
    if not np.all(np.isfinite(c)):
        raise DataError(f"{where}: label {target.key!r} contains NaN or infinite values")
    return c


@dataclass
class DensityDataset(Dataset):
    """Structures with validated density coefficients: ``values`` is every structure's flat vector
    concatenated (PySCF's order), ``offsets[i]:offsets[i + 1]`` the slice of structure ``i``."""

    offsets: np.ndarray = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.offsets is None:
            sizes = [self.target.size(a) for a in self.frames]
            self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)

    def coefficients(self, i: int) -> np.ndarray:
        """The flat coefficient vector of structure ``i`` (PySCF's order)."""
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def subset(self, idx) -> "DensityDataset":
        idx = np.asarray(idx, dtype=int)
        parts = [self.coefficients(i) for i in idx]
        values = np.concatenate(parts) if parts else self.values[:0]
        return DensityDataset([self.frames[i] for i in idx], self.target, values, self.name)


def labelled_frames(source) -> tuple[list[Atoms], str]:
    """(structures, name) of a path/spec (read with :func:`psilearn.data.io.read_structures`) or a list
    of Atoms (named ``<memory>``); DataError when there are none."""
    from psilearn.data.io import read_structures

    frames, name = (list(source), "<memory>") if isinstance(source, (list, tuple)) else (read_structures(source), str(source))
    if not frames:
        raise DataError(f"{name}: no structures")
    return frames, name


def load_density_dataset(source, target: DensityTarget | None = None) -> DensityDataset:
    """A DensityDataset from a path/spec (``labelled.xyz@:100``) or a list of Atoms; ``target``
    defaults to the one recorded in the file (:func:`density_target`)."""
    frames, name = labelled_frames(source)
    if target is None:
        target = density_target(frames)
    values = [check_density_frame(a, i, target) for i, a in enumerate(frames)]
    return DensityDataset(frames, target, np.concatenate(values), name)
