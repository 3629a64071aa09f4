"""Choosing sparse (representative) environments: farthest-point sampling or CUR."""

from __future__ import annotations

import numpy as np
from scipy.linalg import qr, svd

from psilearn.data.splits import farthest_point_order


def select_sparse(x: np.ndarray, n: int, method: str = "fps") -> np.ndarray:
    """Indices of up to ``n`` rows of ``x`` (n_envs, Q): ``"fps"`` greedy farthest-point sampling
    (starting from the environment farthest from the mean), or ``"cur"`` deterministic CUR (rows
    chosen by column-pivoted QR of the leading left singular vectors). Duplicates are never chosen."""
    if len(x) == 0:
        return np.zeros(0, dtype=int)
    n = min(n, len(x))
    if method == "fps":
        first = int(np.argmax(np.linalg.norm(x - x.mean(0), axis=1)))
        return np.sort(farthest_point_order(x, first, n))
    if method == "cur":
        u, s, _ = svd(x, full_matrices=False)
        k = min(n, int(np.sum(s > 1e-10 * s[0])))
        _, _, piv = qr(u[:, :k].T, pivoting=True, mode="economic")
        return np.sort(piv[:k])
    raise ValueError(f"unknown sparse selection {method!r} (use 'fps' or 'cur')")
