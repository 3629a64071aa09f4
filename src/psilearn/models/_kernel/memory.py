"""Memory estimates of the sparse-kernel steps, checked by the guard before the arrays are made.

All sizes in bytes of float64. For a channel of degree l (d = 2l+1) with n samples and M_Z sparse
environments per element (M = sum M_Z, r <= M d retained directions):

* fit (``SparseGP.build`` and ``sparse_kernel``): Phi (n d x M d) and the aggregation temporary of
  the same size, K_MM (sum over elements of (M_Z d)^2), the whitening G and the basis P = G W (each
  at most M d x r), B = Phi G and B W (n d x r each), and the eigendecomposition of B^T B or B B^T
  (its matrix, eigenvectors and LAPACK's divide-and-conquer workspace: about 4 min(n d, r)^2);
* prediction of a batch: Phi, Phi P (n d x r) and, with uncertainties, the self-kernel and the
  covariances (n x d x d each).
"""

from __future__ import annotations

#: what to change when a kernel does not fit
KERNEL_HINT = "model.n_sparse (sparse environments per element) or the number of training structures"
PREDICT_HINT = "soap.batch_size (structures per prediction batch) or model.n_sparse"


def channel_fit_bytes(n_samples: int, d: int, sparse_sizes: list[int]) -> int:
    """Peak bytes of fitting one kernel channel (see the module docstring)."""
    nd, md = n_samples * d, sum(sparse_sizes) * d
    e = min(nd, md)
    return 8 * (2 * nd * md + sum((m * d) ** 2 for m in sparse_sizes) + 2 * md * md + 2 * nd * md + 4 * e * e)


def channel_predict_bytes(n_samples: int, d: int, n_sparse_total: int, with_std: bool) -> int:
    """Peak bytes of the kernels of one channel for a prediction batch."""
    nd, md = n_samples * d, n_sparse_total * d
    return 8 * (2 * nd * md + (nd * md + 3 * n_samples * d * d if with_std else 0))


def projection_bytes(widths: list[int]) -> int:
    """Bytes of ``feature_tol`` compression: the Q x Q covariance, its eigenvectors and workspace."""
    return 8 * 4 * max(widths, default=0) ** 2


def stream_fit_bytes(batch_rows: int, channels: list[tuple[int, list[int], int]], folds: int = 1) -> int:
    """Peak bytes of a streamed fit's kernels (psilearn.models._kernel.normal): every channel's sums
    Phi^T Phi ((M d)^2) and Phi^T Y (M d x k), once per fold when ``folds`` > 1 (k-fold CV or the
    held-out estimate, psilearn.models._kernel.foldcv) plus their total for the channel being solved,
    plus the larger of a batch's kernel rows (Phi, its aggregation temporary and float64 copy:
    3 x batch_rows d x M d) and the solve of the largest channel (whitening, G^T C G, eigenvectors and
    workspace, basis: about 6 (M d)^2). ``channels``: (d, sparse sizes per element, columns k) per channel."""
    sums = folds * sum(8 * (sum(m) * d) ** 2 + 8 * sum(m) * d * k for d, m, k in channels)
    total = max((8 * (sum(m) * d) ** 2 for d, m, _ in channels), default=0) if folds > 1 else 0
    step = max((max(3 * batch_rows * d * sum(m) * d, 6 * (sum(m) * d) ** 2) * 8 for d, m, _ in channels), default=0)
    return sums + total + step
