"""Options of the SA-GPR model (YAML section ``model:``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from psilearn.config import Checks, Options, positive_number
from psilearn.models._kernel.gpr import REGULARIZATION_MODES, REGULARIZATION_RULE


@dataclass
class SAGPRConfig(Options):
    """Model options (all settable from YAML under ``model:``)."""

    section: ClassVar[str] = "model"

    zeta: float = 2.0  # exponent of the scalar kernel (zeta=1: linear kernel)
    n_sparse: int = 400  # sparse environments per element
    sparse_method: str = "fps"  # 'fps' or 'cur'
    regularization: str | float = "ml"  # 'ml' (marginal likelihood), 'cv' (k-fold), or a number (sigma2/s2)
    cv_folds: int = 5
    feature_tol: float = 0.0  # PCA-compress features, dropping this fraction of variance (0: off; costs an
    # eigendecomposition of the Q x Q feature covariance, Q growing with the square of the element count)
    seed: int = 0
    # global state: 'none', 'charge' or 'charge+spin': kernels times a Gaussian kernel (width
    # state_width) on each structure's (total charge, unpaired electrons) from atoms.info, so a
    # cation, an anion and a radical of one geometry differ (psilearn.models.qeq.state)
    global_state: str = "none"
    state_width: float = 1.0

    def check(self, c: Checks) -> None:
        c.require(self.zeta >= 1, "zeta", "must be >= 1")
        c.require(self.n_sparse >= 1, "n_sparse", "must be >= 1")
        c.one_of("sparse_method", ("fps", "cur"))
        c.require(self.regularization in REGULARIZATION_MODES or positive_number(self.regularization),
                  "regularization", REGULARIZATION_RULE)
        c.require(self.cv_folds >= 2, "cv_folds", "must be >= 2")
        c.require(0 <= self.feature_tol < 1, "feature_tol", "must be in [0, 1)")
        c.require(self.seed >= 0, "seed", "must be >= 0")
        c.one_of("global_state", ("none", "charge", "charge+spin"))
        c.require(self.state_width > 0, "state_width", "must be > 0")
