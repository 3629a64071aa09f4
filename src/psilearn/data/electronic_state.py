"""Total charge and spin multiplicity of a structure, from ``atoms.info``; shared by the labelers
(which need them for the SCF) and by models that take the electronic state as an input.

* ``atoms.info["charge"]``: total charge in e (integer; default 0).
* ``atoms.info["multiplicity"]``: 2S+1 (integer >= 1; default 1 for an even, 2 for an odd electron count).
"""

from __future__ import annotations

from ase import Atoms

from psilearn.data.errors import DataError


def _integer(value, name: str, prefix: str) -> int:
    try:
        out = int(round(float(value)))
    except (TypeError, ValueError):
        raise DataError(f"{prefix}atoms.info[{name!r}] must be an integer, got {value!r}") from None
    if abs(float(value) - out) > 1e-8:
        raise DataError(f"{prefix}atoms.info[{name!r}] must be an integer, got {value!r}")
    return out


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
