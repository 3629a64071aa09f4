"""The Target: one declaration of what an observable is, from which everything else follows."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from psilearn.targets.cartesian import IrrepBlock, cartesian_basis, formula_rank

_PER = ("structure", "atom")
_POOL = ("sum", "mean")


@dataclass(frozen=True)
class Target:
    """An observable declared by its symmetry.

    Parameters
    ----------
    key:
        Name of the label: ``atoms.info[key]`` (per structure) or ``atoms.arrays[key]`` (per atom).
    per:
        ``"structure"`` or ``"atom"``.
    tensor:
        Cartesian index formula in e3nn's notation: ``""`` scalar, ``"i"`` vector, ``"ij"`` general
        rank 2, ``"ij=ji"`` symmetric, ``"ijk=jik=ikj"`` fully symmetric rank 3, up to rank 4. Values
        are stored flattened row-major (a 3x3 tensor is 9 numbers), as in extxyz.
    parity:
        +1 for a polar (true) tensor, -1 for an axial one (pseudo-scalar, pseudo-vector, ...).
    traceless:
        The tensor has zero trace (e.g. an electric field gradient). Supported for rank 2 and for
        fully symmetric tensors.
    pool:
        For per-structure targets, how atomic contributions combine: ``"sum"`` (extensive, e.g. a
        dipole or polarizability) or ``"mean"`` (intensive, e.g. a band gap).
    units:
        Free text, recorded in model metadata and shown in reports; values keep the user's units.
    """

    key: str
    per: str = "structure"
    tensor: str = ""
    parity: int = 1
    traceless: bool = False
    pool: str = "sum"
    units: str = ""
    _blocks: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a Target needs a data key")
        if self.per not in _PER:
            raise ValueError(f"per must be one of {_PER}, got {self.per!r}")
        if self.pool not in _POOL:
            raise ValueError(f"pool must be one of {_POOL}, got {self.pool!r}")
        if self.parity not in (1, -1):
            raise ValueError(f"parity must be +1 or -1, got {self.parity!r}")
        basis = cartesian_basis(self.tensor)
        blocks = [IrrepBlock(b.l, b.p * self.parity, b.start) for b in basis.blocks]
        if self.traceless:
            blocks = self._traceless_blocks(blocks)
        object.__setattr__(self, "_blocks", tuple(blocks))

    def _traceless_blocks(self, blocks: list[IrrepBlock]) -> list[IrrepBlock]:
        rank = self.rank
        if rank == 2:  # the trace is exactly the l=0 part
            return [b for b in blocks if b.l != 0]
        symmetric = len(self.tensor.split("=")) > 1 and cartesian_basis(self.tensor).to_irreps.shape[1] == (
            (rank + 1) * (rank + 2) // 2
        )
        if rank >= 3 and symmetric:  # fully symmetric: traceless part is the single l = rank irrep
            return [b for b in blocks if b.l == rank]
        raise ValueError(
            f"traceless is supported for rank-2 and fully symmetric tensors, not {self.tensor!r}"
        )

    # ---- shape information ---------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return formula_rank(self.tensor)

    @property
    def size(self) -> int:
        """Number of Cartesian numbers per value (3**rank)."""
        return 3**self.rank

    @property
    def blocks(self) -> tuple[IrrepBlock, ...]:
        """The irreducible components that are learned (traceless parts dropped)."""
        return self._blocks

    @property
    def irreps(self) -> str:
        """e3nn-style irreps string of the learned components, e.g. ``'1x0e+1x2e'``."""
        counts: dict[str, int] = {}
        for b in self.blocks:
            counts[b.name] = counts.get(b.name, 0) + 1
        return "+".join(f"{m}x{n}" for n, m in counts.items())

    # ---- conversion ------------------------------------------------------------------------------
    def to_irreps(self, cartesian: np.ndarray) -> np.ndarray:
        """Cartesian values (n, 3**rank) -> full irreps vector (n, n_irreps), e3nn basis."""
        basis = cartesian_basis(self.tensor)
        return np.asarray(cartesian, dtype=np.float64).reshape(-1, self.size) @ basis.to_irreps

    def to_cartesian(self, irreps: np.ndarray) -> np.ndarray:
        """Irreps vector (n, n_irreps) -> Cartesian (n, 3**rank); dropped (traceless) parts are 0."""
        basis = cartesian_basis(self.tensor)
        full = np.zeros((len(irreps), basis.to_irreps.shape[1]))
        for b in self.blocks:
            full[:, b.cols] = irreps[:, b.cols]
        return full @ basis.to_cartesian

    def to_cartesian_std(self, irreps_var: np.ndarray) -> np.ndarray:
        """Propagate independent per-irrep-component variances (n, n_irreps) to Cartesian standard
        deviations (n, 3**rank): var_cart = sum_c var_c * to_cartesian[c]**2."""
        basis = cartesian_basis(self.tensor)
        full = np.zeros((len(irreps_var), basis.to_irreps.shape[1]))
        for b in self.blocks:
            full[:, b.cols] = irreps_var[:, b.cols]
        return np.sqrt(np.clip(full @ basis.to_cartesian**2, 0.0, None))

    def project(self, cartesian: np.ndarray) -> np.ndarray:
        """Project Cartesian values onto the declared symmetry (symmetrize, remove trace)."""
        return self.to_cartesian(self.to_irreps(cartesian))

    # ---- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("_blocks", None)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Target":
        allowed = {"key", "per", "tensor", "parity", "traceless", "pool", "units"}
        unknown = set(d) - allowed
        if unknown:
            raise ValueError(f"unknown Target fields {sorted(unknown)}")
        return cls(**d)

    def describe(self) -> str:
        form = self.tensor or "scalar"
        extra = ", traceless" if self.traceless else ""
        return (
            f"{self.key} ({self.per}, {form}{extra}, irreps {self.irreps}"
            f"{', pool ' + self.pool if self.per == 'structure' else ''}"
            f"{', units ' + self.units if self.units else ''})"
        )

    def __str__(self) -> str:
        return json.dumps(self.to_dict())
