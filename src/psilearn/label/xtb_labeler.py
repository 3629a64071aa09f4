"""GFN2-xTB (or GFN1-xTB) labeler via tblite's Python API.

Energy (Ha), forces (Ha/Bohr), dipole (e*Bohr, origin-independent for neutral molecules; for
ions tblite's origin, the Cartesian origin of the input, is used), Mulliken charges (e) from
the xTB basis, orbital energies/HOMO/LUMO/DOS (Ha), the Löwdin-projected DOS per atom
(:mod:`psilearn.label.projection`) and a finite-field polarizability (Bohr^3).
GFN2 polarizabilities are far from DFT (see TOOLCHAIN.md): use them for tests, not references.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.units import Bohr

from psilearn.label.base import LabelError, finite_field_polarizability, parse_observables
from psilearn.label.hashing import code_version, method_hash
from psilearn.label.orbitals import DOSGrid, orbital_labels
from psilearn.label.projection import tblite_projection_labels
from psilearn.label.validate import check_electrons, check_geometry, check_periodicity
from psilearn.label.xtb_methods import XTB_METHODS, check_xtb_method

LABEL_SCHEMA = 1
_SUPPORTED = ("energy", "forces", "dipole", "polarizability", "charges", "orbitals")


@dataclass
class XTBLabeler:
    """Label structures with tblite.

    Parameters
    ----------
    method: ``'gfn2'`` (default) or ``'gfn1'``.
    observables: subset of ``energy, forces, dipole, polarizability, charges, orbitals``.
    accuracy: tblite SCC accuracy (smaller is tighter). max_iter: SCC iterations.
    electronic_temperature: Kelvin (tblite default 300 K).
    field_step: finite-field step for the polarizability (a.u. of field strength).
    """

    method: str = "gfn2"
    observables: tuple[str, ...] = ("energy",)
    accuracy: float = 0.01
    max_iter: int = 250
    electronic_temperature: float = 300.0
    field_step: float = 1e-3
    dos: DOSGrid = field(default_factory=DOSGrid)

    def __post_init__(self) -> None:
        self.method = check_xtb_method(self.method)
        self.observables = parse_observables(self.observables)
        bad = [o for o in self.observables if o not in _SUPPORTED]
        if bad:
            raise ValueError(f"{self.name} cannot compute {', '.join(bad)}; supported: {', '.join(_SUPPORTED)}")
        if isinstance(self.dos, dict):
            self.dos = DOSGrid(**self.dos)

    @property
    def name(self) -> str:
        return self.method

    def spec(self) -> dict[str, Any]:
        d = asdict(self)
        d["dos"] = self.dos.as_dict()
        d["observables"] = sorted(self.observables)
        if "orbitals" not in self.observables:
            d.pop("dos")
        if "polarizability" not in self.observables:
            d.pop("field_step")
        else:  # finite-field alpha is stored symmetrised: a new hash, so unsymmetrised stores are not reused
            d["alpha"] = "symmetrised"
        d.update(code="tblite", schema=LABEL_SCHEMA, versions={"tblite": code_version("tblite")})
        return d

    def method_hash(self) -> str:
        return method_hash(self.spec())

    def _calculator(self, atoms: Atoms, charge: int, mult: int, efield: np.ndarray | None = None):
        from tblite import library
        from tblite.interface import Calculator

        pbc = np.asarray(atoms.pbc, dtype=bool)
        kwargs: dict[str, Any] = {}
        if pbc.any():
            kwargs = {"lattice": atoms.cell.array / Bohr, "periodic": pbc}
        try:
            calc = Calculator(
                XTB_METHODS[self.method], atoms.numbers, atoms.positions / Bohr,
                charge=float(charge), uhf=mult - 1, **kwargs,
            )
        except Exception as exc:  # unsupported element and similar input errors
            raise LabelError(f"tblite rejected the structure: {exc}", "validate") from None
        calc.set("verbosity", 0)
        calc.set("accuracy", self.accuracy)
        calc.set("max-iter", self.max_iter)
        calc.set("temperature", self.electronic_temperature * 3.166808578545117e-6)
        if "orbitals" in self.observables:  # keep the overlap matrix in the result (the projected DOS needs it)
            calc.set("save-integrals", 1)
        if efield is not None:
            # tblite 0.8 needs a C double* for the field, not a NumPy array; keep the buffer
            # alive on the calculator while the field object is created.
            calc._psilearn_field = np.ascontiguousarray(efield, dtype=np.float64)
            calc.add("electric-field", library.ffi.cast("double*", calc._psilearn_field.ctypes.data))
        return calc

    def _run(self, atoms: Atoms, charge: int, mult: int, efield: np.ndarray | None = None):
        return self._singlepoint(self._calculator(atoms, charge, mult, efield))

    @staticmethod
    def _singlepoint(calc):
        try:
            return calc.singlepoint()
        except Exception as exc:
            raise LabelError(f"xTB SCC failed: {exc}", "scf") from None

    def polarizability(self, atoms: Atoms, charge: int, mult: int) -> tuple[np.ndarray, float]:
        """alpha[a, b] = d mu_a / d F_b (Bohr^3), shape (3, 3), by central differences, symmetrised, and
        the asymmetry removed (Bohr^3; :func:`psilearn.label.base.finite_field_polarizability`)."""
        return finite_field_polarizability(lambda f: self._run(atoms, charge, mult, f).get("dipole"), self.field_step)

    def label(self, atoms: Atoms) -> Atoms:
        """Labelled copy of ``atoms`` (keys in :data:`psilearn.label.base.UNITS`)."""
        t0 = time.perf_counter()
        atoms = check_periodicity(atoms, self.name, periodic_ok=True)
        check_geometry(atoms)
        charge, mult, _ = check_electrons(atoms)
        if atoms.numbers.max() > 86:
            raise LabelError(f"{self.name} is parametrised up to Rn (Z=86)", "validate")
        calc = self._calculator(atoms, charge, mult)
        res = self._singlepoint(calc)
        out = atoms.copy()
        out.calc = None
        info, arrays = out.info, out.arrays
        info["charge"] = charge
        info["multiplicity"] = mult
        obs = self.observables
        if "energy" in obs:
            info["total_energy"] = float(res.get("energy"))
        if "forces" in obs:
            arrays["atomic_forces"] = -np.asarray(res.get("gradient"), dtype=float)
        if "dipole" in obs:
            info["dipole_moment"] = np.asarray(res.get("dipole"), dtype=float)
        if "charges" in obs:
            arrays["mulliken_charges"] = np.asarray(res.get("charges"), dtype=float)
        if "orbitals" in obs:
            occ = np.asarray(res.get("orbital-occupations"), dtype=float)
            eps = np.asarray(res.get("orbital-energies"), dtype=float)
            if occ.ndim == 2:  # spin-resolved occupations
                occ = occ.sum(axis=0)
            info.update(orbital_labels(eps, occ, self.dos))
            info["homo"], info["lumo"] = _frontier(eps, occ)
            info["gap"] = info["lumo"] - info["homo"]
            arrays.update(tblite_projection_labels(info, calc, res, len(out), self.dos))
        if "polarizability" in obs:
            alpha, info["alpha_fd_asymmetry"] = self.polarizability(atoms, charge, mult)
            info["alpha"] = alpha.reshape(9)
            info["alpha_method"] = "finite_field"
        info["label_seconds"] = time.perf_counter() - t0
        return out


def _frontier(eps: np.ndarray, occ: np.ndarray) -> tuple[float, float]:
    """HOMO/LUMO (Ha) from possibly fractional (Fermi-smeared) occupations summed over spin."""
    homo_idx = np.nonzero(occ > 1.0)[0]  # at least half-filled spatial orbital
    homo_idx = homo_idx if homo_idx.size else np.nonzero(occ > 1e-6)[0]
    h = int(homo_idx.max())
    lumo = float(eps[h + 1]) if h + 1 < len(eps) else float("nan")
    return float(eps[h]), lumo
