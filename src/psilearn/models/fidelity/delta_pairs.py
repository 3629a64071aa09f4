"""Δ-learning of per-pair targets (docs/pairs.md): the baseline on exactly the target's pairs.

With a baseline label (``--baseline KEY``) every structure carries ``KEY`` and ``KEY_pairs``, which must
list the target's pairs (either order within a pair: the reader canonicalises them, transposing the
values). With a baseline method (``--baseline-method XC/BASIS``) psilearn's ``jcoupling`` labeler
computes the couplings of every pair of magnetic nuclei within its cutoff (4 Angstrom), and the baseline
is taken on the pairs the target asks for: at fit the training file's pairs (``KEY_pairs``), at predict
the pairs a structure lists or else the inner model's pair rule (:class:`psilearn.models.pair_rule.PairRule`,
the same pairs the plain model would predict). A pair the labeler does not compute (farther apart than
its cutoff, or with a nucleus without a magnetic isotope) is refused with one line before any labelling.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from ase import Atoms

from psilearn.data.dataset import check_symmetry
from psilearn.data.errors import DataError, frame_location
from psilearn.data.pairs import read_frame_pairs
from psilearn.targets import Target


def pair_baseline(frames: list[Atoms], target: Target, key: str, symmetrize: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per-pair baseline labels ``key`` (pair list ``key_pairs``): values (n_pairs, 3**rank) in
    frame and canonical pair order, and each structure's pairs (P_s, 2); a structure with neither key
    has none. Validated as the Target's own labels; DataError naming file, frame and key otherwise."""
    base = dataclasses.replace(target, key=key)
    try:
        read = [read_frame_pairs(a, i, base) for i, a in enumerate(frames)]
        pairs = [p for p, _ in read]
        values = np.concatenate([v for _, v in read]) if read else np.zeros((0, target.size))
        sample = np.repeat(np.arange(len(frames)), [len(p) for p in pairs])
        return check_symmetry(frames, base, values, symmetrize, sample), pairs
    except DataError as exc:
        raise DataError(f"{exc} (the baseline of the delta model of {target.key!r})") from None


def same_pairs(frames: list[Atoms], target: Target, key: str, want: list[np.ndarray], have: list[np.ndarray]) -> None:
    """DataError (one line: file, frame, keys) for the first structure whose target pairs ``want``
    differ from the baseline's ``have`` (both canonical)."""
    for i, (a, w, h) in enumerate(zip(frames, want, have)):
        if not np.array_equal(w, h):
            extra = {tuple(p) for p in w.tolist()} ^ {tuple(p) for p in h.tolist()}
            first = min(extra) if extra else None
            raise DataError(f"{frame_location(a, i)}: the baseline {key}_pairs lists {len(h)} pairs, {target.pairs_key!r} "
                            f"{len(w)}{f' (pair {first} is in one only)' if first else ' (in another order)'}; Δ-learning "
                            "needs the baseline on exactly the target's pairs")


def with_pairs(frames: list[Atoms], target: Target, key: str, pairs: list[np.ndarray]) -> list[Atoms]:
    """Copies of ``frames`` listing the baseline's ``pairs`` as the target's pair list (the pairs the
    inner model predicts); a frame that lists its own target pairs must list the same ones."""
    out = []
    for i, (a, p) in enumerate(zip(frames, pairs)):
        if target.pairs_key in a.info:
            same_pairs([a], target, key, [read_frame_pairs(a, i, target, with_values=False)[0]], [p])
        b = a.copy()
        b.info[target.pairs_key] = np.asarray(p, dtype=np.int64).ravel()
        out.append(b)
    return out


def wanted_pairs(model, frames: list[Atoms]) -> list[np.ndarray]:
    """The pairs (P_s, 2) whose baseline ``model`` (a per-pair DeltaModel) needs: those each structure
    lists, or, once fitted, the inner model's pair rule for structures that list none."""
    rule = getattr(model.inner, "pair_rule", None) if model.metadata else None
    if rule is not None:
        return rule.frame_pairs(frames, model.target)
    return [read_frame_pairs(a, i, model.target, with_values=False)[0] for i, a in enumerate(frames)]


def check_labeler_pairs(frames: list[Atoms], pairs: list[np.ndarray], method, cutoff: float) -> None:
    """DataError (one line, before any labelling) for a pair the labeler computes no coupling for: its
    atoms farther apart than the labeler's ``cutoff`` (Angstrom), or a nucleus without a magnetic isotope."""
    from psilearn.label.base import LabelError
    from psilearn.label.isotopes import hyperfine_isotope

    for i, (a, p) in enumerate(zip(frames, pairs)):
        if not len(p):
            continue
        d = np.linalg.norm(a.positions[p[:, 1]] - a.positions[p[:, 0]], axis=1)
        if (far := np.flatnonzero(d > cutoff)).size:
            k = int(far[0])
            raise DataError(f"{frame_location(a, i)}: pair ({p[k, 0]}, {p[k, 1]}) is {d[k]:.3f} A apart; the baseline method "
                            f"{method.name} computes {method.label} only within {cutoff:g} A (the labeler's jcoupling_cutoff)")
        for s in sorted({a.get_chemical_symbols()[j] for j in np.unique(p)}):
            try:
                iso, g = hyperfine_isotope(s, "jcoupling")
            except LabelError as exc:
                raise DataError(f"{frame_location(a, i)}: {exc}") from None
            if g == 0:
                raise DataError(f"{frame_location(a, i)}: a pair contains {s} ({iso}); the baseline method {method.name} computes "
                                f"{method.label} only between magnetic nuclei")


def _on_pairs(labelled: Atoms, i: int, target: Target, key: str, want: np.ndarray) -> Atoms:
    """``labelled`` with its baseline ``key`` (all the labeler's pairs) cut to the pairs ``want``, in their order."""
    have, values = read_frame_pairs(labelled, i, dataclasses.replace(target, key=key))
    row = {(int(x), int(y)): k for k, (x, y) in enumerate(have)}
    missing = [tuple(int(v) for v in p) for p in want if tuple(int(v) for v in p) not in row]
    if missing:
        raise DataError(f"{frame_location(labelled, i)}: the labeler computed no {key} for pair {missing[0]}")
    b = labelled.copy()
    b.info[key] = values[[row[(int(x), int(y))] for x, y in want]].ravel() if len(want) else np.zeros(0)
    b.info[f"{key}_pairs"] = np.asarray(want, dtype=np.int64).ravel()
    if not len(want):  # a structure without a pair has neither key
        del b.info[key], b.info[f"{key}_pairs"]
    return b


def method_pair_baseline(model, frames: list[Atoms]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The baseline of a per-pair DeltaModel with a baseline method: (values (n_pairs, 3**rank), pairs per
    structure) on :func:`wanted_pairs`, computed by the labeler through the model's label store."""
    method, target = model.baseline_method, model.target
    pairs = wanted_pairs(model, frames)
    check_labeler_pairs(frames, pairs, method, float(method.labeler().jcoupling_cutoff))
    labelled, model.last_baseline_summary, model.last_baseline_seconds = method.label_frames(
        frames, model.baseline_db, workers=model.baseline_workers, progress=model.progress)
    cut = [_on_pairs(a, i, target, method.key, p) for i, (a, p) in enumerate(zip(labelled, pairs))]
    return pair_baseline(cut, target, method.key, model.symmetrize_baseline)
