"""Isotope data of the magnetic-resonance labels: which isotope each element stands for.

``QUADRUPOLE``: the quadrupolar NMR isotope of an element, its spin I and nuclear electric
quadrupole moment Q (barn), from P. Pyykkö, "Year-2017 nuclear quadrupole moments", Mol. Phys.
116, 1328 (2018), signed. ``None`` marks an element with no stable quadrupolar (I > 1/2) isotope:
its EFG is stored, its C_Q is 0 and its ``efg_quadrupolar`` mask is 0.

``HYPERFINE``: the magnetic isotope (mass number) of an element used for hyperfine couplings; its
nuclear g factor comes from PySCF's table (``pyscf.data.nucprop.ISOTOPE_GYRO``, IAEA/Stone
nuclear moments). ``None`` marks an element with no stable magnetic isotope (its coupling is 0).

An element in neither table is a per-structure :class:`~psilearn.label.base.LabelError`.
"""

from __future__ import annotations

from psilearn.label.base import LabelError

#: element -> (isotope, I, Q in barn) or None (no stable quadrupolar isotope). Pyykkö 2018.
QUADRUPOLE: dict[str, tuple[str, float, float] | None] = {
    "H": ("2H", 1.0, 0.002860),
    "He": None,
    "Li": ("7Li", 1.5, -0.0400),
    "Be": ("9Be", 1.5, 0.05288),
    "B": ("11B", 1.5, 0.04059),
    "C": None,
    "N": ("14N", 1.0, 0.02044),
    "O": ("17O", 2.5, -0.02558),
    "F": None,
    "Ne": ("21Ne", 1.5, 0.10155),
    "Na": ("23Na", 1.5, 0.1040),
    "Mg": ("25Mg", 2.5, 0.1994),
    "Al": ("27Al", 2.5, 0.1466),
    "Si": None,
    "P": None,
    "S": ("33S", 1.5, -0.0678),
    "Cl": ("35Cl", 1.5, -0.08165),
    "Ar": None,
    "K": ("39K", 1.5, 0.0585),
    "Ca": ("43Ca", 3.5, -0.0408),
    "Br": ("79Br", 1.5, 0.313),
    "I": ("127I", 2.5, -0.696),
}

#: element -> mass number of the magnetic isotope for hyperfine couplings, or None.
HYPERFINE: dict[str, int | None] = {
    "H": 1, "He": 3, "Li": 7, "Be": 9, "B": 11, "C": 13, "N": 14, "O": 17, "F": 19, "Ne": 21,
    "Na": 23, "Mg": 25, "Al": 27, "Si": 29, "P": 31, "S": 33, "Cl": 35, "Ar": None, "K": 39,
    "Ca": 43, "Br": 79, "I": 127,
}


def quadrupole(symbol: str, stage: str = "efg") -> tuple[str, float, float] | None:
    """``(isotope, I, Q/barn)`` of ``symbol``, ``None`` if not quadrupolar; unknown: LabelError."""
    if symbol not in QUADRUPOLE:
        raise LabelError(f"no nuclear quadrupole data for element {symbol} (psilearn.label.isotopes."
                         f"QUADRUPOLE covers {', '.join(QUADRUPOLE)})", stage)
    return QUADRUPOLE[symbol]


def hyperfine_isotope(symbol: str, stage: str = "hfc") -> tuple[str, float]:
    """``(isotope, nuclear g factor)`` for the hyperfine coupling of ``symbol`` (g = 0 when the
    element has no stable magnetic isotope); an element without data is a LabelError."""
    from pyscf.data.nucprop import ISOTOPE_GYRO
    from pyscf.gto.mole import charge

    if symbol not in HYPERFINE:
        raise LabelError(f"no hyperfine isotope data for element {symbol} (psilearn.label.isotopes."
                         f"HYPERFINE covers {', '.join(HYPERFINE)})", stage)
    mass = HYPERFINE[symbol]
    if mass is None:
        return f"{symbol} (no magnetic isotope)", 0.0
    for m, _spin, g in ISOTOPE_GYRO[charge(symbol)]:
        if int(m) == mass:
            return f"{mass}{symbol}", float(g)
    raise LabelError(f"PySCF has no nuclear g factor for {mass}{symbol}", stage)
