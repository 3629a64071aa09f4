"""Options of the ``hamiltonian-sagpr`` kind (YAML section ``model:``; the descriptor is ``soap:``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from psilearn.config import Checks
from psilearn.models._kernel.options import SparseKernelOptions


@dataclass
class HamiltonianKernelConfig(SparseKernelOptions):
    """The sparse-kernel options (zeta, n_sparse, sparse_method, regularization, seed; see
    :class:`~psilearn.models._kernel.options.SparseKernelOptions`) and:

    ``n_sparse`` counts sparse centres per block type (an element for on-site blocks, an ordered
    element pair for off-site ones; a number or unset: the data-scaled default, per block type, of
    ``psilearn.models._kernel.sparse.AUTO_RULE``); ``regularization`` 'ml' chooses the noise of every
    output column by its marginal likelihood, a number fixes sigma2/s2 ('cv' is not offered: the
    held-out split below is the estimate); ``holdout``: the fraction of structures held out for the
    error estimate that ``fit`` prints and stores (then the model is refitted on all; 0: no estimate);
    ``batch_rows``: kernel rows per accumulation batch (bounds the memory of a fit: rows x sparse
    columns x 8 bytes)."""

    section: ClassVar[str] = "model"

    holdout: float = 0.1
    batch_rows: int = 20000

    def check(self, c: Checks) -> None:
        super().check(c)
        c.require(not isinstance(self.n_sparse, dict), "n_sparse", "must be a number (per block type) or unset", value="a mapping")
        c.require(self.regularization != "cv", "regularization", "'cv' is not offered by hamiltonian-sagpr: use 'ml' or a number")
        c.require(0 <= self.holdout < 1, "holdout", "must be in [0, 1)")
        c.require(self.batch_rows >= 1, "batch_rows", "must be >= 1")
