"""The one model protocol every model kind implements, and what it shares (written once).

A model kind is a class deriving from :class:`Model`, registered by name in
:mod:`psilearn.models.registry`. It provides:

* ``kind`` (its registry name), ``config_options`` (YAML section -> options class, a
  :class:`psilearn.config.Options` dataclass) and ``config_sections`` (those sections, in order);
* ``build(target, config, seed, progress)``: an unfitted model from an options dict, validated by
  :meth:`Model.validate_config` (also called by the CLI before any data is read);
* ``fit(dataset) -> self``;
* ``_predict(frames, return_std, return_cov) -> Prediction`` on a checked, non-empty list of
  structures (the public :meth:`Model.predict` normalises the input first);
* ``check_elements(frames)``: DataError for elements the model never saw (the default checks
  ``species``, the atomic numbers seen in training);
* ``to_state() -> (metadata, arrays)`` and ``from_state(metadata, arrays)``: everything a fitted
  model needs, as JSON-able metadata and named numpy arrays. :meth:`Model.save` writes them with
  the model-file container (:mod:`psilearn.models.io`), adding the kind, the Target and the
  training metadata; :func:`psilearn.models.load` reads them back through the registry.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from ase import Atoms

from psilearn.config import check_sections, resolve_seed
from psilearn.data.prediction import Prediction
from psilearn.models.checks import check_known_elements, frames_to_predict
from psilearn.models.composition import composition_record
from psilearn.targets import Target


class Model(ABC):
    """Base class of every model kind (see the module docstring for the protocol)."""

    #: registry name written into model files (``"model"`` key)
    kind: ClassVar[str] = ""
    #: YAML section -> options class (:class:`psilearn.config.Options`) of each section this kind reads
    config_options: ClassVar[dict[str, type]] = {}
    #: YAML sections this kind reads (``psilearn fit --config``; set from ``config_options``); any
    #: other section is an error
    config_sections: ClassVar[tuple[str, ...]] = ()
    #: True for kinds trained iteratively that accept run options (device, checkpoints, resume)
    iterative: ClassVar[bool] = False

    target: Target
    species: list[int]
    metadata: dict

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.config_sections = tuple(cls.config_options)

    # ---- construction ----------------------------------------------------------------------------
    @classmethod
    def build(cls, target: Target, config: dict | None = None, seed: int | None = None, progress: bool = False) -> "Model":
        """An unfitted model from ``config`` ({section: {option: value}}) and a random seed
        (None: the options' ``seed``, else 0; see :meth:`validate_config`)."""
        options, seed = cls.validate_config(config, seed=seed)
        return cls.from_options(target, options, seed, progress)

    @classmethod
    @abstractmethod
    def from_options(cls, target: Target, options: dict, seed: int, progress: bool) -> "Model":
        """An unfitted model from validated options ({section: options object}) and the seed."""

    @classmethod
    def validate_config(cls, config: dict | None, source=None, seed: int | None = None) -> tuple[dict, int]:
        """({section: options object} for every section this kind reads, the run's seed).

        ConfigError naming ``source`` (the options file, if any), the section and the key for a
        section this kind does not read, unknown options, wrong types and values out of range.
        The seed follows :func:`psilearn.config.resolve_seed`: ``seed`` when given, else a ``seed``
        option stated in ``config`` (the kernel kinds' ``model.seed``), else 0; it is written into
        every options object that has a ``seed`` field."""
        config = config or {}
        check_sections(config, cls.config_sections, cls.kind, source)
        options = {s: c.from_dict(config.get(s), section=s, source=source) for s, c in cls.config_options.items()}
        stated = [o.seed for s, o in options.items() if "seed" in (config.get(s) or {})]
        seed = resolve_seed(seed, stated[0] if stated else None)
        for o in options.values():
            if hasattr(o, "seed"):
                o.seed = seed
        return options, seed

    # ---- learning --------------------------------------------------------------------------------
    @abstractmethod
    def fit(self, data) -> "Model":
        """Fit on a :class:`psilearn.data.Dataset` whose Target equals this model's; returns self."""

    def check_elements(self, frames: list[Atoms]) -> None:
        """DataError naming file, frame and element for elements absent from training (``species``,
        the atomic numbers seen in training); kinds with other rules override it."""
        check_known_elements(frames, self.species)

    @abstractmethod
    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool, **options) -> Prediction:
        """Predictions for a checked, non-empty list of structures (``options``: kind-specific)."""

    def predict(self, frames, *, return_std: bool = True, return_cov: bool = False, **options) -> Prediction:
        """Predict the Target for ``frames`` (one Atoms or a list).

        Returns a :class:`~psilearn.data.prediction.Prediction`: Cartesian values (n, 3**rank) in
        the label's units with standard deviations (zeros with ``return_std=False``); n is the
        number of structures, or of atoms for per-atom targets; ``return_cov`` adds the full
        Cartesian covariance where the kind has one. ``options`` are kind-specific (e.g. precomputed
        ``features`` for the spectrum kind). DataError for an empty batch and for elements unseen
        in training."""
        frames = frames_to_predict(frames)
        self.check_elements(frames)
        return self._predict(frames, return_std=return_std, return_cov=return_cov, **options)

    def posterior_factors(self, frames: list[Atoms]) -> list[tuple[np.ndarray, float]] | None:
        """The joint posterior across samples, where the kind has one: per irrep occurrence (R, sigma2),
        R (n_samples, 2l+1, rank) with R_a R_b^T the posterior covariance of the noise-free irreps of
        samples a and b (label units squared) and sigma2 the noise variance of one observed component.
        None (the default) for kinds without one; active learning then uses a surrogate kernel."""
        return None

    @classmethod
    def has_joint_posterior(cls, options: dict | None = None) -> bool:
        """Whether models of this kind fitted with the options ``options`` (the ``--config`` sections) give
        :meth:`posterior_factors`: the default, whether the kind implements it."""
        return cls.posterior_factors is not Model.posterior_factors

    def posterior_blocks(self) -> list[int]:
        """The Target block (index into ``target.blocks``) of each factor of :meth:`posterior_factors`,
        in its order; the default: the blocks' own order."""
        return list(range(len(self.target.blocks)))

    @staticmethod
    def training_record(data, t0: float, **extra) -> dict:
        """The training metadata every kind stores (model files, ``psilearn fit``): number of
        structures and samples, the data's SHA-256 and name, the fit time since ``t0``
        (``time.perf_counter()``), the per-element composition baseline of the invariant part
        (:func:`~psilearn.models.composition.composition_record`, the reference that ``evaluate``
        reports errors against), plus the kind's own ``extra`` entries (which may override)."""
        return {
            "n_train_structures": len(data),
            "n_train_samples": int(len(data.values)),
            "training_data_sha256": data.fingerprint(),
            "training_data": data.name,
            "fit_seconds": round(time.perf_counter() - t0, 3),
            "composition_baseline": composition_record(data.target, data),
            **extra,
        }

    # ---- state -----------------------------------------------------------------------------------
    @abstractmethod
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(metadata, arrays) of a fitted model; RuntimeError if it is not fitted. The metadata
        must not hold the keys ``model``, ``target`` or ``training`` (:meth:`save` adds them)."""

    @classmethod
    @abstractmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "Model":
        """The fitted model from what :meth:`to_state` wrote (``meta`` includes ``target`` and
        ``training``). KeyError/ValueError on inconsistent contents (load turns them into a
        ModelFileError naming the file)."""

    def save(self, path, overwrite: bool = False) -> None:
        """Write the model directory atomically (JSON metadata + checksummed npz, no pickle). An
        existing model at ``path`` is replaced only with ``overwrite=True`` (ModelFileError otherwise)."""
        from psilearn.models.io import write_model

        meta, arrays = self.to_state()
        clash = {"model", "target", "training"} & set(meta)
        if clash:
            raise RuntimeError(f"{type(self).__name__}.to_state() must not set {sorted(clash)}")
        write_model(path, {"model": self.kind, "target": self.target.to_dict(), **meta, "training": self.metadata}, arrays,
                    overwrite=overwrite)

    def set_run_options(self, device=None, checkpoint_dir=None, resume: bool = False) -> None:
        """Training-run options of iterative kinds; other kinds refuse them."""
        if device or checkpoint_dir or resume:
            raise ValueError(f"device/checkpoint/resume options apply to iterative models (nn, qeq-nn), not {self.kind}")
