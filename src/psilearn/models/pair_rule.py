"""Which atom pairs a per-pair model predicts (any model kind that supports per-pair targets).

A structure that lists pairs (``atoms.info["KEY_pairs"]``) gets exactly those; one that does not
gets the training rule: every pair of an element pair seen in training no farther apart than the
longest training pair. Pairs beyond the model's reach (its pair head's radial cutoff, where its
features vanish) or of an element pair never seen in training are refused with one line naming
the file, frame and pair, never predicted silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from psilearn.data.errors import DataError, frame_location
from psilearn.data.pairs import pair_vectors, pairs_within, read_frame_pairs

# the pair head's radial cutoff, relative to the longest training pair: its smooth envelope must not
# silence the longest pairs, and a modestly longer pair in a new structure is still within reach
REACH = 1.25


@dataclass
class PairRule:
    """``max_distance`` the longest training pair (Angstrom); ``element_pairs`` the (Z_a <= Z_b) seen."""

    max_distance: float
    element_pairs: list[tuple[int, int]]

    @property
    def reach(self) -> float:
        """The pair head's radial cutoff (Angstrom): no pair at or beyond it is predicted."""
        return REACH * self.max_distance

    @classmethod
    def from_data(cls, frames: list[Atoms], pairs: list[np.ndarray]) -> "PairRule":
        """The rule of a training set: its longest pair and its element pairs."""
        longest, seen = 0.0, set()
        for k, (a, p) in enumerate(zip(frames, pairs)):
            if len(p):
                longest = max(longest, float(np.linalg.norm(pair_vectors(a, p, frame_location(a, k)), axis=1).max()))
                z = np.sort(a.numbers[p], axis=1)
                seen.update((int(x), int(y)) for x, y in z)
        if longest <= 0:
            raise DataError("per-pair training data: every pair has zero length or there is no pair")
        return cls(longest, sorted(seen))

    def to_dict(self) -> dict:
        return {"max_distance": self.max_distance, "element_pairs": [list(t) for t in self.element_pairs]}

    @classmethod
    def from_dict(cls, d: dict) -> "PairRule":
        return cls(float(d["max_distance"]), [(int(a), int(b)) for a, b in d["element_pairs"]])

    def frame_pairs(self, frames: list[Atoms], target) -> list[np.ndarray]:
        """The pairs (P_s, 2) to predict in each structure (see the module docstring)."""
        known = set(self.element_pairs)
        out = []
        for i, a in enumerate(frames):
            if target.pairs_key not in a.info:
                out.append(pairs_within(a, self.max_distance, known, frame_location(a, i)))
                continue
            p, _ = read_frame_pairs(a, i, target, with_values=False)
            if len(p):
                d = np.linalg.norm(pair_vectors(a, p, frame_location(a, i)), axis=1)
                far = np.flatnonzero(d >= self.reach)
                if len(far):
                    k = int(far[0])
                    raise DataError(f"{frame_location(a, i)}: pair ({p[k, 0]}, {p[k, 1]}) of {target.pairs_key!r} is {d[k]:.3f} A apart, beyond "
                                    f"this model's reach ({self.reach:.3f} A = {REACH} x its longest training pair)")
                z = np.sort(a.numbers[p], axis=1)
                for k, (x, y) in enumerate(z):
                    if (int(x), int(y)) not in known:
                        raise DataError(f"{frame_location(a, i)}: pair ({p[k, 0]}, {p[k, 1]}) is {chemical_symbols[x]}-{chemical_symbols[y]}, "
                                        f"an element pair never seen in training")
            out.append(p)
        return out
