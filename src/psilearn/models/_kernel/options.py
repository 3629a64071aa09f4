"""Options every sparse-kernel kind shares (YAML section ``model:``), validated once."""

from __future__ import annotations

from dataclasses import dataclass

from psilearn.config import Checks, Options, positive_number
from psilearn.models._kernel.gpr import REGULARIZATION_MODES, REGULARIZATION_RULE


@dataclass
class SparseKernelOptions(Options):
    """``zeta``: exponent of the scalar kernel (1: linear); ``n_sparse`` sparse environments per
    element chosen by ``sparse_method`` ('fps' or 'cur'); ``regularization``: 'ml' (marginal
    likelihood), 'cv' (``cv_folds``-fold cross-validation by structure) or a number (sigma2/s2);
    ``seed``: folds and subsets."""

    zeta: float = 2.0
    n_sparse: int = 400
    sparse_method: str = "fps"
    regularization: str | float = "ml"
    cv_folds: int = 5
    seed: int = 0

    def check(self, c: Checks) -> None:
        super().check(c)
        c.require(self.zeta >= 1, "zeta", "must be >= 1")
        c.require(self.n_sparse >= 1, "n_sparse", "must be >= 1")
        c.one_of("sparse_method", ("fps", "cur"))
        c.require(self.regularization in REGULARIZATION_MODES or positive_number(self.regularization),
                  "regularization", REGULARIZATION_RULE)
        c.require(self.cv_folds >= 2, "cv_folds", "must be >= 2")
        c.require(self.seed >= 0, "seed", "must be >= 0")
