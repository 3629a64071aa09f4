"""Which structures to label: the initial set, and each round's batch.

The acquisition is the predictive variance of a structure: the sum of the variances of its
irreducible components (``Prediction.irreps_std ** 2``), i.e. the trace of the predictive covariance
in the orthonormal irreps basis (for a symmetric rank-2 tensor the Cartesian trace would count each
off-diagonal pair twice); per-atom targets sum it over the atoms of the structure.

A batch is chosen greedily so that it is both uncertain and diverse: the batch of B maximises
det(L_S) for L = diag(s) K diag(s), s the predictive standard deviations and K a surrogate kernel
between structures (a greedy determinantal / posterior-variance selection): each pick is the
candidate of largest *conditional* variance s_j^2 (1 - k_jS K_SS^-1 k_Sj), the variance left after
the structures already in the batch were labelled under K. K is a Gaussian kernel on the invariant
SOAP descriptor (:func:`psilearn.features.invariants.structure_invariants`) with length scale the
median distance of the pool to its nearest labelled structure (the resolution of the training set),
so near-duplicates never share a batch while distant candidates are ranked by their variance alone.
"""

from __future__ import annotations

import numpy as np

from psilearn.data.splits import farthest_point_order

#: a candidate whose conditional variance falls below this fraction of its own is a duplicate
DUPLICATE = 1e-10


def initial_set(descriptors: np.ndarray, n: int, strategy: str, seed: int, elements: list[set[int]] | None = None) -> list[int]:
    """N0 pool indices: farthest-point sampling from a seeded random first structure (``fps``;
    topped up at random if the pool holds fewer than ``n`` distinct structures) or uniform (``random``).
    With ``elements`` (each pool structure's atomic numbers) the set then covers every element of the
    pool (a model cannot predict an element it never saw): see :func:`cover_elements`."""
    rng = np.random.default_rng([seed, 0])
    if strategy == "random":
        order = [int(i) for i in rng.choice(len(descriptors), size=n, replace=False)]
    else:
        order = [int(i) for i in farthest_point_order(np.asarray(descriptors, float), int(rng.integers(len(descriptors))), n)]
        if len(order) < n:
            rest = np.setdiff1d(np.arange(len(descriptors)), order)
            order += [int(i) for i in rng.choice(rest, size=n - len(order), replace=False)]
    return order if elements is None else cover_elements(order, elements, rng)


def focus_initial_set(descriptors: np.ndarray, focus_descriptors: np.ndarray, n: int, seed: int,
                      elements: list[set[int]] | None = None) -> list[int]:
    """N0 pool indices chosen for the *focus* structures before any model exists: :func:`targeted_batch` with
    every prior variance 1, i.e. the greedy set that most reduces the focus structures' variance under the
    Gaussian kernel of the invariant descriptors (the first pick is the pool structure most like the focus as a
    whole, each next one what the picks leave unexplained). ``elements``: as for :func:`initial_set`."""
    x, xf = np.asarray(descriptors, float), np.asarray(focus_descriptors, float)
    order = targeted_batch(np.ones(len(x)), np.ones(len(xf)), x, xf, np.arange(len(x)), np.zeros(0, int), n)
    return order if elements is None else cover_elements(order, elements, np.random.default_rng([seed, 0]))


def cover_elements(order: list[int], elements: list[set[int]], rng: np.random.Generator) -> list[int]:
    """``order`` with structures swapped in until every element of the pool occurs: for each missing
    element (in order of Z) a random structure containing it replaces the latest pick whose removal
    loses no element. ValueError when the initial set is too small to cover them all."""
    from ase.data import chemical_symbols

    order = list(order)
    for z in sorted(set().union(*elements) - set().union(*(elements[i] for i in order))):
        have = set().union(*(elements[i] for i in order))
        if z in have:
            continue
        pick = int(rng.choice([i for i, e in enumerate(elements) if z in e and i not in order]))
        for j in range(len(order) - 1, -1, -1):
            rest = set().union(*(elements[i] for k, i in enumerate(order) if k != j))
            if elements[order[j]] <= rest | elements[pick]:
                order[j] = pick
                break
        else:
            need = sorted(set().union(*elements))
            raise ValueError(f"--init {len(order)} structures cannot cover the pool's elements "
                             f"{', '.join(chemical_symbols[e] for e in need)}: raise --init")
    return order


def structure_variance(irreps_std: np.ndarray, atom_structure: np.ndarray | None, n: int) -> np.ndarray:
    """(n,) acquisition per structure from a prediction's ``irreps_std`` (samples, irreps):
    per structure, or summed over the atoms (``atom_structure``: each atom's structure)."""
    var = np.sum(np.asarray(irreps_std, float) ** 2, axis=1)
    if atom_structure is None:
        return var
    out = np.zeros(n)
    np.add.at(out, atom_structure, var)
    return out


def random_batch(candidates: np.ndarray, b: int, seed: int, round_: int) -> list[int]:
    """``b`` candidates drawn uniformly, reproducibly from (seed, round)."""
    rng = np.random.default_rng([seed, round_])
    return [int(i) for i in rng.choice(np.asarray(candidates), size=min(b, len(candidates)), replace=False)]


def length_scale(descriptors: np.ndarray, candidates: np.ndarray, labelled: np.ndarray) -> float:
    """The surrogate kernel's length scale: the median distance of the candidates to their nearest
    labelled structure (positive; the median pairwise candidate distance if that is zero or nothing is labelled)."""
    x = np.asarray(descriptors, float)
    c, lab = x[candidates], x[labelled]
    scale = 0.0
    if len(lab):
        scale = float(np.sqrt(np.median(squared_distances(c, lab).min(axis=1))))
    if scale <= 0:
        scale = float(np.sqrt(np.median(squared_distances(c, c))))
    return scale if scale > 0 else 1.0


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances between the rows of ``a`` and ``b`` (rounding below 0 clipped)."""
    d2 = np.einsum("ij,ij->i", a, a)[:, None] + np.einsum("ij,ij->i", b, b)[None, :] - 2 * a @ b.T
    return np.maximum(d2, 0.0)


def diverse_batch(variance: np.ndarray, descriptors: np.ndarray, candidates: np.ndarray, labelled: np.ndarray,
                  b: int) -> list[int]:
    """Greedy determinantal selection of ``b`` of ``candidates`` (pool indices) from their predictive
    ``variance`` (per candidate) and the pool ``descriptors`` (see the module docstring). Incremental
    Cholesky: O(len(candidates) * b^2). Ties go to the lower pool index."""
    candidates = np.asarray(candidates, int)
    x = np.asarray(descriptors, float)[candidates]
    s = np.sqrt(np.maximum(np.asarray(variance, float), 0.0))
    ell = length_scale(descriptors, candidates, np.asarray(labelled, int))
    sq = np.einsum("ij,ij->i", x, x)
    cond = s**2  # conditional variance of each candidate given the picks so far
    rows: list[np.ndarray] = []  # Cholesky rows of L restricted to the picks, over all candidates
    picked: list[int] = []
    for _ in range(min(b, len(candidates))):
        masked = cond.copy()
        masked[picked] = -np.inf
        j = int(np.argmax(masked))
        if masked[j] <= DUPLICATE * max(s.max() ** 2, 1e-300) and picked:
            j = _fill(masked)  # only duplicates left: any unpicked candidate, lowest index first
        picked.append(j)
        cond = condition_on(j, x, sq, s, ell, cond, rows)
    return [int(candidates[j]) for j in picked]


def condition_on(j: int, x: np.ndarray, sq: np.ndarray, s: np.ndarray, ell: float, cond: np.ndarray,
                 rows: list[np.ndarray]) -> np.ndarray:
    """One step of the incremental Cholesky of L = diag(s) K diag(s) (K: Gaussian kernel of width
    ``ell`` on the descriptors ``x``, ``sq`` their squared norms): appends L's Cholesky row at ``j``
    to ``rows`` and returns the conditional variances ``cond`` given the pick ``j`` as well."""
    k = np.exp(-np.maximum(sq + sq[j] - 2 * x @ x[j], 0.0) / (2 * ell**2))
    lj = s * k * s[j]  # column j of L
    e = (lj - sum(r * r[j] for r in rows)) / np.sqrt(max(cond[j], 1e-300))
    rows.append(e)
    return np.maximum(cond - e**2, 0.0)


def _fill(masked: np.ndarray) -> int:
    free = np.flatnonzero(np.isfinite(masked))
    return int(free[0])


def _rbf(a: np.ndarray, b: np.ndarray, ell: float) -> np.ndarray:
    return np.exp(-squared_distances(a, b) / (2 * ell**2))


def targeted_batch(variance: np.ndarray, focus_variance: np.ndarray, descriptors: np.ndarray, focus_descriptors: np.ndarray,
                   candidates: np.ndarray, labelled: np.ndarray, b: int) -> list[int]:
    """Greedy batch of ``b`` candidates that most reduces the total predictive variance on the *focus*
    structures (the region where the model should be good; unlabelled). Under the surrogate covariance
    C = diag(s) K diag(s) over focus and candidates (s: the model's predictive stds, K: the Gaussian
    kernel of :func:`diverse_batch`), labelling candidate j removes sum_t C_tj^2 / C_jj from the focus
    variance; each pick conditions C on it (rank-one update), so the batch is diverse as well."""
    candidates = np.asarray(candidates, int)
    xc = np.asarray(descriptors, float)[candidates]
    xt = np.asarray(focus_descriptors, float)
    sc = np.sqrt(np.maximum(np.asarray(variance, float), 0.0))
    st = np.sqrt(np.maximum(np.asarray(focus_variance, float), 0.0))
    ell = length_scale(descriptors, candidates, np.asarray(labelled, int))
    c_tc = st[:, None] * _rbf(xt, xc, ell) * sc[None, :]
    c_cc = sc[:, None] * _rbf(xc, xc, ell) * sc[None, :]
    floor = DUPLICATE * max(float(sc.max()) ** 2, 1e-300)
    picked: list[int] = []
    for _ in range(min(b, len(candidates))):
        diag = np.diag(c_cc).copy()
        score = np.sum(c_tc**2, axis=0) / np.maximum(diag, floor)
        score[diag <= floor] = -1.0  # labelled already in effect: duplicates of picks
        score[picked] = -np.inf
        j = int(np.argmax(score))
        picked.append(j)
        cj = c_cc[:, j].copy()
        denom = max(cj[j], floor)
        c_tc -= np.outer(c_tc[:, j], cj) / denom
        c_cc -= np.outer(cj, cj) / denom
    return [int(candidates[j]) for j in picked]
