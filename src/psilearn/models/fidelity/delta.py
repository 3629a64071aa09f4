"""The `delta` model kind: Δ-learning from a baseline label carried by every structure.

The training file holds the observable at the target level (``KEY``) and a cheap label of the same
observable (``BASELINE``: the same shape and symmetry, e.g. ``alpha`` from DFT and ``alpha_gfn2``).
The model learns the difference ``KEY - BASELINE`` with any inner kind (sagpr by default), and
predicts ``BASELINE + correction``; prediction therefore needs ``BASELINE`` in every input
structure.

Per-pair targets (``Target(per="pair")``, docs/pairs.md): the baseline is a per-pair label with its
own pair list (``BASELINE_pairs``), which must list the same pairs as the target's (in either order
within a pair: the reader canonicalises them, transposing the values); at prediction the baseline's
pairs are the pairs predicted. A mismatch is one line naming file, frame and key. With
``--baseline-method XC/BASIS`` the labeler's J couplings on the target's pairs
(:mod:`psilearn.models.fidelity.delta_pairs`).

Spectra (``fit-spectrum --baseline``): the spectrum kind with the plain ``l2`` loss only
(:mod:`psilearn.models.fidelity.delta_spectrum`; with ``--baseline-method`` a DOS from the labeler's
orbital energies on the target's grid). Density and Hamiltonian targets: :func:`delta_kind`
and :func:`delta_method_kind` return the kind of :mod:`psilearn.models.fidelity.delta_fields`.

Uncertainty: the baseline is taken as exact (it is an input, not an estimate), so the predictive
standard deviation (and covariance) is the inner model's uncertainty of the correction.

The inner model is reached only through the registry (:func:`psilearn.models.registry.model_class`),
never by importing another architecture. In model files its state is nested: its metadata under
``"inner"`` and its arrays prefixed ``"inner/"``, with its kind in ``"inner_kind"``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from ase import Atoms

from psilearn.data import Dataset
from psilearn.data.dataset import check_symmetry, extract_values
from psilearn.data.errors import DataError
from psilearn.data.prediction import Prediction
from psilearn.data.spectra import structure_spectra
from psilearn.errors import ConfigError
from psilearn.models.base import Model
from psilearn.models.checks import check_training_data
from psilearn.models.composition import composition_record
from psilearn.models.fidelity.baseline_method import BaselineMethod, campaign_record, check_field_method
from psilearn.models.fidelity.delta_fields import FIELD_INNER, FieldDeltaModel, WrapsInner, field_delta_kind
from psilearn.models.fidelity.delta_pairs import method_pair_baseline, pair_baseline, same_pairs, with_pairs
from psilearn.models.fidelity.delta_spectrum import check_baseline_grid, check_spectrum_inner, method_spectrum_baseline, resolve_spectrum_method
from psilearn.models.registry import model_class
from psilearn.targets import Target

if TYPE_CHECKING:
    from psilearn.label.campaign import CampaignSummary

#: inner kinds that do not fit the pattern "learn a difference of two labels of one observable", and why
REFUSED_INNER = {
    "delta": "a delta model cannot wrap another delta model (one baseline per model)",
    "qeq": "qeq learns charges constrained to each structure's total charge; a difference of two labels "
           "carries total charge zero, and its by-products (charges, energies) would belong to neither level",
    "qeq-nn": "qeq-nn learns charges constrained to each structure's total charge; a difference of two labels "
              "carries total charge zero, and its by-products (charges, energies) would belong to neither level",
}
DEFAULT_INNER = "sagpr"


def check_inner_kind(inner: str) -> type[Model]:
    """The model class of ``inner``; ConfigError for unknown kinds and for kinds Δ-learning refuses."""
    if inner in REFUSED_INNER:
        raise ConfigError(f"--baseline: model kind {inner!r} cannot learn a correction: {REFUSED_INNER[inner]}")
    try:
        return model_class(inner)
    except ValueError as exc:
        raise ConfigError(f"--baseline: {exc}") from None


def delta_kind(baseline: str, inner: str = DEFAULT_INNER, symmetrize: bool = False) -> type["DeltaModel"]:
    """The delta kind configured for a baseline key and an inner kind: a subclass of
    :class:`DeltaModel` reading the inner kind's YAML sections, usable wherever a kind name is
    (``fit_model(delta_kind("alpha_gfn2", "nn"), target, dataset, config)``)."""
    if not baseline:
        raise ConfigError("--baseline: the baseline label name is empty")
    cls = check_inner_kind(inner)
    if inner in FIELD_INNER:  # density and Hamiltonian targets: a baseline in the same basis (delta_fields)
        return field_delta_kind(baseline, inner)
    return type(f"DeltaModel[{inner}]", (DeltaModel,), {
        "__module__": __name__, "inner_kind": inner, "baseline_key": baseline, "symmetrize": symmetrize,
        "config_options": dict(cls.config_options), "iterative": cls.iterative})


def delta_method_kind(method: str, inner: str = DEFAULT_INNER, db: str | Path | None = None, label: str | None = None,
                      symmetrize: bool = False, workers: int = 0, sigma: float | None = None, reference: str = "none") -> type["DeltaModel"]:
    """The delta kind whose baseline psilearn computes with its own labeler ``method`` ('gfn2',
    'XC/BASIS'), cached in the label store ``db`` (an ASE SQLite file), at fit and at predict time
    (``fit_model(delta_method_kind("gfn2", db="b.db"), target, dataset, config)``). ``label``
    overrides the label key inferred from the Target's key; ``workers`` as for psilearn label.
    Spectrum kind (a DOS target): ``sigma`` the target's Gaussian width (grid units), ``reference``
    'none' or 'homo' (:func:`psilearn.models.fidelity.delta_spectrum.resolve_spectrum_method`)."""
    if not (method or "").strip():
        raise ConfigError("--baseline-method: the method is empty (gfn2, gfn1 or XC/BASIS)")
    cls = check_inner_kind(inner)
    if inner in FIELD_INNER:  # density and Hamiltonian targets: the labeler's baseline in the target's basis (delta_fields)
        check_field_method(method, inner, label)
        return field_delta_kind("", inner, method.strip().lower(), db, workers)
    return type(f"DeltaModel[{inner}]", (DeltaModel,), {
        "__module__": __name__, "inner_kind": inner, "method_name": method, "method_label": label,
        "method_db": None if db is None else str(db), "method_workers": workers, "symmetrize": symmetrize,
        "method_sigma": sigma, "method_reference": reference, "config_options": dict(cls.config_options), "iterative": cls.iterative})


def _baseline_values(frames: list[Atoms], target: Target, key: str, symmetrize: bool) -> np.ndarray:
    """The baseline labels ``key`` of ``frames``, validated as the Target's own labels (same
    shape, per-structure/per-atom, symmetry); DataError naming file, frame and key otherwise."""
    base = dataclasses.replace(target, key=key)
    try:
        values = extract_values(frames, base)
        return check_symmetry(frames, base, values, symmetrize)
    except DataError as exc:
        raise DataError(f"{exc} (the baseline of the delta model of {target.key!r})") from None


@dataclass
class DeltaPrediction(Prediction):
    """A Prediction (the sum) with the baseline and the correction as extras, written by
    :func:`psilearn.data.prediction_io.predictions_to_atoms` as ``KEY_baseline`` and ``KEY_correction``."""

    baseline: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))
    correction: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))
    key: str = ""
    per: str = "structure"

    def _extras(self) -> dict[str, np.ndarray]:
        squeeze = (lambda v: v[:, 0]) if self.baseline.shape[1] == 1 else (lambda v: v)
        return {f"{self.key}_baseline": squeeze(self.baseline), f"{self.key}_correction": squeeze(self.correction)}

    @property
    def extra_info(self) -> dict[str, np.ndarray]:
        return self._extras() if self.per == "structure" else {}

    @property
    def pair_extras(self) -> dict[str, np.ndarray]:
        """Per-pair targets: the extras with one row per pair (written next to ``KEY`` in info)."""
        return {f"{self.key}_baseline": self.baseline, f"{self.key}_correction": self.correction} if self.per == "pair" else {}

    @property
    def extra_arrays(self) -> dict[str, np.ndarray]:
        return self._extras() if self.per == "atom" else {}


@dataclass
class DeltaModel(WrapsInner, Model):
    """Δ-learning: ``prediction = baseline label + inner model's correction``.

    >>> model = delta_kind("alpha_gfn2", "sagpr").build(Target("alpha", tensor="ij=ji"), config).fit(dataset)
    >>> model.predict(frames_with_alpha_gfn2).values

    With ``baseline_method`` ('gfn2', 'XC/BASIS', or a resolved :class:`BaselineMethod`) instead of
    ``baseline``, psilearn labels every structure itself through the label store ``baseline_db``:

    >>> DeltaModel(target, inner, baseline_method="gfn2", baseline_db="baseline.db")
    """

    target: Target
    inner: Model | None = None  # the unfitted or fitted model of the correction (same Target)
    baseline: str = ""  # key of the baseline label in every structure
    symmetrize_baseline: bool = False  # project baseline labels onto the Target's symmetry instead of refusing
    progress: bool = False
    metadata: dict = field(default_factory=dict)
    baseline_method: BaselineMethod | str | None = None  # or: psilearn's labeler computes the baseline
    baseline_db: str | Path | None = None  # the label store of baseline_method (ASE SQLite, resumable)
    baseline_label: str | None = None  # label key of baseline_method (default: inferred from the Target's key)
    baseline_workers: int = 0  # labeling workers (0: in this process; N: a local Dask cluster)
    last_baseline_summary: CampaignSummary | None = field(default=None, repr=False, compare=False)
    last_baseline_seconds: float = field(default=0.0, repr=False, compare=False)  # stored compute time of those labels

    kind: ClassVar[str] = "delta"
    inner_kind: ClassVar[str] = DEFAULT_INNER
    baseline_key: ClassVar[str] = ""
    symmetrize: ClassVar[bool] = False
    method_name: ClassVar[str | None] = None
    method_label: ClassVar[str | None] = None
    method_db: ClassVar[str | None] = None
    method_workers: ClassVar[int] = 0
    # the campaign check_baseline ran on the training data just before the fit (the CLI); the fit reuses its labels
    checked_summary: ClassVar[CampaignSummary | None] = None
    method_sigma: ClassVar[float | None] = None  # spectra: the target's Gaussian width (grid units)
    method_reference: ClassVar[str] = "none"  # spectra: energies absolute ('none') or relative to the HOMO
    config_options: ClassVar[dict[str, type]] = dict(model_class(DEFAULT_INNER).config_options)

    def __post_init__(self) -> None:
        if type(self.target) is not Target or (self.target.is_spectrum and self.inner_kind != "spectrum"):
            raise ValueError(f"the delta model learns Cartesian-tensor targets and spectra, not {self.target.describe()}")
        check_spectrum_inner(self.target, self.inner)  # spectra: the spectrum kind, loss 'l2' only
        if self.inner is not None and self.inner.target != self.target:
            raise ValueError("the inner model's Target differs from the delta model's")
        if self.baseline and self.baseline_method:
            raise ConfigError("give either a baseline label (--baseline) or a baseline method (--baseline-method), not both")
        if isinstance(self.baseline_method, str) and self.target.is_spectrum:
            self.baseline_method = resolve_spectrum_method(self.baseline_method, self.target, self.method_sigma, self.method_reference)
        elif isinstance(self.baseline_method, str):
            self.baseline_method = BaselineMethod.resolve(self.baseline_method, self.target, self.baseline_label)

    @classmethod
    def from_options(cls, target: Target, options: dict, seed: int, progress: bool) -> "DeltaModel":
        """The inner kind's model from its options, wrapped (the class must come from :func:`delta_kind`)."""
        if not cls.baseline_key and not cls.method_name:
            raise ConfigError("the delta kind needs a baseline label: psilearn fit --baseline KEY or --baseline-method "
                              "METHOD, or psilearn.models.fidelity.delta_kind(KEY, inner) / delta_method_kind(METHOD, inner)")
        inner = model_class(cls.inner_kind).from_options(target, options, seed, progress)
        if cls.method_name:
            return cls(target, inner, "", cls.symmetrize, progress, baseline_method=cls.resolve_method(target),
                       baseline_db=cls.method_db, baseline_label=cls.method_label, baseline_workers=cls.method_workers)
        return cls(target, inner, cls.baseline_key, cls.symmetrize, progress)

    @classmethod
    def resolve_method(cls, target: Target) -> BaselineMethod:
        """The baseline method of a :func:`delta_method_kind` for ``target``: ConfigError for an unknown
        method, a Target without a labeler observable or units that differ (the CLI calls it before reading data)."""
        if target.is_spectrum:
            return resolve_spectrum_method(cls.method_name, target, cls.method_sigma, cls.method_reference)
        return BaselineMethod.resolve(cls.method_name, target, cls.method_label)

    @classmethod
    def check_baseline(cls, data: Dataset) -> CampaignSummary | None:
        """DataError naming file, frame and key if ``data``'s structures lack a valid baseline label
        (the CLI calls it right after reading TRAIN, before fitting). With a baseline method: labels
        ``data`` into the store (what fitting then reuses) and returns the campaign summary."""
        if cls.method_name:
            probe = cls(data.target, None, "", cls.symmetrize, baseline_method=cls.resolve_method(data.target),
                        baseline_db=cls.method_db, baseline_workers=cls.method_workers, progress=True)
            probe._baseline(data.frames)
            cls.checked_summary = probe.last_baseline_summary  # the fit reuses these labels; its record counts them
            return probe.last_baseline_summary
        if data.target.per == "pair":
            same_pairs(data.frames, data.target, cls.baseline_key, data.pairs,
                       pair_baseline(data.frames, data.target, cls.baseline_key, cls.symmetrize)[1])
        else:
            cls.check_baseline_frames(data.frames, data.target)
        return None

    @classmethod
    def check_baseline_frames(cls, frames: list[Atoms], target: Target) -> None:
        """DataError naming frame and key if any of ``frames`` lacks a valid baseline label ``baseline_key`` (shape,
        symmetry, grid) of ``target``: unlabelled structures too (e.g. an active-learning pool)."""
        if target.per == "pair":
            pair_baseline(frames, target, cls.baseline_key, cls.symmetrize)
            return
        check_baseline_grid(frames, target, cls.baseline_key)
        _baseline_values(frames, target, cls.baseline_key, cls.symmetrize)

    def _baseline(self, frames: list[Atoms]) -> np.ndarray:
        """The baseline of ``frames``: their label ``baseline``, or ``baseline_method``'s labels from the store."""
        if self.target.per == "pair" and not self.baseline_method:
            return pair_baseline(frames, self.target, self.baseline, self.symmetrize_baseline)
        if not self.baseline_method:
            check_baseline_grid(frames, self.target, self.baseline)
            return _baseline_values(frames, self.target, self.baseline, self.symmetrize_baseline)
        if not self.baseline_db:
            raise ConfigError(f"the baseline method {self.baseline_method.name} needs a label database: "
                              f"baseline_db=PATH.db (psilearn: --baseline-db, default MODEL.baseline.db)")
        if self.target.per == "pair":  # the labeler's couplings on the target's pairs (delta_pairs)
            return method_pair_baseline(self, frames)
        if self.target.is_spectrum:  # the labeler's orbital energies broadened on the target's grid (delta_spectrum)
            return method_spectrum_baseline(self, frames)
        labelled, self.last_baseline_summary, self.last_baseline_seconds = self.baseline_method.label_frames(
            frames, self.baseline_db, workers=self.baseline_workers, progress=self.progress)
        return _baseline_values(labelled, self.target, self.baseline_method.key, self.symmetrize_baseline)

    def _campaign_record(self) -> dict:
        """The cost of the training baseline: the labels' stored compute seconds (summed over the
        structures, however many were reused from the store) and what the last campaign did."""
        return campaign_record(self.last_baseline_summary, self.last_baseline_seconds, type(self).checked_summary)

    @property
    def baseline_name(self) -> str:
        """What the baseline is, for messages: the label key, or 'LABEL from METHOD'."""
        bm = self.baseline_method
        return f"{bm.label} from {bm.name}" if bm else self.baseline

    def predict_structures(self, frames: list[Atoms]) -> np.ndarray:
        """Spectra: (n_structures, n_grid) of the sum, per-atom spectra summed (as the spectrum kind's)."""
        return structure_spectra(self.target, frames, self.predict(frames, return_std=False).values)

    # ---- fitting ---------------------------------------------------------------------------------
    def fit(self, data: Dataset) -> "DeltaModel":
        """Fit the inner model on ``target - baseline`` of ``data``'s structures. Returns self."""
        check_training_data(self.target, data, pairs=True)  # the inner kind refuses pairs itself if it cannot fit them
        t0 = time.perf_counter()
        self.metadata = {}  # unfitted: a per-pair baseline is taken on the training file's pairs, not a previous pair rule
        base = self._baseline(data.frames)
        if self.target.per == "pair":
            base, pairs = base
            same_pairs(data.frames, self.target, self.baseline, data.pairs, pairs)
        diff = Dataset(data.frames, self.target, data.values - base, f"{data.name} ({self.target.key} - {self.baseline_name})",
                       pairs=data.pairs)
        self.inner.fit(diff)
        self.metadata = {
            **self.inner.metadata, **self.training_record(data, t0),
            "fit_seconds": self.inner.metadata.get("fit_seconds", round(time.perf_counter() - t0, 3)),
            "composition_baseline": composition_record(self.target, data),
            "delta": {"baseline_key": self.baseline, "inner_kind": self.inner.kind,
                      **({"baseline_method": self.baseline_method.record(),
                          "baseline_labels": self._campaign_record()} if self.baseline_method else {}),
                      "note": "heldout_metrics are those of the correction: absolute errors equal those of the sum "
                              "(the baseline is exact), percentages are relative to the spread of the correction"},
        }
        return self

    # ---- prediction ------------------------------------------------------------------------------
    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool, **options) -> DeltaPrediction:
        if self.inner is None or not self.metadata:
            raise RuntimeError("model is not fitted")
        base = self._baseline(frames)
        if self.target.per == "pair":  # the inner model predicts exactly the baseline's pairs
            base, pairs = base
            frames = with_pairs(frames, self.target, self.baseline, pairs)
        self.inner.progress = self.progress
        corr = self.inner.predict(frames, return_std=return_std, return_cov=return_cov, **options)
        return DeltaPrediction(values=base + corr.values, std=corr.std, irreps=self.target.to_irreps(base) + corr.irreps,
                               irreps_std=corr.irreps_std, cov=corr.cov, pairs=corr.pairs, baseline=base, correction=corr.values,
                               key=self.target.key, per=self.target.per)

    def posterior_factors(self, frames: list[Atoms]) -> list[tuple[np.ndarray, float]] | None:
        """The correction's joint posterior (:meth:`Model.posterior_factors`): the baseline is a known function of the
        structure, taken as exact, so the sum's posterior covariance is the correction's. None where the inner kind has
        none. Per-pair targets: None (the samples would be the baseline's pairs, which need the baseline labels)."""
        if self.inner is None or not self.metadata:
            raise RuntimeError("model is not fitted")
        return None if self.target.per == "pair" else self.inner.posterior_factors(frames)

    @classmethod
    def has_joint_posterior(cls, options: dict | None = None) -> bool:
        return model_class(cls.inner_kind).has_joint_posterior(options)

    def posterior_blocks(self) -> list[int]:
        return self.inner.posterior_blocks()

    # ---- persistence -----------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Metadata: the baseline key, the inner kind and the inner model's metadata (``inner``,
        with its training record); arrays: the inner model's, prefixed ``inner/``."""
        if self.inner is None or not self.metadata:
            raise RuntimeError("model is not fitted")
        meta, arrays = self.inner.to_state()
        method = {"baseline_method": self.baseline_method.record(),
                  "baseline_db": str(Path(self.baseline_db).resolve()) if self.baseline_db else None} if self.baseline_method else {}
        return ({"baseline_key": self.baseline, "symmetrize_baseline": self.symmetrize_baseline, "inner_kind": self.inner.kind,
                 **method, "inner": {**meta, "training": self.inner.metadata}},
                {f"inner/{k}": v for k, v in arrays.items()})

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "DeltaModel":
        kind = meta["inner_kind"]
        if kind in FIELD_INNER:
            return FieldDeltaModel.from_state(meta, arrays)
        if kind in REFUSED_INNER:
            raise ValueError(f"inner kind {kind!r} is not allowed in a delta model")
        outer = {k: v for k, v in meta.items() if k not in ("inner", "inner_kind", "baseline_key", "symmetrize_baseline", "training",
                                                            "baseline_method", "baseline_db")}
        inner_meta = {**outer, **meta["inner"], "model": kind}
        inner = model_class(kind).from_state(inner_meta, {k[len("inner/"):]: v for k, v in arrays.items() if k.startswith("inner/")})
        if len(arrays) != len([k for k in arrays if k.startswith("inner/")]):
            raise ValueError("arrays outside 'inner/' in a delta model")
        target = Target.from_dict(meta["target"])
        if meta.get("baseline_method"):
            method = BaselineMethod.from_record(meta["baseline_method"])
            how = dict(method.derived)  # spectra: the recorded broadening
            klass = delta_method_kind(method.method, kind, meta.get("baseline_db"), method.label, bool(meta["symmetrize_baseline"]),
                                      sigma=float(how["sigma"]) if "sigma" in how else None, reference=how.get("reference", "none"))
            model = klass(target, inner, "", klass.symmetrize, baseline_method=method, baseline_db=klass.method_db,
                          baseline_label=method.label)
        else:
            klass = delta_kind(str(meta["baseline_key"]), kind, bool(meta["symmetrize_baseline"]))
            model = klass(target, inner, klass.baseline_key, klass.symmetrize)
        model.metadata = meta["training"]
        return model

