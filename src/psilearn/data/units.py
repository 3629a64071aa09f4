"""The one table of units psilearn converts between (ASE's constants, :mod:`ase.units`).

Labels and predictions stay in the units of the data (recorded in the Target, ``--units``);
conversions happen only where a convention demands it: the ASE calculator returns ASE units, and
QEq needs dipole labels in terms of charges (e) and positions (Angstrom).

=================  ============  ===============================================================
quantity           ASE unit      unit names understood -> value of one unit in the ASE unit
=================  ============  ===============================================================
dipole             e*Angstrom    e*A: 1; e*Bohr, e*a0, a.u./au: Bohr = 0.529177;
                                 Debye/D: ase.units.Debye = 0.208194
charge             e             e, a.u./au: 1
polarizability     Angstrom^3    A^3: 1; Bohr^3, a0^3, a.u./au: Bohr**3 = 0.148185 (the a.u. of
                                 polarizability, e^2 a0^2/Eh, as a polarizability volume
                                 alpha/(4 pi eps0): alpha_volume = alpha_au * a0^3)
energy             eV            eV: 1; meV: 0.001; Hartree/Ha/Eh, a.u./au: ase.units.Hartree =
                                 27.2114; Ry: ase.units.Rydberg; kcal/mol, kJ/mol
shielding          ppm           ppm: 1 (NMR shielding tensors and shifts are never converted)
=================  ============  ===============================================================

Names are matched without case, spaces or multiplication signs ('e*Bohr' = 'e Bohr' = 'ebohr');
'Angstrom' and 'Å' are 'A'; '**3' and '³' are '^3'.
A value in unit ``u`` times :func:`to_ase_factor` (quantity, u) is the value in the ASE unit.
"""

from __future__ import annotations

from ase import units as _u

_BOHR3 = _u.Bohr**3

#: quantity -> (ASE unit, {unit name: value of one such unit in the ASE unit}); names are matched
#: after :func:`canonical_unit` (so 'e*Bohr', 'e Bohr' and 'ebohr' are one unit)
UNITS: dict[str, tuple[str, dict[str, float]]] = {
    "dipole": ("e*Angstrom", {
        "e*A": 1.0, "e*Ang": 1.0,
        "e*Bohr": _u.Bohr, "e*a0": _u.Bohr, "a.u.": _u.Bohr, "atomic": _u.Bohr,
        "Debye": _u.Debye, "D": _u.Debye,
    }),
    "charge": ("e", {"e": 1.0, "a.u.": 1.0, "atomic": 1.0}),
    "polarizability": ("Angstrom^3", {
        "A^3": 1.0,
        "Bohr^3": _BOHR3, "a0^3": _BOHR3, "a.u.": _BOHR3, "atomic": _BOHR3,
    }),
    "energy": ("eV", {
        "eV": 1.0, "meV": 1e-3,
        "Hartree": _u.Hartree, "Ha": _u.Hartree, "Eh": _u.Hartree, "a.u.": _u.Hartree, "atomic": _u.Hartree,
        "Ry": _u.Rydberg, "Rydberg": _u.Rydberg,
        "kcal/mol": _u.kcal / _u.mol, "kJ/mol": _u.kJ / _u.mol,
    }),
    "shielding": ("ppm", {"ppm": 1.0}),
}


def canonical_unit(name: str) -> str:
    """A unit name as the table matches it: lower case, without spaces or multiplication signs,
    'Angstrom'/'Å' as 'a', '**' and '³' as powers, 'a.u.' as 'au'."""
    key = (name or "").strip().lower()
    for old, new in ((" ", ""), ("·", ""), ("×", ""), ("**", "^"), ("*", ""), ("³", "^3"), ("angstrom", "a"), ("å", "a"),
                     ("a.u.", "au")):
        key = key.replace(old, new)
    return key


def ase_unit(quantity: str) -> str:
    """The ASE unit of a quantity of the table (e.g. 'e*Angstrom' for 'dipole')."""
    return UNITS[quantity][0]


def known_units(quantity: str) -> list[str]:
    """The unit names understood for ``quantity``."""
    return list(UNITS[quantity][1])


def to_ase_factor(quantity: str, units: str) -> float:
    """Value in the ASE unit of one ``units`` of ``quantity``: multiply values in ``units`` by it.
    ValueError naming the known units for a name the table does not have."""
    if quantity not in UNITS:
        raise ValueError(f"unknown quantity {quantity!r}; the unit table has {', '.join(UNITS)}")
    table = {canonical_unit(k): v for k, v in UNITS[quantity][1].items()}
    key = canonical_unit(units)
    if key not in table:
        raise ValueError(f"unknown {quantity} units {units!r}; known: {', '.join(known_units(quantity))} "
                         f"(converted to {ase_unit(quantity)})")
    return table[key]
