"""Options of the spectrum model (settable from YAML under ``model:``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

LOSSES = ("l2", "shift", "align")
ALIGN_FEATURES = ("edge", "max", "onset")


@dataclass
class SpectrumConfig:
    """How a spectrum model is fitted.

    ``zeta``: exponent of the invariant SOAP kernel. ``n_sparse``: sparse environments per element
    (``sparse_method`` 'fps' or 'cur'). ``regularization``: 'ml' (one noise/prior ratio for all
    output columns, by their summed marginal likelihood) or a number.
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

    zeta: float = 2.0
    n_sparse: int = 400
    sparse_method: str = "fps"
    regularization: str | float = "ml"
    loss: str = "l2"
    max_shift: float | None = None
    shift_iterations: int = 8
    align_feature: str = "edge"
    align_level: float = 0.5
    pca: float = 0
    cv_folds: int = 5
    seed: int = 0
    species: list[int] | None = None
    crop: bool = True

    @classmethod
    def from_dict(cls, d: dict | None) -> "SpectrumConfig":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        if set(d) - known:
            raise ValueError(f"unknown spectrum model options {sorted(set(d) - known)}; known: {sorted(known)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.zeta < 1:
            raise ValueError("zeta must be >= 1")
        if self.n_sparse < 1:
            raise ValueError("n_sparse must be >= 1")
        if self.sparse_method not in ("fps", "cur"):
            raise ValueError("sparse_method must be 'fps' or 'cur'")
        if self.regularization != "ml":
            try:
                ok = float(self.regularization) > 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError("regularization must be 'ml' or a positive number")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.max_shift is not None and self.max_shift <= 0:
            raise ValueError("max_shift must be positive (grid units)")
        if self.align_feature not in ALIGN_FEATURES:
            raise ValueError(f"align_feature must be one of {ALIGN_FEATURES}")
        if not 0 < self.align_level < 1:
            raise ValueError("align_level must be in (0, 1)")
        if self.pca < 0 or (self.pca >= 1 and float(self.pca) != int(self.pca)):
            raise ValueError("pca must be 0 (off), a whole number of components, or a variance fraction in (0, 1)")
        if self.cv_folds < 2:
            raise ValueError("cv_folds must be >= 2")
        if self.shift_iterations < 1:
            raise ValueError("shift_iterations must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)
