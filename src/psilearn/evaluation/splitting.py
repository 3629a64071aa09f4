"""``psilearn split``: cut a data set into training, validation and test parts.

Random, by group (all structures sharing ``atoms.info[KEY]`` on one side) or by farthest-point
sampling on invariant SOAP descriptors (a training set that spans the data). The index logic is in
:mod:`psilearn.data.splits`; this module adds the descriptors, which live in a higher layer.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.data.splits import (
    check_fractions,
    farthest_point_fraction_split,
    group_fraction_split,
    random_fraction_split,
)

PART_NAMES = {2: ("train", "test"), 3: ("train", "val", "test")}


def part_names(n_parts: int) -> tuple[str, ...]:
    """'train', 'val', 'test' for three parts, 'train', 'test' for two, 'part0', ... otherwise."""
    return PART_NAMES.get(n_parts, tuple(f"part{i}" for i in range(n_parts)))


def split_structures(frames: list[Atoms], fractions, *, by: str | None = None, fps: bool = False, seed: int = 0,
                     soap=None, progress: bool = False) -> dict[str, np.ndarray]:
    """{part name: sorted frame indices} for ``fractions`` of ``frames`` (e.g. (0.8, 0.1, 0.1) ->
    train, val, test). ``by``: keep the structures of each value of ``atoms.info[by]`` together
    (fractions then hold approximately, in structures); ``fps``: the training part is picked by
    farthest-point sampling on :func:`psilearn.features.invariants.structure_invariants` (``soap``:
    a SoapConfig for them), the rest is shuffled into the other parts. Otherwise random. ``seed``
    fixes every choice."""
    fractions = check_fractions(fractions)
    if by and fps:
        raise ValueError("choose one of a split by group (--by) and a farthest-point split (--fps)")
    if by:
        missing = [i for i, a in enumerate(frames) if by not in a.info]
        if missing:
            raise ValueError(f"group key {by!r} missing from frame {missing[0]} ({len(missing)} of {len(frames)} frames lack it)")
        parts = group_fraction_split([a.info[by] for a in frames], fractions, seed)
    elif fps:
        from psilearn.features.invariants import structure_invariants

        parts = farthest_point_fraction_split(structure_invariants(frames, soap, progress=progress), fractions, seed)
    else:
        parts = random_fraction_split(len(frames), fractions, seed)
    return dict(zip(part_names(len(fractions)), parts))
