"""The ``hamiltonian`` target kind: a Fock/Kohn-Sham matrix as atom-pair blocks of coupled irreps.

A labelled structure carries ``info['hamiltonian']``: the n_ao x n_ao matrix H (Hartree) flattened
row-major, in PySCF's AO order (atom by atom; per atom, radial function by radial function; per
radial function PySCF's 2l+1 m components). :class:`HamiltonianTarget` records, per element, the
degree l of every radial function of the orbital basis; from that follow

* the atom-pair blocks H[i, j] (n_i x n_j) for i <= j: on-site (i == i) and off-site (i < j); the
  block (j, i) is the transpose of (i, j), so hermiticity (real symmetry) holds by construction;
* per block, one sub-block per pair of radial functions (a of atom i, b of atom j), taken to e3nn's
  real harmonics by the measured orthogonal maps U_l (:func:`psilearn.targets.ao_basis.pyscf_to_e3nn`),
  B' = U_la B U_lb^T, and coupled by e3nn's Wigner 3j symbols into irreps L = |la-lb| .. la+lb with
  parity (-1)^(la+lb): c_L = sum_{m1 m2} Q_L[m1, m2, :] B'[m1, m2], Q_L = sqrt(2L+1) w3j(la, lb, L).
  The Q_L of all L together are an orthogonal change of basis, so the map is exactly invertible;
* on-site blocks keep only the pairs a <= b, and for a == b only the L whose Q_L is symmetric in
  (m1, m2) (the symmetric combination; the antisymmetric ones vanish for a symmetric H).

Under a rotation (proper or improper) R of the molecule, c_L -> D_L(R) c_L with e3nn's
``Irrep(L, (-1)**(la+lb)).D_from_matrix(R)``; ``tests/hamiltonian`` checks this on relabelled SCFs.
Nothing here needs PySCF once the shells are known.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from psilearn.errors import DataError
from psilearn.targets.ao_basis import normalise_aux_basis
from psilearn.targets.cartesian import IrrepColumns
from psilearn.targets.density import _symbols, format_shells, parse_shells, shell_table, shell_target_fields

HAMILTONIAN_KEY = "hamiltonian"
UNITS = "Hartree: Fock/Kohn-Sham matrix in PySCF's AO order, n_ao x n_ao row-major"


@dataclass(frozen=True)
class CoupledBlock(IrrepColumns):
    """One irrep of a pair block: radial functions ``a`` (of the row atom) and ``b`` (of the column
    atom) of degrees ``la``, ``lb`` coupled to ``L`` with parity ``p``; columns ``start:start+2L+1``
    of the pair's irreps vector."""

    a: int
    b: int
    la: int
    lb: int
    L: int
    start: int

    @property
    def p(self) -> int:
        return (-1) ** (self.la + self.lb)

    @property
    def l(self) -> int:  # noqa: E743 (the degree, as in IrrepColumns)
        return self.L


def coupling(la: int, lb: int, L: int) -> np.ndarray:
    """Q_L = sqrt(2L+1) w3j(la, lb, L), shape (2la+1, 2lb+1, 2L+1), in e3nn's basis: its columns
    over all L are orthonormal in the (m1, m2) space (read-only)."""
    from psilearn.targets.ao_basis import wigner3j

    return np.sqrt(2 * L + 1) * wigner3j(la, lb, L)


def _symmetric(l: int, L: int) -> bool:
    """Whether Q_L(l, l) is symmetric (True) or antisymmetric (False) under m1 <-> m2."""
    q = coupling(l, l, L)
    if np.allclose(q, q.transpose(1, 0, 2), atol=1e-12):
        return True
    if np.allclose(q, -q.transpose(1, 0, 2), atol=1e-12):
        return False
    raise RuntimeError(f"w3j({l}, {l}, {L}) is neither symmetric nor antisymmetric")


@dataclass(frozen=True)
class HamiltonianTarget:
    """An AO Hamiltonian in the orbital basis ``basis`` (a PySCF name).

    ``shells``: per element (sorted by symbol), the degree l of each radial function of one atom in
    PySCF's AO order (as the labels' ``hamiltonian_shells``)."""

    basis: str = "def2-svp"
    shells: tuple[tuple[str, tuple[int, ...]], ...] = ()
    key: str = HAMILTONIAN_KEY
    units: str = UNITS
    kind: ClassVar[str] = "hamiltonian"
    _start: dict = field(init=False, repr=False, compare=False)
    _maps: dict = field(init=False, repr=False, compare=False)  # coupling_maps, built on first use

    def __post_init__(self) -> None:
        object.__setattr__(self, "basis", normalise_aux_basis(self.basis))
        shells = shell_table(self.shells)
        if not shells or any(not ls or min(ls) < 0 for ls in shells.values()):
            raise DataError("a hamiltonian target needs the shells of at least one element "
                            "(HamiltonianTarget.from_basis(basis, elements))")
        object.__setattr__(self, "shells", tuple(sorted(shells.items())))
        starts = {s: np.concatenate([[0], np.cumsum([2 * l + 1 for l in ls])]).astype(int) for s, ls in self.shells}
        object.__setattr__(self, "_start", starts)
        object.__setattr__(self, "_maps", {})

    @classmethod
    def from_basis(cls, basis: str, elements, key: str = HAMILTONIAN_KEY) -> "HamiltonianTarget":
        """The target for ``elements`` (symbols or atomic numbers) in ``basis``, shells read from PySCF
        (DataError, one line, for an unknown basis or an element without functions in it)."""
        from psilearn.targets.ao_basis import basis_shells, check_basis

        name = check_basis(basis)
        return cls(name, tuple((s, basis_shells(name, s)) for s in sorted(set(_symbols(elements)))), key)

    @classmethod
    def from_labels(cls, atoms) -> "HamiltonianTarget":
        """The target of a labelled structure, from its ``hamiltonian_basis`` and ``hamiltonian_shells``."""
        info = atoms.info
        if "hamiltonian_basis" not in info or "hamiltonian_shells" not in info:
            raise DataError("no hamiltonian labels (label with --observables hamiltonian)")
        return cls(str(info["hamiltonian_basis"]), tuple(parse_shells(info["hamiltonian_shells"]).items()))

    # ---- layout ------------------------------------------------------------------------------------
    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(s for s, _ in self.shells)

    def shells_of(self, element: str) -> tuple[int, ...]:
        ls = dict(self.shells).get(element)
        if ls is None:
            raise DataError(f"element {element} is not in this hamiltonian target "
                            f"(basis {self.basis!r}; elements {', '.join(self.elements)})")
        return ls

    def atom_size(self, element: str) -> int:
        return int(2 * np.sum(self.shells_of(element)) + len(self.shells_of(element)))

    def offsets(self, atoms_or_symbols) -> np.ndarray:
        """Start of each atom's AOs, and n_ao: (n_atoms + 1,)."""
        sizes = [self.atom_size(s) for s in _symbols(atoms_or_symbols)]
        return np.concatenate([[0], np.cumsum(sizes)]).astype(int)

    def n_ao(self, atoms_or_symbols) -> int:
        return int(self.offsets(atoms_or_symbols)[-1])

    def pair_layout(self, row: str, col: str, onsite: bool = False) -> tuple[CoupledBlock, ...]:
        """The irreps of one pair block of elements (row, col), in order: radial pairs (a, b) row-major
        (on-site: a <= b only), then L ascending (on-site a == b: symmetric L only)."""
        return _layout(self.shells_of(row), self.shells_of(col), onsite)

    def irreps_of_pair(self, row: str, col: str, onsite: bool = False) -> str:
        """e3nn irreps string of a pair block, e.g. ``'1x0e+1x1o+...'``."""
        return "+".join(f"1x{b.name}" for b in self.pair_layout(row, col, onsite))

    def pairs(self, atoms_or_symbols) -> list[tuple[int, int]]:
        """Every atom pair (i, j) with i <= j, row-major (a model chooses its own cutoff)."""
        n = len(_symbols(atoms_or_symbols))
        return [(i, j) for i in range(n) for j in range(i, n)]

    # ---- blocks ------------------------------------------------------------------------------------
    def matrix(self, atoms_or_symbols, flat) -> np.ndarray:
        """Flat (n_ao*n_ao,) or square label -> (n_ao, n_ao) float64; DataError on a size mismatch."""
        h = np.asarray(flat, dtype=np.float64)
        n = self.n_ao(atoms_or_symbols)
        if h.size != n * n:
            raise DataError(f"{h.size} hamiltonian entries, expected {n}x{n} = {n * n} for these atoms "
                            f"in basis {self.basis!r}")
        return h.reshape(n, n)

    def blocks(self, atoms_or_symbols, flat) -> dict[tuple[int, int], np.ndarray]:
        """H -> {(i, j): H[AOs of i, AOs of j]} for i <= j (PySCF order, copies)."""
        h = self.matrix(atoms_or_symbols, flat)
        off = self.offsets(atoms_or_symbols)
        return {(i, j): h[off[i]:off[i + 1], off[j]:off[j + 1]].copy() for i, j in self.pairs(atoms_or_symbols)}

    def from_blocks(self, atoms_or_symbols, blocks: dict) -> np.ndarray:
        """Inverse of :meth:`blocks`: (n_ao, n_ao), symmetric by construction ((j, i) = (i, j)^T;
        on-site blocks symmetrised). Every pair i <= j must be given."""
        off = self.offsets(atoms_or_symbols)
        h = np.zeros((off[-1], off[-1]))
        for i, j in self.pairs(atoms_or_symbols):
            if (i, j) not in blocks:
                raise DataError(f"missing hamiltonian block ({i}, {j})")
            b = np.asarray(blocks[i, j], dtype=np.float64)
            if i == j:
                b = 0.5 * (b + b.T)
            h[off[i]:off[i + 1], off[j]:off[j + 1]] = b
            h[off[j]:off[j + 1], off[i]:off[i + 1]] = b.T
        return h

    def to_irreps(self, atoms_or_symbols, flat) -> dict[tuple[int, int], np.ndarray]:
        """H -> {(i, j): the block's coupled irreps (e3nn basis), layout :meth:`pair_layout`} for i <= j."""
        syms = _symbols(atoms_or_symbols)
        return {(i, j): self.couple(syms[i], syms[j], b, i == j) for (i, j), b in self.blocks(syms, flat).items()}

    def from_irreps(self, atoms_or_symbols, irreps: dict) -> np.ndarray:
        """Inverse of :meth:`to_irreps`: the (n_ao, n_ao) matrix in PySCF's order (symmetric)."""
        syms = _symbols(atoms_or_symbols)
        blocks = {}
        for i, j in self.pairs(syms):
            if (i, j) not in irreps:
                raise DataError(f"missing hamiltonian irreps of pair ({i}, {j})")
            blocks[i, j] = self.uncouple(syms[i], syms[j], irreps[i, j], i == j)
        return self.from_blocks(syms, blocks)

    def couple(self, row: str, col: str, block, onsite: bool = False) -> np.ndarray:
        """One pair block (PySCF order, n_row x n_col) -> its irreps vector."""
        from psilearn.targets.ao_basis import pyscf_to_e3nn

        block = np.asarray(block, dtype=np.float64)
        sr, sc = self._start[row], self._start[col]
        layout = self.pair_layout(row, col, onsite)
        out = np.empty(layout[-1].start + layout[-1].dim if layout else 0)
        for cb in layout:
            sub = block[sr[cb.a]:sr[cb.a + 1], sc[cb.b]:sc[cb.b + 1]]
            sub = pyscf_to_e3nn(cb.la) @ sub @ pyscf_to_e3nn(cb.lb).T
            out[cb.cols] = np.einsum("ijk,ij->k", coupling(cb.la, cb.lb, cb.L), sub)
        return out

    def coupling_maps(self, row: str, col: str, onsite: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(C, U) of one pair block as matrices, for many blocks at once: :meth:`couple` is
        ``C @ block.ravel()`` (C: d x n_row*n_col) and :meth:`uncouple` is ``(U @ vector).reshape(n_row, n_col)``
        (U: n_row*n_col x d). Built once (cached) by applying the two methods to unit inputs, so they are
        the same maps; read-only."""
        key = (row, col, bool(onsite))
        if key not in self._maps:
            shape = (self.atom_size(row), self.atom_size(col))
            d = sum(cb.dim for cb in self.pair_layout(row, col, onsite))
            eye_b, eye_v = np.eye(shape[0] * shape[1]), np.eye(d)
            c = np.stack([self.couple(row, col, e.reshape(shape), onsite) for e in eye_b], axis=1)
            u = np.stack([self.uncouple(row, col, e, onsite).ravel() for e in eye_v], axis=1)
            c.flags.writeable = u.flags.writeable = False
            self._maps[key] = (c, u)
        return self._maps[key]

    def uncouple(self, row: str, col: str, vector, onsite: bool = False) -> np.ndarray:
        """Inverse of :meth:`couple` (on-site: the upper radial pairs mirrored, so the block is symmetric)."""
        from psilearn.targets.ao_basis import pyscf_to_e3nn

        vector = np.asarray(vector, dtype=np.float64)
        sr, sc = self._start[row], self._start[col]
        layout = self.pair_layout(row, col, onsite)
        if vector.shape != (layout[-1].start + layout[-1].dim,):
            raise DataError(f"{vector.size} irreps components for a {row}-{col} block, expected "
                            f"{layout[-1].start + layout[-1].dim}")
        block = np.zeros((sr[-1], sc[-1]))
        for cb in layout:
            sub = np.einsum("ijk,k->ij", coupling(cb.la, cb.lb, cb.L), vector[cb.cols])
            block[sr[cb.a]:sr[cb.a + 1], sc[cb.b]:sc[cb.b + 1]] += pyscf_to_e3nn(cb.la).T @ sub @ pyscf_to_e3nn(cb.lb)
        if onsite:  # mirror the a < b radial pairs; a == b sub-blocks are symmetric already
            upper = np.zeros_like(block)
            for a in range(len(sr) - 1):
                for b in range(a + 1, len(sc) - 1):
                    upper[sr[a]:sr[a + 1], sc[b]:sc[b + 1]] = block[sr[a]:sr[a + 1], sc[b]:sc[b + 1]]
            block = block + upper.T
        return block

    # ---- serialisation ---------------------------------------------------------------------------------
    def shells_text(self) -> str:
        return format_shells(dict(self.shells))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "basis": self.basis,
                "shells": {s: list(ls) for s, ls in self.shells}, "units": self.units}

    @classmethod
    def from_dict(cls, d: dict) -> "HamiltonianTarget":
        return cls(**shell_target_fields(d, "hamiltonian", cls.__name__, {"key", "basis", "shells", "units"}))

    def describe(self) -> str:
        per = ", ".join(f"{s} {self.atom_size(s)}" for s in self.elements)
        return f"{self.key} (Hamiltonian in {self.basis}; AOs per atom: {per})"

    def __str__(self) -> str:
        return json.dumps(self.to_dict())


_LAYOUTS: dict = {}


def _layout(row: tuple[int, ...], col: tuple[int, ...], onsite: bool) -> tuple[CoupledBlock, ...]:
    key = (row, col, onsite)
    if key not in _LAYOUTS:
        if onsite and row != col:
            raise DataError("an on-site block couples an atom with itself")
        out, start = [], 0
        for a, la in enumerate(row):
            for b, lb in enumerate(col):
                if onsite and b < a:
                    continue
                for L in range(abs(la - lb), la + lb + 1):
                    if onsite and a == b and not _symmetric(la, L):
                        continue
                    out.append(CoupledBlock(a, b, la, lb, L, start))
                    start += 2 * L + 1
        _LAYOUTS[key] = tuple(out)
    return _LAYOUTS[key]
