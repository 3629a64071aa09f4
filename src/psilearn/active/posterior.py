"""Batch selection on the model's own joint posterior (kinds with ``posterior_factors``: SA-GPR; nn, nn-multifidelity and qeq-nn with LLPR).

The surrogate of :mod:`psilearn.active.selection` guesses the covariance between structures from an
invariant descriptor. A kernel model knows it (and a network's last-layer Bayesian readout, LLPR): with R the factors of
:meth:`psilearn.models.base.Model.posterior_factors` the posterior covariance of the irreps of
samples a and b is R_a R_b^T, and labelling candidate j (its rows: the 2l+1 components of the
structure, or of each of its atoms, observed with noise sigma2) conditions it exactly:

    C <- C - C[:, j] (C[j, j] + sigma2 I)^-1 C[j, :].

Greedy batches on that covariance:

- ``focus``: the candidate that most reduces the summed predictive variance of the focus structures,
  tr((C_jj + sigma2 I)^-1 C_jF C_Fj) (the expected reduction of their squared error; the "active
  learning Cohn" / transductive design criterion);
- ``variance``: the candidate of largest conditional variance tr(C_jj) (a greedy determinantal
  selection on the model's own kernel: near-duplicates of a pick lose their variance with it).

The variances do not depend on the labels, so a batch of B picks conditioned one after another is
what B sequential rounds would pick with the hyper-parameters fixed. The conditioning is stored as
low-rank downdates U (C = R R^T - U U^T), so memory is that of R plus B * (2l+1) columns. The focus
enters through the conditional cross-covariance C_cF itself (downdated a pick at a time: O(rows x
focus rows)) while it holds at most ``CROSS_LIMIT`` entries, else only through A = R_F^T R_F
(rank x rank; scoring then costs O(rows x picks^2) a step).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

#: noise floor of the selection, relative to the mean prior variance of a candidate component: a
#: model that fitted (almost) no noise would otherwise divide by ~0 when conditioning
NOISE_FLOOR = 1e-8
#: largest candidate rows x focus rows for which the conditional cross-covariance C_cF is stored and
#: downdated (O(rows x focus rows) a pick); above it the focus enters through A = R_F^T R_F only
CROSS_LIMIT = 25_000_000


class JointPosterior:
    """The conditional covariance of the candidates (and of the focus samples) as labels are added.

    ``factors``: per irrep occurrence (R of the candidates' samples (n, 2l+1, rank), R of the focus
    samples (n_focus, 2l+1, rank) or None, sigma2), from ``posterior_factors``; ``samples_of``: each
    candidate's sample indices (the structure itself, or its atoms for per-atom targets)."""

    def __init__(self, factors: list[tuple[np.ndarray, np.ndarray | None, float]], samples_of: list[np.ndarray]):
        self.n = len(samples_of)
        self.parts = []
        for rc, rf, s2 in factors:
            n_c, d, rank = rc.shape
            rows = sample_rows(samples_of, d)
            rc = rc.reshape(n_c * d, rank)
            base_k = [rc[r] @ rc[r].T for r in rows]
            mean_var = np.mean([np.trace(k) / max(len(k), 1) for k in base_k]) if base_k else 0.0
            part = {"rows": rows, "rc": rc, "rf": None, "s2": max(s2, NOISE_FLOOR * max(mean_var, 1e-300)), "uc": np.zeros((len(rc), 0))}
            base_n = None
            if rf is not None and len(rc) * rf.shape[0] * rf.shape[1] <= CROSS_LIMIT:  # keep C_cF itself: N_j = C_jF C_Fj
                rf = rf.reshape(-1, rank)
                part.update(rf=rf, cf=rc @ rf.T, uf=np.zeros((len(rf), 0)))
            elif rf is not None:
                rf = rf.reshape(-1, rank)
                if len(rf) < rank:  # N_j = C_jF C_Fj from C_cF (cheaper than R_c A, A = R_F^T R_F, for a small focus)
                    cf = rc @ rf.T
                    base_n = [cf[r] @ cf[r].T for r in rows]
                else:
                    rca = rc @ (rf.T @ rf)
                    base_n = [rca[r] @ rc[r].T for r in rows]
                part.update(rf=rf, uf=np.zeros((len(rf), 0)), rh=np.zeros((len(rc), 0)), ff=np.zeros((0, 0)))
            # candidates with as many rows (all of them for structure targets; molecules of one size for per-atom
            # targets) are scored together as stacked arrays
            groups: dict[int, list[int]] = {}
            for j, r in enumerate(rows):
                groups.setdefault(len(r), []).append(j)
            part["groups"] = [(np.array(js), np.stack([rows[j] for j in js]), np.stack([base_k[j] for j in js]),
                               None if base_n is None else np.stack([base_n[j] for j in js])) for js in groups.values()]
            self.parts.append(part)

    def scores(self, criterion: str) -> np.ndarray:
        """Each candidate's score under the current conditioning: ``focus`` (reduction of the focus
        variance) or ``variance`` (its own conditional variance), summed over the irrep occurrences."""
        out = np.zeros(self.n)
        for p in self.parts:
            for js, rows, k, n in p["groups"]:
                out[js] += self._batched(p, rows, k, n, criterion)
        return out

    @staticmethod
    def _batched(p: dict, rows: np.ndarray, k0: np.ndarray, n0: np.ndarray | None, criterion: str) -> np.ndarray:
        """:meth:`scores` of the candidates of one part with the same number of rows: ``rows`` (g, n_rows), their
        prior blocks ``k0`` (g, n_rows, n_rows) and, when the focus enters through A, ``n0`` = C_jF C_Fj unconditioned."""
        uj = p["uc"][rows]  # (g, rows, picks)
        ujt = uj.transpose(0, 2, 1)
        k = k0 - uj @ ujt
        if criterion == "variance":
            return np.einsum("naa->n", k)
        if "cf" in p:
            cf = p["cf"][rows]  # (g, rows, focus rows)
            n = cf @ cf.transpose(0, 2, 1)
        else:
            cross = p["rh"][rows] @ ujt
            n = n0 - cross - cross.transpose(0, 2, 1) + (uj @ p["ff"]) @ ujt  # batched BLAS products, not einsum loops
        return np.einsum("naa->n", np.linalg.solve(k + p["s2"] * np.eye(k.shape[1]), n))

    def condition(self, j: int) -> None:
        """Condition every part on a (noisy) label of candidate ``j``."""
        for p in self.parts:
            rc, uc, r = p["rc"], p["uc"], p["rows"][j]
            c = rc @ rc[r].T - uc @ uc[r].T  # (n_rows, d_j): covariance of every candidate row with j
            chol = np.linalg.cholesky(c[r] + p["s2"] * np.eye(len(r)))
            ec = np.linalg.solve(chol, c.T).T
            p["uc"] = np.hstack([uc, ec])
            if "cf" in p:
                ef = np.linalg.solve(chol, p["cf"][r]).T  # (focus rows, d_j)
                p["cf"] -= ec @ ef.T
                p["uf"] = np.hstack([p["uf"], ef])
            elif p["rf"] is not None:
                rf, uf = p["rf"], p["uf"]
                ef = np.linalg.solve(chol, (rf @ rc[r].T - uf @ uc[r].T).T).T
                p["rh"] = np.hstack([p["rh"], rc @ (rf.T @ ef)])
                p["uf"] = np.hstack([uf, ef])
                p["ff"] = p["uf"].T @ p["uf"]

    def focus_variance(self) -> float:
        """The summed conditional variance of the focus rows (label units squared)."""
        return float(sum(np.einsum("ij,ij->", p["rf"], p["rf"]) - np.einsum("ij,ij->", p["uf"], p["uf"])
                         for p in self.parts if p["rf"] is not None))


def posterior_batch(posterior: JointPosterior, b: int, criterion: str) -> list[int]:
    """Greedy batch of ``b`` candidate positions (indices into its candidates) by ``criterion``
    (``focus`` or ``variance``), each pick conditioned on before the next. Ties go to the lower index."""
    picked: list[int] = []
    for _ in range(min(b, posterior.n)):
        score = posterior.scores(criterion)
        score[picked] = -np.inf
        j = int(np.argmax(score))
        picked.append(j)
        posterior.condition(j)
    return picked


def sample_rows(samples_of: list[np.ndarray], d: int) -> list[np.ndarray]:
    """Row indices of each candidate in a factor flattened sample-major with ``d`` components per sample."""
    return [(np.asarray(s, int)[:, None] * d + np.arange(d)[None, :]).ravel() for s in samples_of]


def candidates_posterior(factors: list[tuple[np.ndarray, float]], frames: list[Atoms], with_focus: bool, per_atom: bool) -> JointPosterior:
    """The JointPosterior of the candidate structures ``frames`` from one ``posterior_factors`` call on
    ``frames`` followed (``with_focus``) by the focus structures: the factors' first rows are the
    candidates' samples (structures, or their atoms with ``per_atom``), the rest the focus's. One call for
    both computes the model-dependent part (for SA-GPR the eigendecomposition of K_MM) once."""
    n_cand = sum(len(a) for a in frames) if per_atom else len(frames)
    if per_atom:
        ends = np.cumsum([len(a) for a in frames])
        samples_of = [np.arange(e - len(a), e) for a, e in zip(frames, ends)]
    else:
        samples_of = [np.array([j]) for j in range(len(frames))]
    return JointPosterior([(r[:n_cand], r[n_cand:] if with_focus else None, s2) for r, s2 in factors], samples_of)
