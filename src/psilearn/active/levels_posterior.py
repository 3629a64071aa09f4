"""Cost-aware selection across fidelity levels on the multi-fidelity model's own joint posterior.

:func:`psilearn.active.fidelity.cost_aware_batch` takes each level's own term of the target variance
from the model but guesses the covariance between structures from a surrogate kernel. The recursive
model knows it level by level
(:meth:`psilearn.models.fidelity.multifidelity.MultiFidelityModel.level_posterior_factors`): the target
level's posterior covariance is sum_k P_k^2 C_k, and a level-k label conditions C_k only (the model's
own accounting: the levels' corrections are independent). So the selection keeps one
:class:`~psilearn.active.posterior.JointPosterior` per level (factors scaled into the target level),
and each greedy step scores every available (structure j, level k) pair by

    criterion ``variance``: P_k^2 tr C_k(j, j | picks at level k) / c_k  (the level's conditional term
                            of the target variance per second: the surrogate rule's meaning, on the
                            model's covariance);
    criterion ``focus``:    tr((C_k,jj + s2_k)^-1 C_k,jF C_k,Fj) / c_k (the reduction of the focus
                            structures' target-level variance per second),

takes the best affordable one and conditions that level's posterior on it. Stopping rules as in
``cost_aware_batch``: no level's cost fits in what is left of the round's seconds; a pick whose score
is a duplicate's (below ``DUPLICATE`` x the largest initial one) is replaced by the cheapest
affordable free pair. Affine levels (no correction model) reduce nothing here and are never picked.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.active.posterior import JointPosterior, candidates_posterior
from psilearn.active.selection import DUPLICATE


def level_posteriors(model, frames: list[Atoms], focus: list[Atoms] | None, per_atom: bool) -> list[JointPosterior | None] | None:
    """One JointPosterior per level over the candidates ``frames`` (and the ``focus`` structures for the
    ``focus`` criterion), None for an affine level; None altogether when the model has no per-level
    joint posterior (a kind without ``posterior_factors``, or not a multi-fidelity model)."""
    get = getattr(model, "level_posterior_factors", None)
    both = get(list(frames) + list(focus or [])) if get is not None else None  # candidates and focus in one call
    if both is None:
        return None
    return [None if lev is None else candidates_posterior(lev, frames, focus is not None, per_atom) for lev in both]


def posterior_cost_batch(posteriors: list[JointPosterior | None], available: np.ndarray, costs: list[float], b: int,
                         remaining: float, criterion: str = "variance") -> list[tuple[int, int]]:
    """Greedy cost-aware batch of at most ``b`` (candidate position, level) pairs (see the module docstring).

    ``posteriors``: per level, over the same candidates (None: the level is never picked); ``available``:
    (n_levels, n_candidates) bool, pairs not yet taken; ``costs``: seconds per label of each level;
    ``remaining``: seconds left for this batch; ``criterion``: ``variance`` or ``focus``. Ties go to the
    lower level, then the lower position."""
    avail = np.array(available, bool)
    for k, p in enumerate(posteriors):
        if p is None:
            avail[k] = False
    costs_arr = np.asarray(costs, float)
    picks: list[tuple[int, int]] = []
    floor = None
    for _ in range(b):
        usable = [k for k, p in enumerate(posteriors) if p is not None and costs[k] <= remaining + 1e-12 and avail[k].any()]
        if not usable:
            break
        raw = np.full(avail.shape, -np.inf)
        for k in usable:
            raw[k] = np.where(avail[k], posteriors[k].scores(criterion), -np.inf)
        if floor is None:
            floor = DUPLICATE * max(float(raw[np.isfinite(raw)].max()), 1e-300)
        k, j = np.unravel_index(int(np.argmax(raw / costs_arr[:, None])), raw.shape)
        if raw[k, j] <= floor and picks:  # only duplicates of picks left: the cheapest affordable free pair
            k = min(usable, key=lambda kk: costs[kk])
            j = int(np.flatnonzero(avail[k])[0])
        picks.append((int(j), int(k)))
        avail[k, j] = False
        remaining -= costs[k]
        posteriors[k].condition(int(j))
    return picks


def levels_posterior_batch(model, pool: list[Atoms], focus: list[Atoms] | None, available: np.ndarray, costs: list[float],
                           remaining: float, per_atom: bool) -> list[tuple[int, int]] | None:
    """The cost-aware batch on the model's per-level joint posterior, as (pool index, level) pairs, for
    the pool's ``available`` (n_levels, n_pool) pairs; criterion ``focus`` when ``focus`` structures are
    given, else ``variance``. None when the model has no per-level joint posterior (use the surrogate)."""
    cand = np.flatnonzero(np.asarray(available, bool).any(axis=0))
    if not len(cand):
        return []
    posts = level_posteriors(model, [pool[i] for i in cand], focus, per_atom)
    if posts is None:
        return None
    picks = posterior_cost_batch(posts, np.asarray(available, bool)[:, cand], costs, int(np.sum(available)), remaining,
                                 "focus" if focus is not None else "variance")
    return [(int(cand[j]), k) for j, k in picks]
