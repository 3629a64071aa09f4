"""Cost-aware active learning across fidelities: several levels of theory, one multi-fidelity model.

With several ``--method`` (or ``--oracle``) levels, given cheapest first and the target level last,
the model is the ``multifidelity`` kind (recursive co-kriging, :mod:`psilearn.models.fidelity.multifidelity`)
and each pick is a (structure, level) pair. A label is identified in the log by the integer
``level * n_pool + pool_index`` (so the single-level bookkeeping, resume included, is unchanged);
each round also logs the pairs as ``[pool_index, level_name]``.

**Acquisition.** Under the recursive model the target level's predictive variance at structure x is

    s_T^2(x) = sum_k P_k^2 var(delta_k(x)),   P_k = rho_{k+1} ... rho_L (per irreducible block),

and a level-k label at x removes (in the model's own accounting) the level's own term
v_k(x) = P_k^2 var(delta_k(x)): a cheap label helps the target level only through rho, and a
target label cannot reduce the lower levels' terms (the recursive scheme takes them as independent).
The batch is chosen greedily by the largest variance reduction per second of labelling,

    (j, k) = argmax  v_k(j | picks so far) / c_k,

where c_k is the level's cost in seconds per label and v_k(j | S) the conditional variance of the
determinantal selection of :func:`psilearn.active.selection.diverse_batch` (a Gaussian kernel K on
the invariant SOAP descriptor, one per level with that level's length scale: L_k = diag(sqrt v_k) K
diag(sqrt v_k), conditioned on the picks at level k only), so a batch is diverse within each level.
Picks stop when no level's cost fits in what is left of the round's seconds (``--batch`` target
labels' worth) and of the budget.

This surrogate is the fallback: when every level's model has a joint posterior (SA-GPR levels), the
loop selects on the model's own per-level covariance instead (:mod:`psilearn.active.levels_posterior`,
the same rule with v_k(j | S) exact), and logs which one a round used (``acquisition``).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.active.selection import DUPLICATE, condition_on, length_scale
from psilearn.errors import DataError

#: the info key naming a labelled structure's level in the multi-fidelity training set
FIDELITY_KEY = "active_level"


class LevelLabels:
    """Labels of several levels: ``sources[k]`` (an OracleLabels or MethodLabels) labels level ``names[k]``;
    a label id is ``k * n_pool + pool_index``. Each labelled structure is a copy carrying the Target's
    ``key`` and ``info[FIDELITY_KEY] = names[k]``. ``keys[k]``: the key the source writes (oracle keys
    differ per level; they are copied to ``key``)."""

    def __init__(self, sources: list, names: list[str], keys: list[str], key: str, n_pool: int) -> None:
        self.sources, self.names, self.keys, self.key, self.n_pool = sources, names, keys, key, n_pool

    def split(self, label_id: int) -> tuple[int, int]:
        """(level index, pool index) of a label id."""
        return divmod(int(label_id), self.n_pool)

    def label(self, ids: list[int], progress: bool = False) -> dict[int, Atoms | str]:
        out: dict[int, Atoms | str] = {}
        for k, source in enumerate(self.sources):
            mine = [i for i in ids if self.split(i)[0] == k]
            if not mine:
                continue
            got = source.label([self.split(i)[1] for i in mine], progress=progress)
            for i in mine:
                a = got[self.split(i)[1]]
                out[i] = a if isinstance(a, str) else self._tag(a, k)
        return {i: out[i] for i in ids}

    def _tag(self, atoms: Atoms, k: int) -> Atoms:
        a = atoms.copy()
        src = self.keys[k]
        if src != self.key:
            if src in atoms.info:
                a.info[self.key] = atoms.info[src]
            else:
                a.arrays[self.key] = np.array(atoms.arrays[src])
        a.info[FIDELITY_KEY] = self.names[k]
        return a

    def describe(self) -> str:
        return "levels " + " < ".join(f"{n} ({s.describe()})" for n, s in zip(self.names, self.sources))


def measured_costs(labels: dict[int, Atoms], names: list[str], n_pool: int) -> list[float | None]:
    """Mean ``info['label_seconds']`` of the structures labelled so far at each level (None when none
    was measured). Failed labels carry no time and are not counted here."""
    out: list[float | None] = []
    for k in range(len(names)):
        secs = [float(a.info["label_seconds"]) for i, a in labels.items()
                if i // n_pool == k and "label_seconds" in a.info]
        out.append(float(np.mean(secs)) if secs else None)
    return out


def spent_seconds(ids: list[int], labels: dict[int, Atoms], costs: list[float], n_pool: int, measured: bool) -> float:
    """Seconds charged for the labels ``ids``: with ``measured`` (method labels) a label's own
    ``label_seconds`` when it has one, else (oracles, failed labels) its level's cost."""
    total = 0.0
    for i in ids:
        a = labels.get(i)
        own = measured and a is not None and "label_seconds" in a.info
        total += float(a.info["label_seconds"]) if own else costs[i // n_pool]
    return total


def check_costs(costs: list[float | None], names: list[str]) -> list[float]:
    """The costs, or DataError when a level has none (every label of it failed)."""
    missing = [n for n, c in zip(names, costs) if c is None or not c > 0]
    if missing:
        raise DataError(f"no labelling time measured for level(s) {', '.join(missing)} (every label failed, or the store "
                        "holds no label_seconds); cannot weigh the levels by cost")
    return [float(c) for c in costs]


def cost_aware_batch(level_variance: np.ndarray, costs: list[float], descriptors: np.ndarray, available: np.ndarray,
                     labelled: list[np.ndarray], b: int, remaining: float) -> list[tuple[int, int]]:
    """Greedy cost-aware batch of at most ``b`` (pool index, level) pairs (see the module docstring).

    ``level_variance``: (n_levels, n_pool) each level's own term of the target variance per structure;
    ``costs``: seconds per label of each level; ``available``: (n_levels, n_pool) bool, pairs not yet
    taken; ``labelled[k]``: pool indices labelled at level k (for the kernel's length scale);
    ``remaining``: seconds left in the budget. With one level, cost 1 and an unlimited budget this is
    :func:`psilearn.active.selection.diverse_batch`."""
    v = np.maximum(np.asarray(level_variance, float), 0.0)
    n_levels, n = v.shape
    x = np.asarray(descriptors, float)
    sq = np.einsum("ij,ij->i", x, x)
    avail = np.array(available, bool)
    ells = []
    for k in range(n_levels):
        cand = np.flatnonzero(avail[k])
        ells.append(length_scale(x, cand, np.asarray(labelled[k], int)) if len(cand) else 1.0)
    s = np.sqrt(v)
    cond = v.copy()
    rows: list[list[np.ndarray]] = [[] for _ in range(n_levels)]
    picks: list[tuple[int, int]] = []
    floor = DUPLICATE * max(float(v[avail].max()) if avail.any() else 0.0, 1e-300)
    for _ in range(b):
        affordable = np.array([c <= remaining + 1e-12 for c in costs])
        score = np.where(avail & affordable[:, None], cond / np.asarray(costs, float)[:, None], -np.inf)
        if not np.isfinite(score).any():
            break
        k, j = np.unravel_index(int(np.argmax(score)), score.shape)
        if cond[k, j] <= floor and picks:  # only duplicates of picks left: the cheapest affordable free pair
            k = min((kk for kk in range(n_levels) if affordable[kk] and avail[kk].any()), key=lambda kk: costs[kk])
            j = int(np.flatnonzero(avail[k])[0])
        picks.append((int(j), int(k)))
        avail[k, j] = False
        remaining -= costs[k]
        cond[k] = condition_on(j, x, sq, s[k], ells[k], cond[k], rows[k])
    return picks
