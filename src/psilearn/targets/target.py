"""The Target: one declaration of what an observable is, from which everything else follows."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from psilearn.errors import ConfigError
from psilearn.targets.cartesian import IrrepBlock, cartesian_basis, formula_rank

_PER = ("structure", "atom", "pair")
_PAIR_TENSORS = ("", "ij", "ij=ji")  # a pair carries a scalar or a rank-2 tensor (J couplings, exchange)
_POOL = ("sum", "mean")


@dataclass(frozen=True)
class Target:
    """An observable declared by its symmetry.

    Parameters
    ----------
    key:
        Name of the label: ``atoms.info[key]`` (per structure) or ``atoms.arrays[key]`` (per atom).
    per:
        ``"structure"``, ``"atom"`` or ``"pair"``. A per-pair value belongs to an atom pair (i, j):
        ``atoms.info[key + "_pairs"]`` holds the pairs (2P ints, flattened (P, 2), 0-based, i < j)
        and ``atoms.info[key]`` the values (P * 3**rank numbers, flattened (P, ...) row-major); a
        rank-2 pair tensor T[a, b] has ``a`` belonging to atom i and ``b`` to atom j, so exchanging
        the pair transposes it (docs/pairs.md). Scalar or rank 2 only.
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
    grid:
        Spectrum targets only: the recorded grid (energies, wavenumbers, ...; strictly increasing)
        on which the value is a function. The value is then ``len(grid)`` numbers, one invariant
        (0e) scalar per grid point, per structure or per atom (e.g. a local DOS whose sum over the
        atoms is the structure's DOS). ``tensor`` must be scalar.
    grid_units:
        Free text units of ``grid`` (e.g. ``"eV"``).
    absorber:
        Spectrum targets per structure only: element symbol of the atom the spectrum belongs to
        (e.g. ``"Fe"`` for a Fe K-edge XANES); models use only the environments of that element.
    """

    key: str
    per: str = "structure"
    tensor: str = ""
    parity: int = 1
    traceless: bool = False
    pool: str = "sum"
    units: str = ""
    grid: tuple[float, ...] | None = None
    grid_units: str = ""
    absorber: str = ""
    _blocks: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.key:
            raise ConfigError("a Target needs a data key")
        if self.per not in _PER:
            raise ConfigError(f"per must be one of {_PER}, got {self.per!r}")
        if self.pool not in _POOL:
            raise ConfigError(f"pool must be one of {_POOL}, got {self.pool!r}")
        if self.parity not in (1, -1):
            raise ConfigError(f"parity must be +1 or -1, got {self.parity!r}")
        if self.grid is not None:
            self._check_spectrum()
            object.__setattr__(self, "_blocks", tuple(IrrepBlock(0, 1, i) for i in range(len(self.grid))))
            return
        if self.grid_units or self.absorber:
            raise ConfigError("grid_units and absorber apply to spectrum targets only (give a grid)")
        if self.per == "pair" and self.tensor not in _PAIR_TENSORS:
            raise ConfigError(f"a per-pair target is a scalar or a rank-2 tensor ({', '.join(repr(t) for t in _PAIR_TENSORS)}), "
                              f"not {self.tensor!r}")
        basis = cartesian_basis(self.tensor)
        blocks = [IrrepBlock(b.l, b.p * self.parity, b.start) for b in basis.blocks]
        if self.traceless:
            blocks = self._traceless_blocks(blocks)
        object.__setattr__(self, "_blocks", tuple(blocks))

    def _check_spectrum(self) -> None:
        """Validate a spectrum target and store its grid as a tuple of floats."""
        try:
            g = np.asarray(self.grid, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise ConfigError(f"a spectrum grid must be numbers, got {str(self.grid)[:60]}") from None
        if len(g) < 2 or not np.all(np.isfinite(g)) or np.any(np.diff(g) <= 0):
            raise ConfigError("a spectrum grid needs at least 2 finite, strictly increasing points")
        if self.per == "pair":
            raise ConfigError("spectra per atom pair are not supported (per must be 'structure' or 'atom')")
        if self.tensor or self.traceless or self.parity != 1:
            raise ConfigError("a spectrum target is a scalar (0e) per grid point: no tensor, parity or traceless")
        if self.absorber:
            from ase.data import atomic_numbers

            if self.absorber not in atomic_numbers:
                raise ConfigError(f"absorber {self.absorber!r} is not an element symbol")
            if self.per != "structure":
                raise ConfigError("an absorber-centred spectrum is a per-structure target")
        object.__setattr__(self, "grid", tuple(float(x) for x in g))

    @property
    def is_spectrum(self) -> bool:
        """True for a function on a recorded grid (``grid`` given)."""
        return self.grid is not None

    def _traceless_blocks(self, blocks: list[IrrepBlock]) -> list[IrrepBlock]:
        rank = self.rank
        if rank == 2:  # the trace is exactly the l=0 part
            return [b for b in blocks if b.l != 0]
        symmetric = len(self.tensor.split("=")) > 1 and cartesian_basis(self.tensor).to_irreps.shape[1] == (
            (rank + 1) * (rank + 2) // 2
        )
        if rank >= 3 and symmetric:  # fully symmetric: traceless part is the single l = rank irrep
            return [b for b in blocks if b.l == rank]
        raise ConfigError(
            f"traceless is supported for rank-2 and fully symmetric tensors, not {self.tensor!r}"
        )

    # ---- shape information ---------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return formula_rank(self.tensor)

    @property
    def size(self) -> int:
        """Number of Cartesian numbers per value (3**rank), or of grid points for a spectrum."""
        return len(self.grid) if self.grid is not None else 3**self.rank

    @property
    def pairs_key(self) -> str:
        """Per-pair targets: the info key of the pair list (``KEY_pairs``)."""
        return f"{self.key}_pairs"

    @property
    def swap_signs(self) -> tuple[int, ...]:
        """Per learned block, the sign it takes when the pair (i, j) becomes (j, i): the tensor
        transposes, which leaves the symmetric parts (l = 0, 2) and flips the antisymmetric one
        (l = 1). Derived from the change of basis, not assumed; all +1 for a scalar."""
        if self.rank == 0:
            return tuple(1 for _ in self.blocks)
        basis = cartesian_basis(self.tensor)
        out = []
        for b in self.blocks:
            unit = np.zeros((b.dim, basis.to_irreps.shape[1]))
            unit[:, b.cols] = np.eye(b.dim)
            cart = (unit @ basis.to_cartesian).reshape(-1, 3, 3)
            swapped = cart.transpose(0, 2, 1).reshape(b.dim, 9) @ basis.to_irreps
            sign = int(round(float(np.sum(swapped[:, b.cols] * unit[:, b.cols]) / b.dim)))
            if sign not in (1, -1) or not np.allclose(swapped, sign * unit, atol=1e-10):
                raise ConfigError(f"block {b.name} of {self.tensor!r} has no definite sign under exchange of the pair")
            out.append(sign)
        return tuple(out)

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
        """Cartesian values (n, 3**rank) -> full irreps vector (n, n_irreps), e3nn basis.
        A spectrum is already invariant: returned unchanged as (n, n_grid)."""
        if self.grid is not None:
            return np.asarray(cartesian, dtype=np.float64).reshape(-1, self.size).copy()
        basis = cartesian_basis(self.tensor)
        return np.asarray(cartesian, dtype=np.float64).reshape(-1, self.size) @ basis.to_irreps

    def to_cartesian(self, irreps: np.ndarray) -> np.ndarray:
        """Irreps vector (n, n_irreps) -> Cartesian (n, 3**rank); dropped (traceless) parts are 0."""
        if self.grid is not None:
            return np.asarray(irreps, dtype=np.float64).reshape(-1, self.size).copy()
        basis = cartesian_basis(self.tensor)
        full = np.zeros((len(irreps), basis.to_irreps.shape[1]))
        for b in self.blocks:
            full[:, b.cols] = irreps[:, b.cols]
        return full @ basis.to_cartesian

    def to_cartesian_std(self, irreps_var: np.ndarray) -> np.ndarray:
        """Propagate independent per-irrep-component variances (n, n_irreps) to Cartesian standard
        deviations (n, 3**rank): var_cart = sum_c var_c * to_cartesian[c]**2."""
        if self.grid is not None:
            return np.sqrt(np.clip(np.asarray(irreps_var, dtype=np.float64), 0.0, None))
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
        if self.grid is None:  # non-spectrum targets serialise exactly as before the grid existed
            for k in ("grid", "grid_units", "absorber"):
                d.pop(k)
        else:
            d["grid"] = list(self.grid)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Target":
        """The Target of :meth:`to_dict`; a dict of another target kind (``kind: "density"`` or
        ``"hamiltonian"``, as model files record them) is dispatched to that kind's ``from_dict``."""
        if cls is Target and d.get("kind") == "density":
            from psilearn.targets.density import DensityTarget

            return DensityTarget.from_dict(d)
        if cls is Target and d.get("kind") == "hamiltonian":
            from psilearn.targets.hamiltonian import HamiltonianTarget

            return HamiltonianTarget.from_dict(d)
        allowed = {"key", "per", "tensor", "parity", "traceless", "pool", "units", "grid", "grid_units", "absorber"}
        unknown = set(d) - allowed
        if unknown:
            raise ConfigError(f"unknown Target fields {sorted(unknown)}")
        d = dict(d)
        if d.get("grid") is not None:
            d["grid"] = tuple(float(x) for x in d["grid"])
        return cls(**d)

    def describe(self) -> str:
        if self.grid is not None:
            gu = f" {self.grid_units}" if self.grid_units else ""
            where = f"absorber {self.absorber}" if self.absorber else self.per
            return (
                f"{self.key} (spectrum per {where}, {len(self.grid)} points from {self.grid[0]:g} to {self.grid[-1]:g}{gu}"
                f"{', pool ' + self.pool if self.per == 'structure' and not self.absorber else ''}"
                f"{', units ' + self.units if self.units else ''})"
            )
        form = self.tensor or "scalar"
        extra = ", traceless" if self.traceless else ""
        return (
            f"{self.key} ({self.per}, {form}{extra}, irreps {self.irreps}"
            f"{', pool ' + self.pool if self.per == 'structure' else ''}"
            f"{', units ' + self.units if self.units else ''})"
        )

    def __str__(self) -> str:
        return json.dumps(self.to_dict())
