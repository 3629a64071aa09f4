"""Options of the spectrum model (settable from YAML under ``model:``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from psilearn.config import Checks
from psilearn.models._kernel.options import SparseKernelOptions

LOSSES = ("l2", "shift", "align")
ALIGN_FEATURES = ("edge", "max", "onset")


@dataclass
class SpectrumConfig(SparseKernelOptions):
    """How a spectrum model is fitted.

    ``zeta``: exponent of the invariant SOAP kernel. ``n_sparse``: sparse environments per element
    (``sparse_method`` 'fps' or 'cur'). ``regularization``: one noise/prior ratio for all output
    columns, chosen by their summed marginal likelihood ('ml'), by their summed k-fold squared
    error ('cv', ``cv_folds`` folds by structure), or a number.
    ``loss``: 'l2' (plain squared error on the grid); 'shift' (the energy reference is ill-defined:
    each training spectrum gets a rigid shift, optimised by alternating between fitting and aligning
    every spectrum to its cross-validated prediction, shifts centred to mean zero, bounded by
    ``max_shift`` grid units, at most ``shift_iterations`` rounds); 'align' (each spectrum is moved
    so that a stated feature, ``align_feature`` 'edge' (first crossing of ``align_level`` times the
    maximum), 'max' (position of the maximum) or 'onset' (first crossing of ``align_level`` times the
    maximum, on the rising side; same as 'edge' with a small level), sits at its training mean).
    ``pca``: 0 (off), a number of components, or a variance fraction in (0, 1): the model learns
    PCA scores of the (baseline-subtracted) spectra and reconstructs them.
    ``species``: extra elements (atomic numbers) for the descriptor's neighbour list, so that
    structures with elements absent from training can still be described.
    ``crop``: for absorber-centred targets, describe each structure by the atoms within the SOAP
    cutoff of the absorber only (exactly the same features, far cheaper).
    """

    section: ClassVar[str] = "model"

    loss: str = "l2"
    max_shift: float | None = None
    shift_iterations: int = 8
    align_feature: str = "edge"
    align_level: float = 0.5
    pca: float = 0
    species: list[int] | None = None
    crop: bool = True

    def check(self, c: Checks) -> None:
        super().check(c)
        c.one_of("loss", LOSSES)
        c.require(self.max_shift is None or self.max_shift > 0, "max_shift", "must be positive (grid units)")
        c.one_of("align_feature", ALIGN_FEATURES)
        c.require(0 < self.align_level < 1, "align_level", "must be in (0, 1)")
        c.require(self.pca >= 0 and (self.pca < 1 or float(self.pca).is_integer()), "pca",
                  "must be 0 (off), a whole number of components, or a variance fraction in (0, 1)")
        c.require(self.shift_iterations >= 1, "shift_iterations", "must be >= 1")
