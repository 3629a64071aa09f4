"""Checks shared by every model kind at fit and predict time."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from psilearn.data.errors import DataError, frame_location
from psilearn.data.frame_checks import check_structure
from psilearn.errors import ConfigError


def check_training_data(target, data, min_structures: int = 2, why: str = "", partial_labels: bool = False,
                        pairs: bool = False) -> None:
    """ValueError if ``data`` was built for another Target; DataError if it is too small, if it
    has labels on only some atoms (a label mask) and the kind cannot use them (``partial_labels``),
    or if its target lives on atom pairs and the kind cannot fit those (``pairs``)."""
    if data.target != target:
        raise ValueError(f"dataset target {data.target.describe()} differs from model target {target.describe()}")
    if getattr(target, "per", None) == "pair" and not pairs:
        raise DataError(f"{target.key!r} is a per-pair target: it is fitted by the nn kind (--model nn; --model baseline gives the element-pair mean), "
                        "not this one")
    if getattr(data, "labelled", None) is not None and not partial_labels:
        raise DataError(f"labels on only some atoms (label mask {data.label_mask!r}) are supported by the sagpr and nn kinds only")
    if len(data) < min_structures:
        raise DataError(f"need at least {min_structures} training structures{' ' + why if why else ''}")


def check_fidelity_names(fidelity_key: str, target_level: str) -> None:
    """ConfigError for an empty fidelity key or target level (the arguments of every multi-fidelity kind)."""
    if not fidelity_key:
        raise ConfigError("--fidelity-key: empty")
    if not target_level:
        raise ConfigError("--target-fidelity: give the level to predict (a value of the fidelity key)")


def fidelity_levels(levels: list[str] | None, target_level: str) -> list[str] | None:
    """The given level order (--fidelities) as strings, None if not given; ConfigError unless each level
    occurs once and the target level is among them."""
    if levels is None:
        return None
    levels = [str(v) for v in levels]
    if len(set(levels)) != len(levels) or target_level not in levels:
        raise ConfigError(f"--fidelities {','.join(levels)}: each level once, and the target level {target_level!r} among them")
    return levels


def fidelity_of(frames: list[Atoms], key: str) -> np.ndarray:
    """The level name of every structure (DataError naming file and frame when one has none)."""
    out = []
    for i, a in enumerate(frames):
        if key not in a.info:
            raise DataError(f"{frame_location(a, i)}: no fidelity {key!r} in the structure's info (e.g. {key}=pbe0)")
        out.append(str(a.info[key]).strip())
    return np.array(out, dtype=object)


def order_levels(names: np.ndarray, fidelity_key: str, target_level: str, given: list[str], upto_target: bool) -> list[str]:
    """The levels to fit, cheapest first, from every training structure's level ``names``: those of ``given``
    (--fidelities) present in the data, in that order (only up to the target level with ``upto_target``), else
    the levels present by decreasing number of structures with the target last. DataError when no structure
    has the target level, one has a level not in ``given``, or a level of ``given`` that would be fitted has no
    structure (a misspelt --fidelities entry would otherwise drop a level without a word)."""
    present = sorted(set(names))
    if target_level not in present:
        raise DataError(f"no training structure has {fidelity_key}={target_level} (levels present: {', '.join(present)})")
    if given:
        unknown = sorted(set(present) - set(given))
        if unknown:
            raise DataError(f"training structures with {fidelity_key}={', '.join(unknown)}, not among the levels "
                            f"{', '.join(given)} (--fidelities)")
        kept = given[: given.index(target_level) + 1] if upto_target else given
        empty = [lv for lv in kept if lv not in present]
        if empty:
            raise DataError(f"level {empty[0]!r} (--fidelities) has no training structure ({fidelity_key}= values present: "
                            f"{', '.join(present)})")
        return list(kept)
    others = sorted((lv for lv in present if lv != target_level), key=lambda lv: (-int(np.sum(names == lv)), lv))
    return [*others, target_level]


def level_index(fidelity: str | None, levels: list[str], target_level: str) -> int:
    """Index in ``levels`` (cheapest first) of the level to predict: ``fidelity`` (predict --fidelity), else the
    model's target level. ConfigError naming the levels when it is not one of them."""
    level = target_level if fidelity is None else str(fidelity).strip()
    if level not in levels:
        raise ConfigError(f"fidelity {level!r} is not a level of this model (levels, cheapest first: {', '.join(levels)})")
    return levels.index(level)


def unknown_elements_message(new: list[int], species: list[int]) -> str:
    names = ", ".join(chemical_symbols[z] for z in new)
    have = ", ".join(chemical_symbols[z] for z in sorted(species))
    return f"element(s) {names} never seen in training (the model knows {have})"


def check_known_elements(frames: list[Atoms], species: list[int], message: Callable[[list[int], list[int]], str] | None = None) -> None:
    """DataError naming the file, frame and element(s) for elements absent from ``species``; ``message(new,
    species)`` words the reason (default: elements the model was not trained on)."""
    known = set(species)
    for i, a in enumerate(frames):
        new = sorted({int(z) for z in a.numbers} - known)
        if new:
            raise DataError(f"{frame_location(a, i)}: {(message or unknown_elements_message)(new, species)}")


def frames_to_predict(frames) -> list[Atoms]:
    """``frames`` (one Atoms or an iterable of them) as a list; DataError if it is empty or holds a
    structure no model can use (:func:`psilearn.data.frame_checks.check_structure`: frames built in
    memory, e.g. by the ASE calculator, get the checks read_structures applies to files)."""
    frames = [frames] if isinstance(frames, Atoms) else list(frames)
    if not frames:
        raise DataError("empty batch: no structures to predict")
    for i, a in enumerate(frames):
        if not isinstance(a, Atoms):
            raise DataError(f"structure {i}: expected an ase.Atoms, got {type(a).__name__}")
        check_structure(a, frame_location(a, i))
    return frames


def geometry_key(a: Atoms) -> bytes:
    """Identity of a structure's geometry (elements, positions and cell to 1e-6 Angstrom): the same geometry
    labelled at two levels of theory has one key."""
    return (a.numbers.tobytes() + np.round(a.positions, 6).tobytes() + np.round(np.asarray(a.cell), 6).tobytes()
            + np.asarray(a.pbc).tobytes())
