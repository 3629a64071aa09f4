"""Element parameters of the charge-equilibration layer: Gaussian charge widths and hardness.

Units: widths in Angstrom, hardness in eV/e^2, the Coulomb constant in eV*Angstrom/e^2.

Each atom carries a spherical Gaussian charge of standard deviation sigma_Z (default: the
element's covalent radius, as in kernel charge equilibration, Staacke et al., Mach. Learn.: Sci.
Technol. 3, 015032 (2022)). The diagonal of the QEq matrix is J_Z + k_e / (sigma_Z sqrt(pi)): the
element hardness J_Z (default 0, so the hardness is the Gaussian self-energy alone) plus the
Coulomb self-energy of the Gaussian.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase.data import atomic_numbers, chemical_symbols, covalent_radii
from ase.units import Bohr, Hartree

from psilearn.config import Checks, Options

#: Coulomb constant e^2 / (4 pi eps0) in eV * Angstrom / e^2 (14.3996...).
COULOMB = Hartree * Bohr


def _by_number(table: dict) -> dict[int, float]:
    out = {}
    for k, v in (table or {}).items():
        z = atomic_numbers.get(k) if isinstance(k, str) and not k.isdigit() else int(k)
        if z is None:
            raise ValueError(f"unknown element {k!r} in QEq parameters")
        out[int(z)] = float(v)
    return out


@dataclass
class QEqParams(Options):
    """Per-element QEq parameters.

    ``width_scale`` multiplies every default width; ``widths`` (Angstrom) and ``hardness``
    (eV/e^2) map element symbols (or atomic numbers) to explicit values that override the
    defaults. ``ewald_accuracy`` is the relative truncation error of the periodic sums.
    """

    section: ClassVar[str] = "model.qeq"

    width_scale: float = 1.0
    widths: dict[str, float] = field(default_factory=dict)
    hardness: dict[str, float] = field(default_factory=dict)
    ewald_accuracy: float = 1e-10

    def __post_init__(self) -> None:
        self.widths = {chemical_symbols[z]: v for z, v in _by_number(self.widths).items()}
        self.hardness = {chemical_symbols[z]: v for z, v in _by_number(self.hardness).items()}

    def check(self, c: Checks) -> None:
        c.require(self.width_scale > 0, "width_scale", "must be > 0")
        c.require(all(v > 0 for v in self.widths.values()), "widths", "must be positive (Angstrom)")
        c.require(0 < self.ewald_accuracy < 1, "ewald_accuracy", "must lie in (0, 1)")

    def sigma(self, numbers: np.ndarray) -> np.ndarray:
        """Gaussian width of each atom (Angstrom), shape (n,)."""
        over = _by_number(self.widths)
        return np.array([over.get(int(z), self.width_scale * covalent_radii[int(z)]) for z in numbers])

    def hardness_of(self, numbers: np.ndarray) -> np.ndarray:
        """Element hardness J_Z of each atom (eV/e^2), shape (n,); 0 unless set."""
        over = _by_number(self.hardness)
        return np.array([over.get(int(z), 0.0) for z in numbers])
