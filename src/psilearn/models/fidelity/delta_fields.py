"""Δ-learning of density and Hamiltonian targets: a baseline label in the same basis plus a learned correction.

The baseline is a second label of the same object in the same basis, carried by every structure
under its own key:

* ``density`` (:class:`~psilearn.targets.DensityTarget`): density-fitting coefficients of a cheaper
  method in the SAME auxiliary basis and metric (e.g. ``density_coefficients_input`` after relabelling
  a file with another ``--method``). The inner ``density`` model learns ``c - c_base``; at prediction
  the electron-count constraint acts on the sum: among all corrections d' the one closest to the
  predicted d in the metric with q^T (c_base + d') = N, i.e. the sum is projected exactly as the plain
  model's prediction is (the correction then carries N - q^T c_base electrons, ~0 for a fitted baseline).
* ``hamiltonian`` (:class:`~psilearn.targets.HamiltonianTarget`): a Fock/Kohn-Sham matrix of a cheaper
  method in the SAME AO basis (e.g. HF/def2-SVP under PBE/def2-SVP); the inner ``hamiltonian`` model
  learns ``F - F_base`` blockwise and predicts ``F_base + correction`` (everything derived from F,
  orbital energies included, comes from the sum with the structure's exact S).

The baseline's basis is read from ``KEY_aux_basis``/``KEY_metric`` (density) or ``KEY_basis``
(Hamiltonian) when present, else from the companion keys with the baseline's suffix (the labeler keeps a
replaced ``density_aux_basis`` as ``density_aux_basis_input`` next to ``density_coefficients_input``), else
the frame's own; a baseline in another basis or metric, a wrong size or a missing key is one line naming
file, frame and key. The baseline is taken as exact (no uncertainty): the inner kinds give none anyway.

With a baseline method (``--baseline-method XC/BASIS``, :class:`~psilearn.models.fidelity.BaselineMethod`)
psilearn's labeler computes the baseline at fit and at predict time through the label store
(``baseline_db``), in the target's basis: the density fitted in the target's aux basis and metric, F
from a method in the target's AO basis (another basis is refused before any labelling).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from ase import Atoms

from psilearn.data.density import DensityDataset, check_density_frame
from psilearn.data.errors import DataError, frame_location
from psilearn.data.hamiltonian import HamiltonianDataset, check_hamiltonian_frame
from psilearn.data.prediction import DensityPrediction, HamiltonianPrediction
from psilearn.errors import ConfigError
from psilearn.models.base import Model
from psilearn.models.fidelity.baseline_method import FIELD_INNER, BaselineMethod, campaign_record
from psilearn.models.registry import model_class

if TYPE_CHECKING:
    from psilearn.label.campaign import CampaignSummary

#: per target kind: (companion keys describing the basis, as named in the labeler's output)
_COMPANIONS = {"density": ("density_aux_basis", "density_metric", "density_aux_shells"),
               "hamiltonian": ("hamiltonian_basis", "hamiltonian_shells")}


def _companion(atoms: Atoms, target_key: str, key: str, name: str) -> object | None:
    """The baseline's own value of companion ``name`` (e.g. density_aux_basis): ``KEY_<what>``, else
    ``name + suffix`` when ``key`` is ``target_key + suffix``; None when neither is present."""
    what = name.split("_", 1)[1]  # aux_basis, metric, aux_shells, basis, shells
    for cand in (f"{key}_{what}", f"{name}{key[len(target_key):]}" if key.startswith(target_key) and key != target_key else None):
        if cand and cand in atoms.info:
            return atoms.info[cand]
    return None


def _as_baseline_frame(atoms: Atoms, target, key: str, inner: str) -> Atoms:
    """A shallow copy of ``atoms`` whose target label is the baseline ``key`` and whose basis
    companions are the baseline's own (so the target's checks apply to the baseline)."""
    b = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    b.info = dict(atoms.info)
    for name in _COMPANIONS[FIELD_INNER[inner]]:
        own = _companion(atoms, target.key, key, name)
        if own is not None:
            b.info[name] = own
    if FIELD_INNER[inner] == "density":  # the baseline's ECP core electrons per atom; absent: the frame's own (as above)
        what = "core_electrons"
        for cand in (f"{key}_{what}", f"density_{what}{key[len(target.key):]}" if key.startswith(target.key) else None,
                     f"density_{what}"):
            if cand and cand in atoms.arrays:
                b.arrays["density_core_electrons"] = np.asarray(atoms.arrays[cand])
                break
    if key in atoms.info:
        b.info[target.key] = atoms.info[key]
    else:
        b.info.pop(target.key, None)
    return b


def field_baselines(frames: list[Atoms], target, key: str, inner: str) -> list[np.ndarray]:
    """The validated baseline of every structure (flat, the target's layout): density coefficients or
    F (Hartree). DataError, one line naming file, frame and key, for a missing baseline or one in
    another basis, metric or size."""
    out = []
    for i, a in enumerate(frames):
        where = frame_location(a, i)
        if key not in a.info:
            raise DataError(f"{where}: no baseline label {key!r} (the baseline of the delta model of {target.key!r}; "
                            f"predict needs it in every input structure)")
        b = _as_baseline_frame(a, target, key, inner)
        try:
            if inner == "density":
                out.append(check_density_frame(b, i, target))
            else:
                out.append(check_hamiltonian_frame(b, i, target, overlap=False)[0])
        except DataError as exc:
            msg = str(exc).replace(repr(target.key), repr(key), 1)
            raise DataError(f"{msg} (the baseline {key!r} of the delta model of {target.key!r} must be in the same "
                            f"{'auxiliary basis and metric' if inner == 'density' else 'AO basis'} as the target)") from None
    return out


@dataclass
class DensityDeltaPrediction(DensityPrediction):
    """A DensityPrediction (the sum) with the baseline and the correction, per structure (flat, PySCF's order)."""

    baseline: list[np.ndarray] = field(default_factory=list)
    correction: list[np.ndarray] = field(default_factory=list)


@dataclass
class HamiltonianDeltaPrediction(HamiltonianPrediction):
    """A HamiltonianPrediction (the sum) with the baseline and the correction, per structure (n_ao, n_ao), Hartree."""

    baseline: list[np.ndarray] = field(default_factory=list)
    correction: list[np.ndarray] = field(default_factory=list)


def field_delta_kind(baseline: str, inner: str, method: str | None = None, db: str | Path | None = None,
                     workers: int = 0) -> type["FieldDeltaModel"]:
    """The delta kind of a density or Hamiltonian target (``inner`` 'density' or 'hamiltonian'): the
    baseline label ``baseline``, or (``method`` 'XC/BASIS') the labeler's, cached in the label store ``db``."""
    cls = model_class(inner)
    return type(f"FieldDeltaModel[{inner}]", (FieldDeltaModel,), {
        "__module__": __name__, "inner_kind": inner, "baseline_key": baseline, "method_name": method,
        "method_db": None if db is None else str(db), "method_workers": workers,
        "config_options": dict(cls.config_options), "iterative": cls.iterative})


def check_field_options(inner: str, options: dict) -> None:
    """ConfigError for options a field delta model cannot honour (``options``: the inner kind's validated options)."""
    if inner == "hamiltonian" and options["hamiltonian"].eigenvalue_weight > 0:
        raise ConfigError("Δ-learning (--baseline, --baseline-method) with hamiltonian.eigenvalue_weight > 0: the orbital-energy "
                          "term would act on the eigenvalues of the correction, not of the sum; set it to 0")


class WrapsInner:
    """What a delta model passes straight to its inner model (``self.inner``, a Model): elements, run options."""

    @property
    def species(self) -> list[int]:
        return self.inner.species

    def set_run_options(self, device=None, checkpoint_dir=None, resume: bool = False) -> None:
        self.inner.set_run_options(device=device, checkpoint_dir=checkpoint_dir, resume=resume)

    def check_elements(self, frames: list[Atoms]) -> None:
        self.inner.check_elements(frames)


@dataclass
class FieldDeltaModel(WrapsInner, Model):
    """Δ-learning of a density or Hamiltonian target: ``prediction = baseline label + inner model's correction``.

    >>> model = field_delta_kind("density_coefficients_input", "density").build(data.target, config).fit(data)
    >>> model.predict(frames).coefficients[0]   # the sum, with exactly N electrons
    """

    target: object
    inner: Model | None = None
    baseline: str = ""
    progress: bool = False
    metadata: dict = field(default_factory=dict)
    baseline_method: BaselineMethod | str | None = None  # or: psilearn's labeler computes the baseline ('hf/def2-svp')
    baseline_db: str | Path | None = None  # the label store of baseline_method (ASE SQLite, resumable)
    baseline_workers: int = 0  # labeling workers (0: in this process; N: a local Dask cluster)
    last_baseline_summary: CampaignSummary | None = field(default=None, repr=False, compare=False)
    last_baseline_seconds: float = field(default=0.0, repr=False, compare=False)

    kind: ClassVar[str] = "delta"
    inner_kind: ClassVar[str] = "density"
    baseline_key: ClassVar[str] = ""
    method_name: ClassVar[str | None] = None
    method_db: ClassVar[str | None] = None
    method_workers: ClassVar[int] = 0
    # the campaign check_baseline ran on the training data just before the fit (the CLI); the fit reuses its labels
    checked_summary: ClassVar[CampaignSummary | None] = None

    def __post_init__(self) -> None:
        want = FIELD_INNER.get(self.inner_kind)
        if getattr(self.target, "kind", None) != want:
            raise ValueError(f"the {self.inner_kind} delta model learns {want} targets, not {self.target.describe()}")
        if self.baseline and self.baseline_method:
            raise ConfigError("give either a baseline label (--baseline) or a baseline method (--baseline-method), not both")
        if isinstance(self.baseline_method, str):
            self.baseline_method = BaselineMethod.resolve(self.baseline_method, self.target)

    @classmethod
    def from_options(cls, target, options: dict, seed: int, progress: bool) -> "FieldDeltaModel":
        check_field_options(cls.inner_kind, options)
        inner = model_class(cls.inner_kind).from_options(target, options, seed, progress)
        if cls.method_name:
            return cls(target, inner, "", progress, baseline_method=cls.resolve_method(target), baseline_db=cls.method_db,
                       baseline_workers=cls.method_workers)
        return cls(target, inner, cls.baseline_key, progress)

    @classmethod
    def resolve_method(cls, target) -> BaselineMethod:
        """The baseline method for ``target``: ConfigError (one line) for xTB or a method in another AO basis."""
        return BaselineMethod.resolve(cls.method_name, target)

    @classmethod
    def check_baseline(cls, data) -> CampaignSummary | None:
        """DataError naming file, frame and key if ``data``'s structures lack a valid baseline (the CLI calls it
        before fitting). With a baseline method: labels ``data`` into the store and returns the campaign summary."""
        if not cls.method_name:
            field_baselines(data.frames, data.target, cls.baseline_key, cls.inner_kind)
            return None
        probe = cls(data.target, None, "", True, baseline_method=cls.resolve_method(data.target), baseline_db=cls.method_db,
                    baseline_workers=cls.method_workers)
        probe._baselines(data.frames)
        cls.checked_summary = probe.last_baseline_summary  # the fit reuses these labels; its record counts them
        return probe.last_baseline_summary

    def _baselines(self, frames: list[Atoms]) -> list[np.ndarray]:
        """The baseline of every structure (flat): its label ``baseline``, or ``baseline_method``'s through the store."""
        if not self.baseline_method:
            return field_baselines(frames, self.target, self.baseline, self.inner_kind)
        if not self.baseline_db:
            raise ConfigError(f"the baseline method {self.baseline_method.name} needs a label database: "
                              "baseline_db=PATH.db (psilearn: --baseline-db, default MODEL.baseline.db)")
        labelled, self.last_baseline_summary, self.last_baseline_seconds = self.baseline_method.label_frames(
            frames, self.baseline_db, workers=self.baseline_workers, progress=self.progress)
        return field_baselines(labelled, self.target, self.baseline_method.key, self.inner_kind)

    @property
    def baseline_name(self) -> str:
        """What the baseline is, for messages: the label key, or 'LABEL from METHOD'."""
        bm = self.baseline_method
        return f"{bm.label} from {bm.name}" if bm else self.baseline

    # ---- fitting ---------------------------------------------------------------------------------
    def _difference(self, data, base: list[np.ndarray]):
        diff = data.values - np.concatenate(base)
        name = f"{data.name} ({self.target.key} - {self.baseline_name})"
        if self.inner_kind == "density":
            return DensityDataset(data.frames, self.target, diff, name, offsets=data.offsets)
        return HamiltonianDataset(data.frames, self.target, diff, name, overlaps=data.overlaps, offsets=data.offsets)

    def fit(self, data) -> "FieldDeltaModel":
        """Fit the inner model on ``target - baseline`` of ``data`` (a Density/HamiltonianDataset). Returns self."""
        t0 = time.perf_counter()
        base = self._baselines(data.frames)
        labels = self._campaign_record() if self.baseline_method else {}
        self._fit_inner(data, base)
        method = {"baseline_method": self.baseline_method.record(), "baseline_labels": labels} if labels else {}
        self.metadata = {**self.inner.metadata, "fit_seconds": round(time.perf_counter() - t0, 3),
                         "delta": {"baseline_key": self.baseline, "inner_kind": self.inner.kind, **method,
                                   "note": "the inner model's training record (heldout_metrics included) is that of the correction"}}
        if self.inner_kind == "hamiltonian":
            self.metadata["heldout_metrics"] = self._hamiltonian_heldout(data, base)
        elif self.inner_kind == "density":  # the density model's hold-out error is relative to the norm of what it learned: the correction
            held = self.metadata["heldout_metrics"]
            self.metadata["heldout_metrics"] = {**held, "method": f"{held['method']}; of the correction (% of the correction's norm)"}
        return self

    def _fit_inner(self, data, base: list[np.ndarray]) -> None:
        """Fit the inner model on the correction. The kernel Hamiltonian kind scores its own held-out split
        before refitting on all structures; it is handed the sums and baselines (``heldout_offset``), so its
        held-out record is that of the sum (the network's is redone by :meth:`_hamiltonian_heldout`)."""
        diff = self._difference(data, base)
        if self.inner_kind != "hamiltonian-sagpr":
            self.inner.fit(diff)
            return
        self.inner.heldout_offset = lambda va: (data.subset(va), [base[i] for i in va])
        try:
            self.inner.fit(diff)
        finally:
            self.inner.heldout_offset = None

    def _campaign_record(self) -> dict:
        """The cost of the training baseline: the labels' stored compute seconds and what the campaign did."""
        return campaign_record(self.last_baseline_summary, self.last_baseline_seconds, type(self).checked_summary)

    def _hamiltonian_heldout(self, data, base: list[np.ndarray]) -> dict:
        """Held-out metrics of the SUM on the inner model's validation split (orbital energies of
        F_base + correction with the exact S), in place of the correction's."""
        from psilearn.data.splits import random_split
        from psilearn.metrics.hamiltonian import dataset_metrics

        _, va = random_split(len(data), self.inner.train_config.val_fraction, self.inner.seed)
        held = data.subset(va)
        pred = self._predict(held.frames, False, False).matrices
        return {"method": f"validation split ({len(va)} structures, used for early stopping), of the sum",
                "units": "Hartree", **dataset_metrics(pred, held)}

    # ---- prediction ------------------------------------------------------------------------------
    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool, conserve: bool | None = None, **options):
        if self.inner is None or not self.metadata:
            raise RuntimeError("model is not fitted")
        if return_cov:
            raise ValueError(f"the {self.inner_kind} delta model has no predictive covariance")
        base = self._baselines(frames)
        self.inner.progress = self.progress
        if FIELD_INNER[self.inner_kind] == "hamiltonian":
            corr = self.inner.predict(frames, return_std=False, **options)
            base = [b.reshape(m.shape) for b, m in zip(base, corr.matrices)]
            total = [b + m for b, m in zip(base, corr.matrices)]
            return HamiltonianDeltaPrediction(total, corr.basis, None, corr.n_pairs, corr.n_pairs_within_cutoff,
                                              corr.n_centres_outside, baseline=base, correction=list(corr.matrices))
        return self._predict_density(frames, base, conserve)

    def _predict_density(self, frames: list[Atoms], base: list[np.ndarray], conserve: bool | None) -> DensityDeltaPrediction:
        """The sum c_base + d, projected (when conserving) to the metric-closest vector with exactly N
        electrons: the same projection as the plain model's, applied to the sum (not to d alone)."""
        conserve = self.inner.config.conserve_electrons if conserve is None else conserve
        corr = self.inner.predict(frames, return_std=False, conserve=False)
        total, electrons = self.inner.electron_projection(frames, [b + d for b, d in zip(base, corr.coefficients)], conserve)
        return DensityDeltaPrediction(total, corr.aux_basis, corr.metric, None, electrons, baseline=base,
                                      correction=[c - b for c, b in zip(total, base)])

    # ---- persistence -----------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """As :class:`~psilearn.models.fidelity.DeltaModel`: the inner state nested under ``inner`` and ``inner/``."""
        if self.inner is None or not self.metadata:
            raise RuntimeError("model is not fitted")
        meta, arrays = self.inner.to_state()
        method = {"baseline_method": self.baseline_method.record(),
                  "baseline_db": str(Path(self.baseline_db).resolve()) if self.baseline_db else None} if self.baseline_method else {}
        return ({"baseline_key": self.baseline, "inner_kind": self.inner.kind, **method, "inner": {**meta, "training": self.inner.metadata}},
                {f"inner/{k}": v for k, v in arrays.items()})

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "FieldDeltaModel":
        from psilearn.targets import Target

        kind = meta["inner_kind"]
        if kind not in FIELD_INNER:
            raise ValueError(f"inner kind {kind!r} is not a density or hamiltonian kind")
        if any(not k.startswith("inner/") for k in arrays):
            raise ValueError("arrays outside 'inner/' in a delta model")
        outer = {k: v for k, v in meta.items() if k not in ("inner", "inner_kind", "baseline_key", "training", "baseline_method", "baseline_db")}
        inner = model_class(kind).from_state({**outer, **meta["inner"], "model": kind}, {k[len("inner/"):]: v for k, v in arrays.items()})
        target = Target.from_dict(meta["target"])
        if meta.get("baseline_method"):  # the recorded method and hash: predict refuses a labeler that now hashes differently
            method = BaselineMethod.from_record(meta["baseline_method"])
            klass = field_delta_kind("", kind, method.method, meta.get("baseline_db"))
            model = klass(target, inner, "", baseline_method=method, baseline_db=klass.method_db)
        else:
            klass = field_delta_kind(str(meta["baseline_key"]), kind)
            model = klass(target, inner, klass.baseline_key)
        model.metadata = meta["training"]
        return model

