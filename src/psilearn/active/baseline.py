"""Δ-learning in active learning (``psilearn active --baseline KEY``): every pool structure carries a cheap label
KEY of the same observable (e.g. GFN2-xTB's, computed for the whole pool in seconds); the loop fits the Δ kind
(:func:`psilearn.models.fidelity.delta_kind`: the model learns the target minus KEY) and selects on the correction's
uncertainty, which is the sum's, the baseline being exact. With ``--baseline-method`` psilearn computes the baseline
itself (:func:`psilearn.models.fidelity.delta_method_kind`) for the structures each fit and prediction needs."""

from __future__ import annotations

from ase import Atoms

from psilearn.data.errors import DataError
from psilearn.errors import ConfigError


def delta_run_kind(baseline: str, inner: str, symmetrize: bool, target, pool: list[Atoms], test=None) -> type:
    """The Δ kind of ``inner`` on the baseline key ``baseline``, after checking that every pool structure (and every
    structure of the ``test`` Dataset) has a valid baseline label: DataError naming the file, frame and key before any
    label is spent."""
    from psilearn.models.fidelity import delta_kind

    kind = _checked(delta_kind(baseline, inner, symmetrize), inner)
    for frames in (pool, test.frames if test is not None else []):
        try:
            kind.check_baseline_frames(frames, target)
        except DataError as exc:
            raise DataError(f"{exc} (--baseline {baseline}: every pool and --test structure needs it)") from None
    return kind


def with_baseline(labelled: Atoms, pool_frame: Atoms, key: str) -> Atoms:
    """``labelled`` (a structure from the label store, whose info holds only what the labeler wrote) with the pool
    frame's baseline label ``key`` added; ``labelled`` itself when it has it already (oracle labels: the pool frame)."""
    if key in labelled.info or key in labelled.arrays:
        return labelled
    out = labelled.copy()
    if key in pool_frame.info:
        out.info[key] = pool_frame.info[key]
    else:
        out.arrays[key] = pool_frame.arrays[key].copy()
    return out


def delta_method_run_kind(method: str, inner: str, symmetrize: bool, target, db: str, workers: int = 0) -> type:
    """The Δ kind of ``inner`` whose baseline psilearn computes with ``method`` through the label store ``db``; the
    method is resolved for ``target`` at once (ConfigError for a method that cannot compute it, before any label)."""
    from psilearn.models.fidelity import delta_method_kind

    kind = _checked(delta_method_kind(method, inner, db=db, symmetrize=symmetrize, workers=workers), inner)
    kind.resolve_method(target)  # spectra too: a DOS baseline without its broadening width is refused here
    return kind


def _checked(kind: type, inner: str) -> type:
    """``kind`` if it is the Δ kind of Cartesian-tensor and spectrum targets (those the loop learns), else ConfigError."""
    from psilearn.models.fidelity import DeltaModel

    if not issubclass(kind, DeltaModel):
        raise ConfigError(f"--baseline/--baseline-method with --model {inner}: active learning takes Cartesian-tensor and "
                          "spectrum targets (density and Hamiltonian Δ models: psilearn fit)")
    return kind
