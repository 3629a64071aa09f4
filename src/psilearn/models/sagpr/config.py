"""Options of the SA-GPR model (YAML section ``model:``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from psilearn.config import Checks
from psilearn.models._kernel.options import SparseKernelOptions


@dataclass
class SAGPRConfig(SparseKernelOptions):
    """Model options (all settable from YAML under ``model:``): the sparse-kernel options
    (zeta, n_sparse, sparse_method, regularization, cv_folds, seed; see
    :class:`~psilearn.models._kernel.options.SparseKernelOptions`) and:"""

    section: ClassVar[str] = "model"
    per_element_regularization: ClassVar[bool] = True

    feature_tol: float = 0.0  # PCA-compress features, dropping this fraction of variance (0: off; costs an
    # eigendecomposition of the Q x Q feature covariance, Q growing with the square of the element count)
    # global state: 'none', 'charge' or 'charge+spin': kernels times a Gaussian kernel (width
    # state_width) on each structure's (total charge, unpaired electrons) from atoms.info, so a
    # cation, an anion and a radical of one geometry differ (psilearn.models._kernel.state_kernel);
    # 'auto' (default): what the training data need (data.electronic_state.needed_state_mode), stored as chosen
    global_state: str = "auto"
    state_width: float = 1.0
    # what the model file keeps for the predictive covariance: 'basis' (each channel's float32 basis P;
    # fast to load) or 'training' (the training environments' expansion coefficients, ~10x smaller
    # for large models; P is rebuilt on the first prediction with std: psilearn.models.sagpr.covariance)
    covariance_storage: str = "basis"
    # per-atom moments as inputs: 'none', 'collinear' (a signed number per atom in
    # atoms.arrays['initial_magmoms']) or 'noncollinear' (a vector per atom there, (n, 3)); required
    # at fit and predict; time-even features only: psilearn.features.magnetic, docs/magnetic.md
    magnetic_moments: str = "none"
    # streamed fit (psilearn.models.sagpr.stream, docs/scaling.md): structures per batch (0: automatic,
    # streamed only when the in-memory fit would exceed the memory budget); float32 features and
    # kernels per batch (turns streaming on); a Dask scheduler for the batches ('local' or an address; turns it on)
    stream_batch: int = 0
    float32: bool = False
    scheduler: str = ""
    # streamed fit: the k-fold held-out estimate (heldout_metrics, as the in-memory fit): per-fold normal
    # equations (cv_folds x the sums' memory) and one more pass over the batches; false: neither (unless 'cv')
    stream_heldout: bool = True

    def check(self, c: Checks) -> None:
        super().check(c)
        c.require(0 <= self.feature_tol < 1, "feature_tol", "must be in [0, 1)")
        c.one_of("global_state", ("auto", "none", "charge", "charge+spin"))
        c.require(self.state_width > 0, "state_width", "must be > 0")
        c.one_of("covariance_storage", ("basis", "training"))
        c.one_of("magnetic_moments", ("none", "collinear", "noncollinear"))
        c.require(self.stream_batch >= 0, "stream_batch", "must be >= 0 (structures per batch; 0: automatic)")
