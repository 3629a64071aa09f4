"""The ``density`` target kind: density-fitting coefficients as per-atom irreps blocks.

A labelled structure carries ``info['density_coefficients']``: one flat vector in PySCF's order for
``make_auxmol(mol, aux_basis)`` (atom by atom; per atom, radial function by radial function; per
radial function PySCF's 2l+1 m components). :class:`DensityTarget` records, per element, the degree
l of each radial function of the auxiliary basis; from that follow the per-atom blocks
(element, radial index n, l, parity (-1)^l), the slices of the flat vector, and the exact
orthogonal change of basis to e3nn's irreps (:func:`psilearn.targets.ao_basis.pyscf_to_e3nn`).
Nothing here needs PySCF once the shells are known (``DensityTarget.from_basis`` asks PySCF for
them; a labelled file records them in ``info['density_aux_shells']``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from psilearn.errors import DataError
from psilearn.targets.ao_basis import DEFAULT_AUX_BASIS, check_metric, normalise_aux_basis
from psilearn.targets.cartesian import IrrepColumns

DENSITY_KEY = "density_coefficients"
#: Per-atom label (``atoms.arrays``): electrons replaced by each atom's ECP (0 without one).
CORE_KEY = "density_core_electrons"
UNITS = "e: coefficients of PySCF's normalised auxiliary functions (rho = sum_P c_P phi_P, e/Bohr^3)"


@dataclass(frozen=True)
class DensityBlock(IrrepColumns):
    """One radial function of an atom: element, radial index ``n`` (counted per l, from 0), degree
    ``l``, and its components ``start:start+2l+1`` in the atom's vector (the same columns hold
    PySCF's m order in the flat label and e3nn's in :meth:`DensityTarget.to_irreps`)."""

    element: str
    n: int
    l: int
    start: int

    @property
    def p(self) -> int:
        return (-1) ** self.l


def shell_target_fields(d: dict, kind: str, name: str, fields: set[str]) -> dict:
    """The constructor fields of a target defined by per-element shell layouts (density, Hamiltonian)
    from its ``to_dict``: ValueError for another ``kind`` or unknown fields; ``shells`` as tuples."""
    d = dict(d)
    if d.pop("kind", kind) != kind:
        raise ValueError(f"not a {kind} target")
    unknown = set(d) - fields
    if unknown:
        raise ValueError(f"unknown {name} fields {sorted(unknown)}")
    d["shells"] = tuple((s, tuple(ls)) for s, ls in dict(d.get("shells", {})).items())
    return d


def shell_table(shells) -> dict[str, tuple[int, ...]]:
    """{symbol: (l, ...)} from a target's ``shells`` (a mapping or (symbol, ls) pairs), as str and ints."""
    return {str(s): tuple(int(l) for l in ls) for s, ls in dict(shells).items()}


def format_shells(shells: dict[str, tuple[int, ...]]) -> str:
    """``{'H': (0, 0, 1), 'O': (0, 1)}`` -> ``'H:0,0,1;O:0,1'`` (the ``density_aux_shells`` label)."""
    return ";".join(f"{s}:{','.join(str(l) for l in ls)}" for s, ls in sorted(shells.items()))


def parse_shells(text: str) -> dict[str, tuple[int, ...]]:
    """Inverse of :func:`format_shells`; DataError on malformed text."""
    out: dict[str, tuple[int, ...]] = {}
    try:
        for part in str(text).split(";"):
            sym, ls = part.split(":")
            out[sym.strip()] = tuple(int(x) for x in ls.split(","))
    except ValueError:
        raise DataError(f"malformed density_aux_shells {text!r} (expected 'H:0,0,1;O:0,0,1,2')") from None
    if any(not ls or min(ls) < 0 for ls in out.values()):
        raise DataError(f"malformed density_aux_shells {text!r}")
    return out


def _symbols(atoms_or_symbols) -> tuple[str, ...]:
    """Element symbols from an Atoms, a list of symbols or a list of atomic numbers."""
    if hasattr(atoms_or_symbols, "get_chemical_symbols"):
        return tuple(atoms_or_symbols.get_chemical_symbols())
    from ase.data import chemical_symbols

    return tuple(chemical_symbols[int(x)] if not isinstance(x, str) else x for x in atoms_or_symbols)


@dataclass(frozen=True)
class DensityTarget:
    """The electron density as density-fitting coefficients in ``aux_basis`` (a PySCF basis name).

    ``shells``: per element (sorted by symbol), the degree l of each radial function of one atom in
    PySCF's order. ``metric``: the fit's metric (``coulomb`` or ``overlap``); coefficients of another
    metric or basis are other numbers and are refused by :func:`psilearn.data.load_dataset`.
    ``core_electrons``: per element with an effective core potential (ECP) in the labelling method,
    the electrons it replaces (e.g. ``(("I", 28),)`` for def2 bases); the density then holds only the
    other electrons, and the nuclear charges of derived observables are Z - core.
    """

    aux_basis: str = DEFAULT_AUX_BASIS
    shells: tuple[tuple[str, tuple[int, ...]], ...] = ()
    metric: str = "coulomb"
    key: str = DENSITY_KEY
    units: str = UNITS
    core_electrons: tuple[tuple[str, int], ...] = ()
    kind: ClassVar[str] = "density"
    _blocks: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "aux_basis", normalise_aux_basis(self.aux_basis))
        object.__setattr__(self, "metric", check_metric(self.metric))
        shells = shell_table(self.shells)
        if not shells:
            raise DataError("a density target needs the auxiliary shells of at least one element "
                            "(DensityTarget.from_basis(aux_basis, elements))")
        object.__setattr__(self, "shells", tuple(sorted(shells.items())))
        core = {str(e): int(n) for e, n in dict(self.core_electrons).items() if int(n) != 0}
        bad = sorted(e for e, n in core.items() if e not in shells or n < 0)
        if bad:
            raise DataError(f"core electrons given for {', '.join(bad)}: not an element of the density target, or negative")
        object.__setattr__(self, "core_electrons", tuple(sorted(core.items())))
        blocks = {}
        for sym, ls in self.shells:
            count: dict[int, int] = {}
            start, out = 0, []
            for l in ls:
                out.append(DensityBlock(sym, count.get(l, 0), l, start))
                count[l] = count.get(l, 0) + 1
                start += 2 * l + 1
            blocks[sym] = tuple(out)
        object.__setattr__(self, "_blocks", blocks)

    @classmethod
    def from_basis(cls, aux_basis: str, elements, metric: str = "coulomb", key: str = DENSITY_KEY,
                   core_electrons=()) -> "DensityTarget":
        """The target for ``elements`` (symbols or atomic numbers) in ``aux_basis``, with the shells
        read from PySCF (DataError for an unknown basis or an element without functions in it);
        ``core_electrons`` {element: n} for elements with ECPs."""
        from psilearn.targets.ao_basis import check_aux_basis, element_shells, missing_elements

        name = check_aux_basis(aux_basis)
        syms = sorted(set(_symbols(elements)))
        missing = missing_elements(name, syms)
        if missing:
            raise DataError(f"element{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                            f"{'have' if len(missing) > 1 else 'has'} no functions in auxiliary basis {name!r}")
        return cls(name, tuple((s, element_shells(name, s)) for s in syms), metric, key,
                   core_electrons=tuple(dict(core_electrons).items()))

    # ---- layout ------------------------------------------------------------------------------------
    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(s for s, _ in self.shells)

    def blocks_of(self, element: str) -> tuple[DensityBlock, ...]:
        """The radial functions of one atom of ``element``, in PySCF's (= the flat vector's) order."""
        if element not in self._blocks:
            raise DataError(f"element {element} has no functions in this density target "
                            f"(auxiliary basis {self.aux_basis!r}; elements {', '.join(self.elements)})")
        return self._blocks[element]

    def atom_size(self, element: str) -> int:
        return sum(b.dim for b in self.blocks_of(element))

    def irreps_of(self, element: str) -> str:
        """e3nn irreps string of one atom in block order, e.g. ``'2x0e+2x1o+2x2e'`` for H."""
        runs: list[list] = []
        for b in self.blocks_of(element):
            if runs and runs[-1][1] == b.name:
                runs[-1][0] += 1
            else:
                runs.append([1, b.name])
        return "+".join(f"{m}x{n}" for m, n in runs)

    def block_index(self, element: str, l: int) -> np.ndarray:
        """Positions (n_l, 2l+1) in one atom's vector of its degree-l radial functions (n order)."""
        rows = [np.arange(b.start, b.start + b.dim) for b in self.blocks_of(element) if b.l == l]
        return np.array(rows, dtype=int).reshape(len(rows), 2 * l + 1)

    def core_of(self, atoms_or_symbols) -> np.ndarray:
        """Electrons replaced by each atom's ECP (n_atoms,), int: 0 for elements without one."""
        core = dict(self.core_electrons)
        return np.array([core.get(s, 0) for s in _symbols(atoms_or_symbols)], dtype=int)

    def check_elements(self, atoms_or_symbols, where: str = "") -> None:
        missing = sorted(set(_symbols(atoms_or_symbols)) - set(self.elements))
        if missing:
            raise DataError(f"{where + ': ' if where else ''}element{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(missing)} not in the density target (auxiliary basis {self.aux_basis!r}, "
                            f"elements {', '.join(self.elements)})")

    def offsets(self, atoms_or_symbols) -> np.ndarray:
        """Start of each atom's block in the flat vector, and the total size: (n_atoms + 1,)."""
        sizes = [self.atom_size(s) for s in _symbols(atoms_or_symbols)]
        return np.concatenate([[0], np.cumsum(sizes)]).astype(int)

    def size(self, atoms_or_symbols) -> int:
        """Length of the flat coefficient vector of a structure."""
        return int(self.offsets(atoms_or_symbols)[-1])

    def split(self, atoms_or_symbols, flat: np.ndarray) -> list[np.ndarray]:
        """Flat vector (..., size) -> one array (..., atom_size) per atom."""
        flat = np.asarray(flat, dtype=np.float64)
        off = self.offsets(atoms_or_symbols)
        if flat.shape[-1] != off[-1]:
            raise DataError(f"{flat.shape[-1]} density coefficients, expected {off[-1]} for these atoms "
                            f"in auxiliary basis {self.aux_basis!r}")
        return [flat[..., a:b] for a, b in zip(off[:-1], off[1:])]

    @staticmethod
    def join(parts: list[np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`split`."""
        return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts], axis=-1)

    def index_by_l(self, atoms_or_symbols) -> dict[int, np.ndarray]:
        """For each l, positions (n_blocks_l, 2l+1) in the flat vector of every degree-l radial
        function of the structure (atom by atom, then n)."""
        syms = _symbols(atoms_or_symbols)
        off = self.offsets(syms)
        rows: dict[int, list[np.ndarray]] = {}
        for a, sym in enumerate(syms):
            for b in self.blocks_of(sym):
                rows.setdefault(b.l, []).append(off[a] + np.arange(b.start, b.start + b.dim))
        return {l: np.array(r, dtype=int) for l, r in sorted(rows.items())}

    # ---- change of basis -----------------------------------------------------------------------------
    def to_irreps(self, atoms_or_symbols, flat: np.ndarray) -> np.ndarray:
        """PySCF-ordered coefficients (..., size) -> the same layout with every radial function in
        e3nn's real-harmonic basis (exact: an orthogonal map per l)."""
        return self._rotate(atoms_or_symbols, flat, inverse=False)

    def from_irreps(self, atoms_or_symbols, irreps: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_irreps`: e3nn basis -> PySCF's order (the labeler's layout)."""
        return self._rotate(atoms_or_symbols, irreps, inverse=True)

    def _rotate(self, atoms_or_symbols, values, inverse: bool) -> np.ndarray:
        from psilearn.targets.ao_basis import pyscf_to_e3nn

        values = np.asarray(values, dtype=np.float64)
        syms = _symbols(atoms_or_symbols)
        if values.shape[-1] != self.size(syms):
            raise DataError(f"{values.shape[-1]} density coefficients, expected {self.size(syms)} for these atoms "
                            f"in auxiliary basis {self.aux_basis!r}")
        out = values.copy()
        for l, idx in self.index_by_l(syms).items():
            if l == 0:
                continue
            u = pyscf_to_e3nn(l)
            out[..., idx] = values[..., idx] @ (u if inverse else u.T)
        return out

    # ---- serialisation ---------------------------------------------------------------------------------
    def shells_text(self) -> str:
        return format_shells(dict(self.shells))

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "key": self.key, "aux_basis": self.aux_basis, "metric": self.metric,
             "shells": {s: list(ls) for s, ls in self.shells}, "units": self.units}
        if self.core_electrons:  # absent (all zero) in files written before ECPs were recorded
            d["core_electrons"] = dict(self.core_electrons)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DensityTarget":
        fields = shell_target_fields(d, "density", cls.__name__, {"key", "aux_basis", "metric", "shells", "units", "core_electrons"})
        fields["core_electrons"] = tuple(dict(fields.get("core_electrons", {})).items())
        return cls(**fields)

    def describe(self) -> str:
        per = ", ".join(f"{s} {self.atom_size(s)} ({self.irreps_of(s)})" for s in self.elements)
        ecp = "; ECP core electrons " + ", ".join(f"{s} {n}" for s, n in self.core_electrons) if self.core_electrons else ""
        return f"{self.key} (density in {self.aux_basis}, {self.metric} metric; per atom: {per}{ecp})"

    def __str__(self) -> str:
        return json.dumps(self.to_dict())
