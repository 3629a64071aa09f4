"""The `per-element` model kind: a separate, complete model for each centre element of a per-atom target.

ShiftML-style: the ¹H shielding of an atom is learned by a model of H atoms only, the ¹³C one by a
model of C atoms only, each with its own λ-SOAP settings (cutoff, max_radial, ...), kernel settings
(zeta, sparse points, regularisation) and, under ``--tune``, its own study. Every inner model sees
all atoms of every structure (they shape the environments) but is fitted on its element's labelled
atoms only: the inner kind's label mask (:func:`psilearn.models.per_element.options.element_dataset`).

Options: the inner kind's sections (``soap``, ``model`` for sagpr; ``nn``, ``nn_train`` for nn) are
shared, and ``per_element: {H: {soap: {cutoff: 3.0}}, C: {model: {zeta: 3}}}`` overrides them key by
key for the elements named (:mod:`psilearn.models.per_element.options`).

Prediction: each atom gets its element's model's prediction (values, std, irreps, covariance); atoms
of an element that is in the training structures but never labelled (a label mask) get NaN; an
element absent from training is refused (file, frame, element).

The inner models are reached only through the registry, never by importing another kind. In model
files each inner model's state is nested as in the delta kind: metadata under ``inner.SYMBOL`` (with
its training record), arrays prefixed ``SYMBOL/``, the inner kind in ``inner_kind``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from psilearn.config import check_sections
from psilearn.data import Dataset
from psilearn.data.prediction import Prediction
from psilearn.errors import ConfigError
from psilearn.models.base import Model
from psilearn.models.checks import check_training_data
from psilearn.models.per_element.options import (
    SECTION,
    PerElementSection,
    all_numbers,
    element_configs,
    element_dataset,
    focus_sagpr,
    labelled_elements,
    split_config,
    validate_elements,
)
from psilearn.models.registry import model_class
from psilearn.targets import Target

DEFAULT_INNER = "sagpr"
#: inner kinds that learn per-atom labels on only some atoms (a label mask), which each element's model needs
INNER_KINDS = ("sagpr", "nn")


def per_element_kind(inner: str = DEFAULT_INNER) -> type["PerElementModel"]:
    """The per-element kind with inner kind ``inner`` (sagpr or nn), usable wherever a kind name is
    (``fit_model(per_element_kind("nn"), target, dataset, config)``). ConfigError for other kinds."""
    if inner not in INNER_KINDS:
        raise ConfigError(f"--per-element: the inner model must be one of {', '.join(INNER_KINDS)} (kinds that fit per-atom labels "
                          f"on some atoms only), not {inner!r}")
    if inner == DEFAULT_INNER:
        return PerElementModel
    cls = model_class(inner)
    return type(f"PerElementModel[{inner}]", (PerElementModel,), {
        "__module__": __name__, "inner_kind": inner, "config_options": {**cls.config_options, SECTION: PerElementSection},
        "iterative": cls.iterative})


def check_per_atom(target: Target) -> None:
    """ConfigError (one line) for a Target the per-element kind cannot learn: anything but a per-atom tensor."""
    if type(target) is not Target or target.is_spectrum or target.per != "atom":
        raise ConfigError(f"--per-element: a separate model per centre element needs a per-atom target (--per atom), "
                          f"not {target.describe()}")


@dataclass
class PerElementModel(Model):
    """One inner model per centre element of a per-atom target.

    >>> model = PerElementModel.build(Target("cs", per="atom"), {"per_element": {"H": {"soap": {"cutoff": 3.0}}}}).fit(ds)
    >>> model.inners[1]  # the model of the H atoms (an SA-GPR here)
    """

    target: Target
    options: dict = field(default_factory=dict)  # validated options of the elements not named in per_element
    element_options: dict = field(default_factory=dict)  # symbol -> validated options of each named element
    overrides: dict = field(default_factory=dict)  # the raw per_element section (recorded in the model file)
    seed: int = 0
    progress: bool = False
    inners: dict = field(default_factory=dict)  # Z -> fitted inner model
    species: list[int] = field(default_factory=list)  # every element of the training structures
    metadata: dict = field(default_factory=dict)

    kind: ClassVar[str] = "per-element"
    inner_kind: ClassVar[str] = DEFAULT_INNER
    config_options: ClassVar[dict[str, type]] = {**model_class(DEFAULT_INNER).config_options, SECTION: PerElementSection}

    def __post_init__(self) -> None:
        check_per_atom(self.target)

    @classmethod
    def check_target(cls, target: Target) -> None:
        """ConfigError (one line) for a Target this kind cannot learn (the CLI calls it before reading data)."""
        check_per_atom(target)

    # ---- options ---------------------------------------------------------------------------------
    @classmethod
    def validate_config(cls, config: dict | None, source=None, seed: int | None = None) -> tuple[dict, int]:
        """({section: options} of the inner kind's sections, validated as the inner kind does, plus
        ``per_element``: a :class:`PerElementSection` with each named element's merged options; seed)."""
        inner = model_class(cls.inner_kind)
        check_sections(config or {}, cls.config_sections, cls.kind, source)
        shared, raw = split_config(config)
        options, seed = inner.validate_config(shared, source=source, seed=seed)
        merged = element_configs(shared, raw, inner.config_sections, cls.inner_kind, source)
        options[SECTION] = PerElementSection(raw or {}, validate_elements(inner, merged, source, seed))
        return options, seed

    @classmethod
    def from_options(cls, target: Target, options: dict, seed: int, progress: bool) -> "PerElementModel":
        check_per_atom(target)
        shared = {s: o for s, o in options.items() if s != SECTION}
        section = options.get(SECTION) or PerElementSection()
        return cls(target, shared, section.elements, section.raw, seed, progress)

    def options_of(self, z: int, species: list[int]) -> dict:
        """The validated options of element ``z``'s model (its own if named, else the shared ones); for
        SA-GPR focused on ``z`` (:func:`~psilearn.models.per_element.options.focus_sagpr`)."""
        import copy

        sym = chemical_symbols[z]
        opts = self.element_options.get(sym, self.options)
        if self.inner_kind == "sagpr":
            try:
                return focus_sagpr(opts, z, species)
            except ConfigError as exc:
                raise ConfigError(f"{SECTION}.{sym}: {exc}" if sym in self.element_options else str(exc)) from None
        return copy.deepcopy(opts)

    def inner_model(self, z: int, species: list[int]) -> Model:
        """The unfitted inner model of element ``z``."""
        return model_class(self.inner_kind).from_options(self.target, self.options_of(z, species), self.seed, self.progress)

    # ---- fitting ---------------------------------------------------------------------------------
    def fit(self, data: Dataset) -> "PerElementModel":
        """Fit one inner model per labelled element on that element's atoms. Returns self."""
        check_training_data(self.target, data, partial_labels=True)
        t0 = time.perf_counter()
        species = data.species
        elements = labelled_elements(data)
        self.check_named(elements, species)
        inners = {}
        for z in elements:
            inners[z] = self.inner_model(z, species).fit(element_dataset(data, z))
        return self.assemble(data, inners, t0)

    def check_named(self, elements: list[int], species: list[int]) -> None:
        """ConfigError for a ``per_element`` entry naming an element without labelled training atoms."""
        have = ", ".join(chemical_symbols[z] for z in elements)
        for sym in self.element_options:
            if atomic_numbers[sym] not in elements:
                where = "is not in the training data" if atomic_numbers[sym] not in species else "has no labelled atom in the training data"
                raise ConfigError(f"{SECTION}: element {sym!r} {where} (labelled elements: {have})")

    def assemble(self, data: Dataset, inners: dict, t0: float, **extra) -> "PerElementModel":
        """Take the fitted ``inners`` ({Z: model}, e.g. from per-element tuning) and write the training
        record: each element's own record under ``per_element`` (with its k-fold estimate). Returns self."""
        self.inners = dict(sorted(inners.items()))
        self.species = data.species
        per = {chemical_symbols[z]: {k: m.metadata.get(k) for k in ("n_train_samples", "fit_seconds", "heldout_metrics", "n_sparse",
                                                                      "tuning") if k in m.metadata} for z, m in self.inners.items()}
        mask = {"label_mask": data.label_mask} if data.labelled is not None else {}
        held = {"method": "each element's own model and estimate: see per_element", "per_element": {s: r.get("heldout_metrics") for s, r in per.items()}}
        if len(per) == 1 and (only := next(iter(per.values())).get("heldout_metrics")):  # one element: its estimate is the model's
            held = {**only, "method": f"{only['method']}, of the {next(iter(per))} model"}
        self.metadata = self.training_record(data, t0, **mask, per_element=per, inner_kind=self.inner_kind, heldout_metrics=held, **extra)
        return self

    # ---- prediction ------------------------------------------------------------------------------
    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool, **options) -> Prediction:
        if not self.inners:
            raise RuntimeError("model is not fitted")
        numbers = all_numbers(frames)
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
        n, size = len(numbers), self.target.size
        n_irr = self.target.to_irreps(np.zeros((1, size))).shape[1]
        values, std = np.full((n, size), np.nan), np.full((n, size), np.nan)
        irreps, irreps_std = np.full((n, n_irr), np.nan), np.full((n, n_irr), np.nan)
        cov = np.full((n, size, size), np.nan) if return_cov else None
        for z, inner in self.inners.items():
            sel = [i for i, a in enumerate(frames) if np.any(a.numbers == z)]
            if not sel:
                continue
            inner.progress = self.progress
            p = inner.predict([frames[i] for i in sel], return_std=return_std, return_cov=return_cov, **options)
            rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in sel])
            keep = numbers[rows] == z
            rows = rows[keep]
            values[rows], std[rows], irreps[rows], irreps_std[rows] = p.values[keep], p.std[keep], p.irreps[keep], p.irreps_std[keep]
            if return_cov:
                cov[rows] = p.cov[keep]
        return Prediction(values, std, irreps, irreps_std, cov)

    def check_elements(self, frames: list[Atoms]) -> None:
        """DataError naming file, frame and element for an element absent from the training structures
        (elements present there but never labelled are predicted as NaN)."""
        from psilearn.models.checks import check_known_elements

        check_known_elements(frames, self.species)

    # ---- persistence -----------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Metadata: the inner kind, the elements, the ``per_element`` overrides and each inner model's
        metadata (``inner.SYMBOL``, with its training record); arrays: each inner model's, prefixed ``SYMBOL/``."""
        if not self.inners or not self.metadata:
            raise RuntimeError("model is not fitted")
        metas, arrays = {}, {}
        for z, inner in self.inners.items():
            sym = chemical_symbols[z]
            meta, arr = inner.to_state()
            metas[sym] = {**meta, "training": inner.metadata}
            arrays.update({f"{sym}/{k}": v for k, v in arr.items()})
        return ({"inner_kind": self.inner_kind, "elements": [chemical_symbols[z] for z in self.inners], "species": self.species,
                 "seed": self.seed, SECTION: self.overrides, "inner": metas}, arrays)

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "PerElementModel":
        kind = meta["inner_kind"]
        if kind not in INNER_KINDS:
            raise ValueError(f"inner kind {kind!r} is not allowed in a per-element model")
        klass = per_element_kind(kind)
        target = Target.from_dict(meta["target"])
        elements = [str(s) for s in meta["elements"]]
        if set(meta["inner"]) != set(elements) or not elements:
            raise ValueError("the inner models differ from the listed elements")
        if any(k.split("/", 1)[0] not in elements or "/" not in k for k in arrays):
            raise ValueError("arrays outside the elements' models in a per-element model")
        outer = {k: v for k, v in meta.items() if k not in ("inner", "inner_kind", "elements", "species", "seed", SECTION, "training")}
        inners = {}
        for sym in elements:
            inner_meta = {**outer, **meta["inner"][sym], "model": kind}
            sub = {k[len(sym) + 1:]: v for k, v in arrays.items() if k.startswith(f"{sym}/")}
            inners[atomic_numbers[sym]] = model_class(kind).from_state(inner_meta, sub)
        # the options are those of each inner model (its own state); the overrides are kept as a record
        model = klass(target, {}, {}, meta[SECTION] or {}, int(meta["seed"]), inners=inners, species=[int(z) for z in meta["species"]])
        model.metadata = meta["training"]
        return model
