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
shrinks like 1/sqrt(d) for random directions (Johnson-Lindenstrauss); chemically similar elements are
not placed closer than others, which a learned embedding would do (not implemented).
"""

from __future__ import annotations

import numpy as np

_SEED = 20181129  # fixed: the embedding is part of the model's definition


def element_embedding(numbers: list[int], dim: int) -> np.ndarray:
    """U (dim, n_elements): the column of element Z is a unit vector drawn from N(0, 1)^dim seeded by Z."""
    cols = []
    for z in numbers:
        v = np.random.default_rng([_SEED, int(z)]).standard_normal(dim)
        cols.append(v / np.linalg.norm(v))
    return np.array(cols).T.reshape(dim, len(numbers))


def compress(xl: list[np.ndarray], u: np.ndarray, n_radial: int) -> list[np.ndarray]:
    """[X_l (n, 2l+1, n_elements * n_radial)] (elements side by side) -> [X_l (n, 2l+1, dim * n_radial)]."""
    d, n_t = u.shape
    out = []
    for x in xl:
        n, m, _ = x.shape
        y = np.einsum("kt,nmtr->nmkr", u, x.reshape(n, m, n_t, n_radial))
        out.append(y.reshape(n, m, d * n_radial))
    return out
