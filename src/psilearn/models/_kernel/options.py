"""Options every sparse-kernel kind shares (YAML section ``model:``), validated once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from psilearn.config import Checks, Options, positive_number
from psilearn.models._kernel.gpr import REGULARIZATION_MODES, REGULARIZATION_RULE


def _symbols_ok(mapping: dict) -> str | None:
    """The first key of ``mapping`` that is not a chemical element symbol, or None."""
    from ase.data import chemical_symbols

    return next((k for k in mapping if k not in chemical_symbols[1:]), None)


@dataclass
class SparseKernelOptions(Options):
    """``zeta``: exponent of the scalar kernel (1: linear); ``n_sparse`` sparse environments per
    element chosen by ``sparse_method`` ('fps' or 'cur'): a number, a mapping by element symbol
    (``{H: 800, C: 400}``; elements not named get the default) or unset: the data-scaled default
    (``psilearn.models._kernel.sparse.AUTO_RULE``, docs/tuning.md); ``regularization``: 'ml'
    (marginal likelihood), 'cv' (``cv_folds``-fold cross-validation by structure) or a number
    (sigma2/s2), or, for kinds that allow it (SA-GPR, per-atom targets), a number per element
    symbol; ``seed``: folds and subsets."""

    #: whether ``regularization`` may be a mapping by element (the kind fits per-element noise)
    per_element_regularization: ClassVar[bool] = False

    zeta: float = 2.0
    n_sparse: int | dict[str, int] | None = None
    sparse_method: str = "fps"
    regularization: str | float | dict[str, float] = "ml"
    cv_folds: int = 5
    seed: int = 0

    def check(self, c: Checks) -> None:
        super().check(c)
        c.require(self.zeta >= 1, "zeta", "must be >= 1")
        if isinstance(self.n_sparse, dict):
            bad = _symbols_ok(self.n_sparse)
            c.require(bad is None, "n_sparse", f"unknown element {bad!r} (keys are element symbols, e.g. {{H: 800, C: 400}})",
                      value=bad)
            c.require(bool(self.n_sparse) and all(v >= 1 for v in self.n_sparse.values()), "n_sparse",
                      "needs a number >= 1 for every element named")
        else:
            c.require(self.n_sparse is None or self.n_sparse >= 1, "n_sparse", "must be >= 1 (or unset: the data-scaled default)")
        c.one_of("sparse_method", ("fps", "cur"))
        if isinstance(self.regularization, dict):
            c.require(self.per_element_regularization, "regularization", "a value per element is supported by sagpr only",
                      value="a mapping")
            bad = _symbols_ok(self.regularization)
            c.require(bad is None, "regularization", "unknown element (keys are element symbols)", value=bad)
            c.require(bool(self.regularization) and all(positive_number(v) for v in self.regularization.values()),
                      "regularization", "per-element values must be positive numbers")
        else:
            c.require(self.regularization in REGULARIZATION_MODES or positive_number(self.regularization),
                      "regularization", REGULARIZATION_RULE)
        c.require(self.cv_folds >= 2, "cv_folds", "must be >= 2")
        c.require(self.seed >= 0, "seed", "must be >= 0")
