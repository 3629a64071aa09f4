"""Options of the density model (YAML section ``density:``; the descriptor is the ``soap:`` section)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from psilearn.config import Checks, Options

#: relative regularisation grid (lambda / mean diagonal of the normal matrix), searched by hold-out
DEFAULT_REG_GRID = [1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2]
#: how the weights are solved for (see DensityConfig)
SOLVERS = ("auto", "direct", "cg")


@dataclass
class DensityConfig(Options):
    """SALTED-style density model options.

    ``n_sparse``: sparse environments per element (0: automatic, min(atoms of the element, 100));
    ``n_sparse_l``: optional smaller counts per degree l ({"3": 50, "4": 50}), taken as the first
    environments of the same farthest-point order; ``zeta``: power of the scalar kernel;
    ``eigen_tol``: RKHS projection drops eigenvalues of K_MM below this fraction of the largest;
    ``max_features``: at most this many RKHS features per (element, l) (0: no cap; the largest
    eigenvalues are kept); ``regularization``: 'cv' (hold-out of ``val_fraction`` of the
    structures, lambda from ``reg_grid``, relative to the mean diagonal of the normal matrix) or a
    number (that relative lambda); ``conserve_electrons``: project predictions onto the exact
    electron count in the metric norm; ``seed``: the hold-out split. ``solver``: 'direct' (dense
    normal equations, Cholesky; 8 n_weights^2 bytes per matrix, up to three), 'cg' (matrix-free
    block-Jacobi preconditioned conjugate gradients, :mod:`psilearn.models.density.cg`; memory of the
    order of the training features and metrics) or 'auto' (direct when its estimate fits both the
    available memory and ``direct_max_gb``, else cg); ``cg_tol``: CG stops at ||r|| <= cg_tol ||b||;
    ``cg_maxiter``: at most this many iterations per solve; ``cg_patience``: with 'cv', CG walks the
    grid from the largest lambda down and stops after this many candidates in a row worse than the best;
    ``cg_storage``: where CG keeps the structures' features and metrics between products, 'disk'
    (temporary files under ``cg_scratch``, default the system's temp dir, deleted after the fit; RAM
    then does not grow with the data) or 'memory' (faster when it fits; ~0.8 MB per methanol structure).
    ``uncertainty``: keep the weights' posterior (Cholesky factor of A + lambda I, n_weights^2 x 8 bytes
    in the model file) for predictive covariances of the coefficients
    (:mod:`psilearn.models.density.uncertainty`); needs the direct solve."""

    section: ClassVar[str] = "density"

    n_sparse: int = 0
    n_sparse_l: dict[str, int] | None = None
    zeta: float = 2.0
    eigen_tol: float = 1e-10
    max_features: int = 0
    regularization: str | float = "cv"
    reg_grid: list[float] = field(default_factory=lambda: list(DEFAULT_REG_GRID))
    val_fraction: float = 0.2
    conserve_electrons: bool = True
    seed: int = 0
    solver: str = "auto"
    direct_max_gb: float = 4.0
    cg_tol: float = 1e-6
    cg_maxiter: int = 3000
    cg_patience: int = 1
    cg_storage: str = "disk"
    cg_scratch: str = ""
    uncertainty: bool = False

    def check(self, c: Checks) -> None:
        c.require(self.n_sparse >= 0, "n_sparse", "must be >= 0 (0: automatic)")
        if self.n_sparse_l is not None:
            ok = all(str(k).isdigit() and int(v) >= 1 for k, v in self.n_sparse_l.items())
            c.require(ok, "n_sparse_l", "maps degrees l ('0', '1', ...) to counts >= 1")
            self.n_sparse_l = {str(int(k)): int(v) for k, v in self.n_sparse_l.items()}
        c.require(self.zeta >= 1, "zeta", "must be >= 1")
        c.require(0 < self.eigen_tol < 1, "eigen_tol", "must be in (0, 1)")
        c.require(self.max_features >= 0, "max_features", "must be >= 0 (0: no cap)")
        reg = self.regularization
        c.require(reg == "cv" or (not isinstance(reg, (str, bool)) and reg > 0), "regularization",
                  "must be 'cv' or a positive number (lambda relative to the mean diagonal)")
        c.require(len(self.reg_grid) >= 1 and min(self.reg_grid) > 0, "reg_grid", "must be positive numbers")
        c.require(0 < self.val_fraction < 1, "val_fraction", "must be in (0, 1)")
        c.require(self.seed >= 0, "seed", "must be >= 0")
        c.require(self.solver in SOLVERS, "solver", f"must be one of {', '.join(SOLVERS)}")
        c.require(self.direct_max_gb >= 0, "direct_max_gb", "must be >= 0 (0: only the available memory limits the direct solve)")
        c.require(0 < self.cg_tol < 1, "cg_tol", "must be in (0, 1)")
        c.require(self.cg_maxiter >= 1, "cg_maxiter", "must be >= 1")
        c.require(self.cg_patience >= 1, "cg_patience", "must be >= 1")
        c.require(self.cg_storage in ("disk", "memory"), "cg_storage", "must be 'disk' or 'memory'")
        c.require(not (self.uncertainty and self.solver == "cg"), "uncertainty",
                  "needs the dense normal equations: use solver 'direct' or 'auto' (CG never forms A)")

    def sparse_count(self, n_atoms: int, l: int) -> int:
        """Sparse environments of an element with ``n_atoms`` training atoms, for degree ``l``."""
        m = min(n_atoms, self.n_sparse or 100)
        if self.n_sparse_l and str(l) in self.n_sparse_l:
            m = min(m, self.n_sparse_l[str(l)])
        return max(m, 1) if n_atoms else 0
