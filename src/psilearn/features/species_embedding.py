"""Element (species) compression of the neighbour density: ``soap.species_embedding: d``.

λ-SOAP couples the neighbour-density expansion with itself, so with one density channel per element
its width grows with the square of the number of elements (73 elements and 6 radial functions:
(73 x 6)^2 = 191 844 features per (l1, l2) pair). Projecting the element channels onto d
"pseudo-elements" first (alchemical compression: Willatt, Musil & Ceriotti, PCCP 20, 29661 (2018);
Lopanitsyna et al., PRM 7, 045802 (2023)),

    c'_{k n l m} = sum_Z U_{k Z} c_{Z n l m},    k = 1..d,

makes it (d x n_radial)^2 whatever the number of elements. The map acts on the element index only,
so every λ-SOAP block keeps its exact rotation/reflection behaviour. U is fixed, not learned: each
element's column is drawn from a Gaussian seeded by its atomic number alone (unit-normalised), so an
element has the same embedding in every data set and model, and elements never seen in training still
have one; with d >= the number of elements the embedding is (almost surely) injective and nothing is
lost. The kernel between compressed densities approximates the uncompressed one with an error that
shrinks like 1/sqrt(d) for random directions (Johnson-Lindenstrauss).

``soap.species_embedding_kind``: 'random' (the default, above: every pair of elements is about
equally (dis)similar) or 'elemental': each element's column is a random Fourier feature of its
(period, group, covalent radius), u_Z = cos(W x_Z + b) normalised, with W and b drawn once from a
fixed seed (Rahimi & Recht, NIPS 2007), so u_Z . u_Z' approximates a Gaussian kernel
exp(-|x_Z - x_Z'|^2 / 2) on those properties, to within ~1/sqrt(d): chemically similar elements
(neighbours in a group or period, the lanthanides) share most of their density channels, and data on
one teaches the model about the others. x_Z is (period, group / 3, covalent radius / 0.3 Angstrom);
the f-block counts as group 3. Still fixed, not learned, and the same in every model.
"""

from __future__ import annotations

import numpy as np

_SEED = 20181129  # fixed: the embedding is part of the model's definition
KINDS = ("random", "elemental")
_PERIOD_START = (1, 3, 11, 19, 37, 55, 87, 119)  # first atomic number of each period


def period_group(z: int) -> tuple[int, int]:
    """(period 1-7, group 1-18) of element ``z`` (1-118); lanthanides and actinides: group 3."""
    period = next(p for p in range(1, 8) if z < _PERIOD_START[p])
    k = z - _PERIOD_START[period - 1]  # position in its period, from 0
    if period == 1:
        return 1, (1 if z == 1 else 18)
    if period <= 3:
        return period, (k + 1 if k < 2 else k + 11)
    if period <= 5:
        return period, k + 1
    if k < 2:  # periods 6-7: alkali and alkaline-earth metals
        return period, k + 1
    return period, (3 if k < 17 else k - 13)  # La-Lu / Ac-Lr in group 3, then Hf/Rf (group 4) onwards


def element_properties(z: int) -> np.ndarray:
    """(3,) scaled (period, group / 3, covalent radius / 0.3 Angstrom) of element ``z`` (ASE's radii)."""
    from ase.data import covalent_radii

    period, group = period_group(int(z))
    return np.array([period, group / 3.0, covalent_radii[int(z)] / 0.3])


def element_embedding(numbers: list[int], dim: int, kind: str = "random") -> np.ndarray:
    """U (dim, n_elements), unit columns. 'random': element Z's column drawn from N(0, 1)^dim seeded by
    Z; 'elemental': random Fourier features of :func:`element_properties` (module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"species embedding kind must be one of {KINDS}, got {kind!r}")
    cols = []
    if kind == "elemental":
        rng = np.random.default_rng([_SEED, dim])
        w, b = rng.standard_normal((dim, 3)), rng.uniform(0.0, 2 * np.pi, dim)
        cols = [np.cos(w @ element_properties(z) + b) for z in numbers]
    else:
        cols = [np.random.default_rng([_SEED, int(z)]).standard_normal(dim) for z in numbers]
    return np.array([v / np.linalg.norm(v) for v in cols]).T.reshape(dim, len(numbers))


def compress(xl: list[np.ndarray], u: np.ndarray, n_radial: int) -> list[np.ndarray]:
    """[X_l (n, 2l+1, n_elements * n_radial)] (elements side by side) -> [X_l (n, 2l+1, dim * n_radial)]."""
    d, n_t = u.shape
    out = []
    for x in xl:
        n, m, _ = x.shape
        y = np.einsum("kt,nmtr->nmkr", u, x.reshape(n, m, n_t, n_radial))
        out.append(y.reshape(n, m, d * n_radial))
    return out
