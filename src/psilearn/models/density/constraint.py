"""The exact electron-count constraint in the metric norm, and the metric in e3nn's basis.

Among all coefficient vectors c' with q^T c' = N (q_P = int phi_P, N = sum_A (Z_A - core_A) - charge, core_A
the electrons of atom A's effective core potential, if any), the one
closest to the prediction c in the fit's metric S minimises (c' - c)^T S (c' - c); with a Lagrange
multiplier, c' = c + S^-1 q (N - q^T c) / (q^T S^-1 q). S and q transform covariantly under
rotations and inversion, so the correction keeps predictions exactly equivariant.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from psilearn.label.density import aux_metric


def electron_count(atoms, core_electrons=None) -> float:
    """N = sum of nuclear charges - ``info['charge']`` (default 0; validated) - the electrons replaced
    by effective core potentials (``core_electrons`` per atom, e.g. ``DensityTarget.core_of(atoms)``):
    the electrons the fitted density holds."""
    from psilearn.data.electronic_state import total_charges

    core = 0 if core_electrons is None else int(np.sum(core_electrons))
    return float(atoms.numbers.sum() - core - total_charges([atoms])[0])


def conserve_electrons(c: np.ndarray, s: np.ndarray, q: np.ndarray, n_electrons: float) -> np.ndarray:
    """c + S^-1 q (N - q^T c) / (q^T S^-1 q): the metric-closest vector with q^T c = N (exact up to
    rounding). ``c``, ``s`` and ``q`` in one basis (e.g. PySCF's order)."""
    try:
        sq = cho_solve(cho_factor(s, check_finite=False), q)
    except np.linalg.LinAlgError:  # numerically semi-definite metric
        sq = np.linalg.lstsq(s, q, rcond=1e-14)[0]
    out = c + sq * (n_electrons - q @ c) / (q @ sq)
    return out + q * (n_electrons - q @ out) / (q @ q)  # remove the solve's rounding from the count


def metric_in_irreps(target, atoms, s: np.ndarray) -> np.ndarray:
    """R S R^T: the metric for coefficients in e3nn's basis (c_e3nn = R c_pyscf, R orthogonal)."""
    return target.to_irreps(atoms, target.to_irreps(atoms, s).T)


def structure_metric(target, atoms) -> tuple[np.ndarray, np.ndarray]:
    """(S, q) of ``atoms`` in the labeler's layout for ``target``'s aux basis and metric."""
    return aux_metric(atoms, target.aux_basis, target.metric)
