"""Checks run before any calculation, so bad inputs fail fast with a clear per-structure reason."""

from __future__ import annotations

import warnings

import numpy as np
from ase import Atoms

from psilearn.data.electronic_state import checked_electronic_state
from psilearn.data.errors import DataError
from psilearn.data.periodicity import is_molecule, periodicity_applied
from psilearn.label.base import LabelError

#: Two atoms closer than this (Angstrom) are treated as overlapping.
MIN_DISTANCE = 0.3


def check_geometry(atoms: Atoms, min_distance: float = MIN_DISTANCE) -> None:
    """Raise :class:`LabelError` for empty structures, non-finite or overlapping positions."""
    if len(atoms) == 0:
        raise LabelError("structure has no atoms", stage="validate")
    pos = atoms.positions
    if not np.all(np.isfinite(pos)):
        raise LabelError("structure has non-finite positions", stage="validate")
    if len(atoms) > 1:
        d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
        d[np.diag_indices(len(atoms))] = np.inf
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if d[i, j] < min_distance:
            raise LabelError(
                f"overlapping atoms: {atoms[i].symbol}{i} and {atoms[j].symbol}{j} are "
                f"{d[i, j]:.3f} A apart (< {min_distance} A)",
                stage="validate",
            )


def check_electrons(atoms: Atoms) -> tuple[int, int, int]:
    """Validate charge and multiplicity against the electron count.

    Returns ``(charge, multiplicity, n_electrons)``; raises :class:`LabelError` when the
    electron count and multiplicity cannot both hold (e.g. 9 electrons with multiplicity 1).
    """
    try:
        return checked_electronic_state(atoms)
    except DataError as exc:
        raise LabelError(str(exc), stage="validate") from None


def check_periodicity(atoms: Atoms, method: str, periodic_ok: bool) -> Atoms:
    """The frame to label under the one periodicity rule (:mod:`psilearn.data.periodicity`):
    ``atoms`` itself, or a copy with ``pbc=False`` when its lattice is all zero (a molecule).
    Raises :class:`LabelError` for a periodic frame with a degenerate cell, and for any periodic
    frame when the labeler (``method``) computes molecules only (``periodic_ok=False``)."""
    try:
        atoms = periodicity_applied(atoms)
    except DataError as exc:
        raise LabelError(str(exc), stage="validate") from None
    if not periodic_ok and not is_molecule(atoms):
        flags = " ".join("T" if p else "F" for p in atoms.pbc)
        raise LabelError(f"{method} labels molecules only, but this frame is periodic (pbc=\"{flags}\" with a cell): use an "
                         "xTB method (gfn2) for periodic cells, or pbc=\"F F F\" to label it as an isolated molecule", stage="validate")
    return atoms


def build_quietly(obj, basis: str, what: str) -> None:
    """``obj.build()`` for a PySCF ``Mole`` or ``Cell`` (warnings silenced); a basis that PySCF
    lacks, or any other build failure, becomes one :class:`LabelError` line (stage ``'basis'``)."""
    from pyscf.lib.exceptions import BasisNotFoundError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj.build()
    except BasisNotFoundError as exc:
        from psilearn.targets.ao_basis import check_basis

        try:
            check_basis(basis)  # an unknown name: one line (PySCF's message spans lines)
        except ValueError as bad:
            raise LabelError(str(bad), "basis") from None
        raise LabelError(f"{str(exc).splitlines()[0]} (element not available in basis {basis!r})", "basis") from None
    except (KeyError, RuntimeError, ValueError) as exc:
        raise LabelError(f"cannot build the {what} with basis {basis!r}: {exc}", "basis") from None
