"""Total charge and spin multiplicity of a structure, from ``atoms.info``; shared by the labelers
(which need them for the SCF) and by models that take the electronic state as an input.

* ``atoms.info["charge"]``: total charge in e (integer; default 0).
* ``atoms.info["multiplicity"]``: 2S+1 (integer >= 1; default 1 for an even, 2 for an odd electron count).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.data.errors import DataError, frame_location


def _integer(value, name: str, prefix: str) -> int:
    try:
        out = int(round(float(value)))
    except (TypeError, ValueError, OverflowError):  # OverflowError: inf
        raise DataError(f"{prefix}atoms.info[{name!r}] must be an integer, got {value!r}") from None
    if abs(float(value) - out) > 1e-8:
        raise DataError(f"{prefix}atoms.info[{name!r}] must be an integer, got {value!r}")
    return out


def with_charge(atoms: Atoms, charge: int | None) -> Atoms:
    """``atoms`` itself when ``charge`` is None, else a copy with ``info['charge'] = charge`` (e) and
    the multiplicity back to its default (the declared one belonged to the old charge)."""
    if charge is None:
        return atoms
    atoms = atoms.copy()
    atoms.info["charge"] = int(charge)
    atoms.info.pop("multiplicity", None)
    return atoms


def charge_multiplicity(atoms: Atoms, where: str = "") -> tuple[int, int]:
    """(total charge [e], multiplicity) as declared, with the default multiplicity filled in.
    DataError (a ValueError) for non-integer values; no check against the electron count."""
    prefix = f"{where}: " if where else ""
    charge = _integer(atoms.info.get("charge", 0), "charge", prefix)
    raw = atoms.info.get("multiplicity")
    if raw is None:
        return charge, 1 if (int(atoms.numbers.sum()) - charge) % 2 == 0 else 2
    return charge, _integer(raw, "multiplicity", prefix)


def checked_electronic_state(atoms: Atoms, where: str = "", allow_no_electrons: bool = False) -> tuple[int, int, int]:
    """(charge, multiplicity, number of electrons), refusing with a DataError a state that cannot
    exist: a charge that leaves no electrons, a multiplicity < 1, a multiplicity whose parity does
    not match the electron count, or more unpaired electrons than electrons. ``where`` (e.g. the
    file and frame) starts the message. ``allow_no_electrons`` accepts a bare-nucleus state (e.g. H+),
    which models can take as input but no SCF can label."""
    prefix = f"{where}: " if where else ""
    charge, mult = charge_multiplicity(atoms, where)
    n_elec = int(atoms.numbers.sum()) - charge
    if n_elec < 0 or (n_elec == 0 and not allow_no_electrons):
        raise DataError(f"{prefix}charge {charge:+d} is impossible: it leaves {n_elec} electrons "
                        f"(the atoms have {int(atoms.numbers.sum())} in total)")
    if mult < 1:
        raise DataError(f"{prefix}multiplicity must be >= 1 (2S+1), got {mult}")
    unpaired = mult - 1
    if (n_elec - unpaired) % 2:
        parity = "odd" if n_elec % 2 else "even"
        raise DataError(f"{prefix}{parity} electron count ({n_elec}, charge {charge:+d}) cannot have multiplicity "
                        f"{mult} (needs an {'even' if parity == 'odd' else 'odd'} multiplicity)")
    if unpaired > n_elec:
        raise DataError(f"{prefix}multiplicity {mult} needs {unpaired} unpaired electrons, but charge "
                        f"{charge:+d} leaves only {n_elec}")
    return charge, mult, n_elec


def charge_and_multiplicity(atoms: Atoms, index: int = 0) -> tuple[int, int]:
    """Validated (total charge [e], multiplicity 2S+1) of one structure; DataError naming the frame
    for a state impossible for its electron count (see :mod:`psilearn.data.electronic_state`)."""
    charge, mult, _ = checked_electronic_state(atoms, frame_location(atoms, index), allow_no_electrons=True)
    return charge, mult


def structure_states(frames: list[Atoms]) -> np.ndarray:
    """State vectors s = (Q, n_unpaired) of each structure, shape (n_structures, 2), float.

    Q is the total charge (e), n_unpaired = multiplicity - 1."""
    out = np.zeros((len(frames), 2))
    for i, a in enumerate(frames):
        q, m = charge_and_multiplicity(a, i)
        out[i] = (q, m - 1)
    return out


def total_charges(frames: list[Atoms]) -> np.ndarray:
    """Validated total charge of each structure (e), shape (n_structures,)."""
    return structure_states(frames)[:, 0]


#: global-state input modes of models (SA-GPR, nn: ``global_state``)
STATE_MODES = ("none", "charge", "charge+spin")


def needed_state_mode(frames: list[Atoms]) -> str:
    """The state input a model needs to tell the electronic states of ``frames`` apart: ``none`` (one
    state), ``charge`` (several total charges; the unpaired electrons follow from them), or
    ``charge+spin`` (structures of one charge with different numbers of unpaired electrons). A model
    without it sees a cation and an anion of one geometry as the same input and can only fit the
    average of their labels."""
    s = structure_states(frames)
    if len(s) == 0 or len(np.unique(s, axis=0)) == 1:
        return "none"
    for q in np.unique(s[:, 0]):
        if len(np.unique(s[s[:, 0] == q, 1])) > 1:
            return "charge+spin"
    return "charge"


def state_vectors(frames: list[Atoms], mode: str) -> np.ndarray:
    """(n_structures, 2) state vectors for ``mode``: ``charge`` -> (Q, 0), ``charge+spin`` ->
    (Q, n_unpaired). Validates charge and multiplicity in both modes."""
    if mode not in STATE_MODES[1:]:
        raise ValueError(f"global_state must be one of {STATE_MODES}, got {mode!r}")
    s = structure_states(frames)
    if mode == "charge":
        s[:, 1] = 0.0
    return s
