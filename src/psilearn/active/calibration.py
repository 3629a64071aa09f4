"""Local calibration of the joint posterior from the labels (``--calibration-neighbours K``).

The selections of :mod:`psilearn.active.posterior` use the model's covariance, which does not depend on
the label values: where the model errs more than its variance says (a region its kernel describes poorly),
a variance-only criterion under-spends labels. Here the labels inform the selection through one number per
labelled structure, its leave-one-out calibration z^2: the squared leave-one-out residual in the metric of
the leave-one-out predictive covariance, per component (1 on average for a calibrated model). For a
Gaussian linear model with fixed hyper-parameters (SA-GPR's projected process in its whitened weights, an
LLPR readout) it follows in closed form from the full fit: with e = y - mu the training residual of the
structure's rows, V their noise-free posterior covariance given every label (``posterior_factors``) and
sigma2 the noise,

    z^2 = e^T (sigma2 I - V)^-1 e / (number of rows)

(from V = V_loo (V_loo + sigma2 I)^-1 sigma2 and e = sigma2 (V_loo + sigma2 I)^-1 (y - mu_loo); tested
against explicit leave-one-out refits in tests/active/test_calibration.py). The hyper-parameters (and SA-GPR's sparse
set and composition baseline) stay those of the full fit, as leave-one-out estimates of a GP usually do; for the
networks (LLPR) the mean is the trained network's rather than the Bayesian readout's, so there the identity is an
approximation. Every candidate and focus
structure then gets the amplitude a = mean z^2 of its K nearest labelled structures (Euclidean distance
of the invariant SOAP descriptors) and its factor rows are scaled by sqrt(a): the covariance becomes
sqrt(a_i a_j) C_ij, a non-stationary amplitude read off the residuals, with the noise unchanged.
"""

from __future__ import annotations

import numpy as np

from psilearn.active.posterior import sample_rows
from psilearn.active.selection import squared_distances
from psilearn.errors import ConfigError

#: the smallest eigenvalue of sigma2 I - V, relative to sigma2, for which a structure's z^2 is computed. V < sigma2 in
#: exact arithmetic, but a fit that (nearly) interpolates its labels has V within rounding of sigma2 I (the
#: demo dipoles: 1e-9 of it), and the difference, hence z^2, is then rounding noise: such structures get no z^2
#: (NaN) rather than a wrong one
GAP_MIN = 1e-6


def loo_z2(factors: list[tuple[np.ndarray, float]], residuals: list[np.ndarray], samples_of: list[np.ndarray]) -> np.ndarray:
    """Leave-one-out z^2 per labelled structure (mean over its rows, all factors together).

    ``factors``: per irrep occurrence (R (n_samples, 2l+1, rank), sigma2) of the labelled structures'
    samples, from ``posterior_factors`` of the model fitted on them; ``residuals``: per factor the label
    minus the model's mean, (n_samples, 2l+1), label units; ``samples_of``: each structure's sample indices
    (itself, or its atoms for per-atom targets). Returns (n_structures,): NaN for a structure whose sigma2 I - V is not
    resolved in float64 (smallest eigenvalue below ``GAP_MIN`` sigma2)."""
    total, rows_of = np.zeros(len(samples_of)), np.zeros(len(samples_of))
    for (r, s2), e in zip(factors, residuals):
        n, d, rank = r.shape
        flat_r, flat_e = r.reshape(n * d, rank), np.asarray(e, float).reshape(n * d)
        for s, rows in enumerate(sample_rows(samples_of, d)):
            v = flat_r[rows] @ flat_r[rows].T
            lam, u = np.linalg.eigh(s2 * np.eye(len(rows)) - v)
            if lam.min() < GAP_MIN * s2:
                total[s] = np.nan
            proj = u.T @ flat_e[rows]
            total[s] += float(np.sum(proj**2 / np.maximum(lam, GAP_MIN * s2)))
            rows_of[s] += len(rows)
    return total / np.maximum(rows_of, 1)


def local_amplitude(z2: np.ndarray, labelled_descriptors: np.ndarray, descriptors: np.ndarray, k: int) -> np.ndarray:
    """Mean ``z2`` of each structure's ``k`` nearest labelled structures with a z^2 (Euclidean distance of the invariant
    descriptors; all of them when fewer have one). Returns (len(descriptors),)."""
    known = np.isfinite(z2)
    z2, labelled_descriptors = np.asarray(z2)[known], labelled_descriptors[known]
    k = min(int(k), len(z2))
    d2 = squared_distances(descriptors, labelled_descriptors)
    nearest = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < len(z2) else np.broadcast_to(np.arange(len(z2)), (len(d2), len(z2)))
    return np.mean(np.asarray(z2)[nearest], axis=1)


def scale_factors(factors: list[tuple[np.ndarray, float]], amplitude: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """The factors with each sample's rows scaled by sqrt(``amplitude``) of that sample (noise unchanged)."""
    root = np.sqrt(np.asarray(amplitude, float))[:, None, None]
    return [(r * root, s2) for r, s2 in factors]


def calibrated_factors(model, factors: list[tuple[np.ndarray, float]], query_structure: np.ndarray, labelled, query_descriptors: np.ndarray,
                       labelled_descriptors: np.ndarray, k: int) -> tuple[list[tuple[np.ndarray, float]], dict]:
    """The query samples' factors scaled by their local amplitude, and a summary for the log.

    ``factors``: one ``posterior_factors`` call of ``model`` on the query structures (candidates, then the focus)
    followed by the labelled ones; ``query_structure``: the query structure of each query sample (n_query_samples,);
    ``labelled``: the Dataset ``model`` was fitted on (its labels and sample layout); the descriptors: invariant
    descriptors of the query and labelled structures, one row each; ``k``: neighbours averaged."""
    if labelled.pairs is not None or labelled.labelled is not None:
        raise ConfigError("--calibration-neighbours: per-pair targets and structures labelled on some atoms only are not supported")
    n_query = len(query_structure)
    mean = model.predict(labelled.frames, return_std=False).irreps
    resid = model.target.to_irreps(labelled.values) - mean
    blocks = model.target.blocks
    lab_factors = [(r[n_query:], s2) for r, s2 in factors]
    residuals = [resid[:, blocks[bi].cols] for bi in model.posterior_blocks()]
    sample_structure = labelled.sample_structure
    samples_of = [np.flatnonzero(sample_structure == s) for s in range(len(labelled.frames))]
    z2 = loo_z2(lab_factors, residuals, samples_of)
    query = [(r[:n_query], s2) for r, s2 in factors]
    known = int(np.sum(np.isfinite(z2)))
    if known == 0:
        return query, {"skipped": f"the fit interpolates its labels (sigma2 I - V below {GAP_MIN:g} sigma2 for every labelled "
                                  "structure): no leave-one-out error is resolved"}
    amplitude = local_amplitude(z2, labelled_descriptors, query_descriptors, k)
    summary = {"neighbours": min(int(k), known), "mean_loo_z2": round(float(np.nanmean(z2)), 4),
               "amplitude_range": [round(float(amplitude.min()), 4), round(float(amplitude.max()), 4)]}
    if known < len(z2):
        summary["unresolved"] = len(z2) - known
    return scale_factors(query, amplitude[np.asarray(query_structure, int)]), summary


def describe(summary: dict) -> str:
    """The log's words for a :func:`calibrated_factors` summary."""
    if "skipped" in summary:
        return f"local calibration skipped: {summary['skipped']}"
    lo, hi = summary["amplitude_range"]
    unresolved = f"; {summary['unresolved']} labels without one" if "unresolved" in summary else ""
    return (f"local calibration ({summary['neighbours']} neighbours; mean LOO z2 {summary['mean_loo_z2']:.3g}, "
            f"amplitudes {lo:.3g}-{hi:.3g}{unresolved})")
