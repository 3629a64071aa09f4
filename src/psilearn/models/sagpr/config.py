"""Options of the SA-GPR model (YAML section ``model:``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SAGPRConfig:
    """Model options (all settable from YAML under ``model:``)."""

    zeta: float = 2.0  # exponent of the scalar kernel (zeta=1: linear kernel)
    n_sparse: int = 400  # sparse environments per element
    sparse_method: str = "fps"  # 'fps' or 'cur'
    regularization: str = "ml"  # 'ml' (marginal likelihood), 'cv' (k-fold), or a number (sigma2/s2)
    cv_folds: int = 5
    feature_tol: float = 0.0  # PCA-compress features, dropping this fraction of variance (0: off; costs an
    # eigendecomposition of the Q x Q feature covariance, Q growing with the square of the element count)
    seed: int = 0
    # global state: 'none', 'charge' or 'charge+spin': kernels times a Gaussian kernel (width
    # state_width) on each structure's (total charge, unpaired electrons) from atoms.info, so a
    # cation, an anion and a radical of one geometry differ (psilearn.models.qeq.state)
    global_state: str = "none"
    state_width: float = 1.0

    @classmethod
    def from_dict(cls, d: dict | None) -> "SAGPRConfig":
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        if set(d) - known:
            raise ValueError(f"unknown model options {sorted(set(d) - known)}; known: {sorted(known)}")
        cfg = cls(**d)
        if cfg.zeta < 1:
            raise ValueError("zeta must be >= 1")
        if cfg.n_sparse < 1:
            raise ValueError("n_sparse must be >= 1")
        if cfg.sparse_method not in ("fps", "cur"):
            raise ValueError("sparse_method must be 'fps' or 'cur'")
        if not (cfg.regularization in ("ml", "cv") or _is_number(cfg.regularization)):
            raise ValueError("regularization must be 'ml', 'cv' or a positive number")
        if cfg.cv_folds < 2:
            raise ValueError("cv_folds must be >= 2")
        if not 0 <= cfg.feature_tol < 1:
            raise ValueError("feature_tol must be in [0, 1)")
        if cfg.global_state not in ("none", "charge", "charge+spin") or cfg.state_width <= 0:
            raise ValueError("global_state must be 'none', 'charge' or 'charge+spin', state_width > 0")
        return cfg


def _is_number(x) -> bool:
    try:
        return float(x) > 0
    except (TypeError, ValueError):
        return False
