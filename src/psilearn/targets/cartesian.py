"""Exact Cartesian <-> irreducible spherical decomposition of tensors, via e3nn.

The change of basis comes from ``e3nn.io.CartesianTensor`` (orthonormal, so a round trip is exact to
machine precision). We only extract it once per index formula as two dense float64 matrices, so that
converting a whole data set is a single matrix product.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from psilearn._tables import lookup
from psilearn.errors import ConfigError

_INDICES = re.compile(r"[a-z]+")


class IrrepColumns:
    """What a block of 2l+1 columns with degree ``l``, parity ``p`` and first column ``start`` offers
    (shared by tensor irreps and density-coefficient blocks)."""

    l: int
    p: int
    start: int

    @property
    def dim(self) -> int:
        return 2 * self.l + 1

    @property
    def name(self) -> str:
        return f"{self.l}{'e' if self.p == 1 else 'o'}"

    @property
    def cols(self) -> slice:
        return slice(self.start, self.start + self.dim)


@dataclass(frozen=True)
class IrrepBlock(IrrepColumns):
    """One irreducible component of a tensor: degree ``l``, parity ``p`` (+1 even, -1 odd),
    and its columns ``start:start+2l+1`` in the irreps vector (e3nn's real-harmonic basis)."""

    l: int
    p: int
    start: int


@dataclass(frozen=True)
class CartesianBasis:
    """Change of basis for one index formula.

    ``to_irreps`` has shape (3**rank, n_irreps) and ``to_cartesian`` (n_irreps, 3**rank), both acting
    on row-major flattened Cartesian tensors: ``irreps = cart @ to_irreps``,
    ``cart = irreps @ to_cartesian``. ``blocks`` lists the irreps in order, with parity for a
    *polar* tensor (each index a vector, 1o).
    """

    formula: str
    rank: int
    to_irreps: np.ndarray
    to_cartesian: np.ndarray
    blocks: tuple[IrrepBlock, ...]


def formula_rank(formula: str) -> int:
    """Rank of an index formula: '' -> 0, 'i' -> 1, 'ij=ji' -> 2, ..."""
    return len(formula.split("=")[0]) if formula else 0


def cartesian_basis(formula: str) -> CartesianBasis:
    """The exact change of basis for a Cartesian index formula ('' for a scalar, 'i', 'ij', 'ij=ji',
    'ijk=jik=ikj', ... up to rank 4), extracted from ``e3nn.io.CartesianTensor`` (common formulas
    come from the shipped table of e3nn's own numbers, see :mod:`psilearn._tables`). A malformed
    formula is a ConfigError."""
    if not isinstance(formula, str):
        raise ConfigError(f"a tensor formula is a string such as 'ij=ji', got {formula!r}")
    return _cartesian_basis(formula)


@lru_cache(maxsize=None)
def _cartesian_basis(formula: str) -> CartesianBasis:
    rank = formula_rank(formula)
    parts = formula.split("=") if formula else []
    if any(not _INDICES.fullmatch(p) or len(p) != rank or len(set(p)) != rank for p in parts):
        raise ConfigError(f"invalid tensor formula {formula!r}: use distinct lower-case index letters a-z, the same in every "
                          f"'='-separated part, e.g. 'i', 'ij', 'ij=ji', 'ijk=jik=ikj'")
    if any(set(p) != set(parts[0]) for p in parts):
        raise ConfigError(f"invalid tensor formula {formula!r}: every '='-separated part must permute the same indices "
                          f"({parts[0]!r}), e.g. 'ij=ji'")
    if rank == 0:
        one = np.ones((1, 1))
        return CartesianBasis("", 0, one, one, (IrrepBlock(0, 1, 0),))
    if rank > 4:
        raise ConfigError(f"tensor formula {formula!r}: ranks above 4 are not supported")
    shipped = _shipped_basis(formula, rank)
    if shipped is not None:
        return shipped
    return e3nn_cartesian_basis(formula)


def _shipped_basis(formula: str, rank: int) -> CartesianBasis | None:
    to_irreps = lookup(f"cartesian/{formula}/to_irreps", ("e3nn",))
    to_cart = lookup(f"cartesian/{formula}/to_cartesian", ("e3nn",))
    blocks = lookup(f"cartesian/{formula}/blocks", ("e3nn",))
    if to_irreps is None or to_cart is None or blocks is None:
        return None
    return CartesianBasis(formula, rank, to_irreps, to_cart, tuple(IrrepBlock(int(l), int(p), int(s)) for l, p, s in blocks))


def e3nn_cartesian_basis(formula: str) -> CartesianBasis:
    """:func:`cartesian_basis` computed with e3nn (imports torch; a few seconds for rank 3-4)."""
    rank = formula_rank(formula)
    import torch
    from e3nn.io import CartesianTensor

    try:
        ct = CartesianTensor(formula)
    except Exception as exc:  # e3nn raises assorted errors for malformed formulas
        raise ConfigError(f"invalid tensor formula {formula!r}: {exc}") from None
    n_cart = 3**rank
    eye_cart = torch.eye(n_cart, dtype=torch.float64).reshape(n_cart, *([3] * rank))
    eye_irr = torch.eye(ct.dim, dtype=torch.float64)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn builds its change of basis in the default dtype
    try:
        rtp = ct.reduced_tensor_products()
        to_irreps = ct.from_cartesian(eye_cart, rtp).numpy().reshape(n_cart, ct.dim)
        to_cart = ct.to_cartesian(eye_irr, rtp).numpy().reshape(ct.dim, n_cart)
    finally:
        torch.set_default_dtype(prev)
    blocks, start = [], 0
    for mul, ir in ct:
        for _ in range(mul):
            blocks.append(IrrepBlock(ir.l, ir.p, start))
            start += ir.dim
    return CartesianBasis(formula, rank, to_irreps, to_cart, tuple(blocks))
