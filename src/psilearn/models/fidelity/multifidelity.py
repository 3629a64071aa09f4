"""The `multifidelity` model kind: several levels of theory pooled by recursive co-kriging.

Structures carry the observable under one key and their level in ``atoms.info[fidelity_key]``
(e.g. ``level=gfn2`` or ``level=pbe0``). Levels are ordered from the cheapest to the target one,
f_0 < f_1 < ... < f_L, and each level is the previous one scaled plus a correction
(the autoregressive model of Kennedy & O'Hagan, Biometrika 87, 1 (2000), fitted recursively as in
Le Gratiet & Garnier, IJUQ 4, 365 (2014)):

    y_k(x) = rho_k * m_{k-1}(x) + delta_k(x),

where m_{k-1} is the posterior mean of level k-1 (itself multi-level), ``rho_k`` one scalar per
irreducible block of the Target (so the map commutes with rotations: equivariance is exact for any
rho), and delta_k a model of any inner kind fitted on the level-k structures only, with its own
noise level. The designs need not be nested: where a level-k structure was also computed at level
k-1 (the same geometry), its observed level-(k-1) label stands in for m_{k-1} when fitting (the
nested design of the recursive scheme: using the smoothed mean there would bias rho upwards by the
GP's shrinkage), elsewhere m_{k-1} is predicted. rho_k is the least-squares coefficient of y_k on
those values over level k's samples, block by block (for invariant blocks together with a composition
intercept, which delta_k then learns: rho scales the lower level's variations, not its mean).
The predictive covariance of level k is A_k C_{k-1} A_k^T + C_delta_k (A_k the Cartesian map of
rho_k), i.e. the two levels' uncertainties are taken as independent, as in the recursive scheme.

With one level this is exactly the inner model. Inner models are reached through the registry only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase import Atoms

from psilearn.data import Dataset
from psilearn.data.errors import DataError
from psilearn.data.prediction import Prediction
from psilearn.errors import ConfigError
from psilearn.models.base import Model
from psilearn.models.checks import check_fidelity_names, check_training_data, fidelity_levels, fidelity_of, geometry_key, level_index, order_levels
from psilearn.models.composition import composition_design, composition_record
from psilearn.models.fidelity.calibration import AffineCalibration, scale_through_origin
from psilearn.models.fidelity.delta import REFUSED_INNER
from psilearn.models.fidelity.level_posterior import level_posterior_factors
from psilearn.models.registry import MULTI_FIDELITY_KINDS, model_class
from psilearn.targets import Target

DEFAULT_INNER = "sagpr"


def multifidelity_kind(fidelity_key: str, levels: list[str] | None, target_level: str, inner: str = DEFAULT_INNER,
                       affine: list[str] | None = None) -> type["MultiFidelityModel"]:
    """The multifidelity kind for structures labelled at several levels named by ``info[fidelity_key]``:
    ``levels`` from the cheapest to the most accurate (None: ordered at fit time by decreasing number
    of structures, ``target_level`` last), predicting ``target_level`` by default. ``affine`` names
    levels (sources such as an experiment) that are an affine calibration of the level below plus noise
    (:mod:`psilearn.models.fidelity.calibration`) instead of a learned correction."""
    check_fidelity_names(fidelity_key, target_level)
    if inner in REFUSED_INNER or inner in MULTI_FIDELITY_KINDS:
        raise ConfigError(f"--fidelity-key: model kind {inner!r} cannot be a level of a multi-fidelity model")
    try:
        cls = model_class(inner)
    except ValueError as exc:
        raise ConfigError(f"--fidelity-key: {exc}") from None
    levels = fidelity_levels(levels, target_level)
    return type(f"MultiFidelityModel[{inner}]", (MultiFidelityModel,), {
        "__module__": __name__, "inner_kind": inner, "fidelity_key_default": fidelity_key, "levels_default": levels,
        "target_level_default": target_level, "affine_default": [str(v) for v in affine or []],
        "config_options": dict(cls.config_options), "iterative": cls.iterative})


@dataclass
class MultiFidelityModel(Model):
    """Recursive co-kriging over fidelity levels; ``predict(frames, fidelity=NAME)`` for another level."""

    target: Target
    fidelity_key: str = "level"
    levels: list[str] = field(default_factory=list)  # cheapest first; the target level last among those fitted
    target_level: str = ""
    models: list[Model] = field(default_factory=list)  # one per level: the level-0 model, then the corrections
    rho: list[np.ndarray] = field(default_factory=list)  # per level k >= 1: (n_blocks,) scale of level k-1
    affine: list[str] = field(default_factory=list)  # levels that are affine calibrations (models[k] is None)
    calibrations: dict[int, AffineCalibration] = field(default_factory=dict)  # level index -> calibration
    progress: bool = False
    metadata: dict = field(default_factory=dict)
    _factory: object = field(default=None, repr=False, compare=False)
    _run_options: dict = field(default_factory=dict, repr=False, compare=False)

    kind: ClassVar[str] = "multifidelity"
    inner_kind: ClassVar[str] = DEFAULT_INNER
    fidelity_key_default: ClassVar[str] = "level"
    levels_default: ClassVar[list[str] | None] = None
    target_level_default: ClassVar[str] = ""
    affine_default: ClassVar[list[str]] = []
    config_options: ClassVar[dict[str, type]] = dict(model_class(DEFAULT_INNER).config_options)

    def __post_init__(self) -> None:
        if self.target.is_spectrum or type(self.target) is not Target:
            raise ValueError(f"the multi-fidelity model learns Cartesian-tensor targets, not {self.target.describe()}")

    @classmethod
    def from_options(cls, target: Target, options: dict, seed: int, progress: bool) -> "MultiFidelityModel":
        if not cls.target_level_default:
            raise ConfigError("the multifidelity kind needs a fidelity key and a target level: psilearn fit --fidelity-key KEY "
                              "--target-fidelity NAME, or psilearn.models.fidelity.multifidelity_kind(KEY, levels, NAME)")
        inner = model_class(cls.inner_kind)
        model = cls(target, cls.fidelity_key_default, list(cls.levels_default or []), cls.target_level_default, progress=progress,
                    affine=list(cls.affine_default))
        model._factory = lambda: inner.from_options(target, options, seed, progress)
        return model

    @property
    def species(self) -> list[int]:
        return sorted({z for m in self.models if m is not None for z in m.species})

    def set_run_options(self, device=None, checkpoint_dir=None, resume: bool = False) -> None:
        """Run options of iterative inner kinds, applied to every level (checkpoints in DIR/levelK)."""
        if not self.iterative:
            super().set_run_options(device, checkpoint_dir, resume)
        self._run_options = {"device": device, "checkpoint_dir": checkpoint_dir, "resume": resume}

    def check_elements(self, frames: list[Atoms]) -> None:
        for m in self.models:
            if m is not None:
                m.check_elements(frames)

    # ---- fitting ---------------------------------------------------------------------------------
    def fit(self, data: Dataset) -> "MultiFidelityModel":
        """Fit level by level on ``data`` (structures of every level, labels under the Target's key)."""
        check_training_data(self.target, data)
        if self._factory is None:
            raise RuntimeError("build the model with multifidelity_kind(...).build(target, config)")
        t0 = time.perf_counter()
        names = fidelity_of(data.frames, self.fidelity_key)
        self.levels = order_levels(names, self.fidelity_key, self.target_level, self.levels, upto_target=True)
        sample_struct = np.arange(len(data.frames)) if self.target.per == "structure" else data.atom_structure
        if [a for a in self.affine if a not in self.levels[1:]]:
            raise DataError(f"affine levels {', '.join(self.affine)}: each must be a level with data above the cheapest "
                            f"(levels, cheapest first: {', '.join(self.levels)})")
        self.models, self.rho, self.calibrations, record = [], [], {}, []
        for k, level in enumerate(self.levels):
            rows = np.flatnonzero(names[sample_struct] == level)
            frames = [a for a, n in zip(data.frames, names) if n == level]
            y = data.values[rows]
            rho = np.ones(len(self.target.blocks))
            if level in self.affine:
                cal = AffineCalibration.fit(self.target, self.target.to_irreps(y),
                                            self.target.to_irreps(self._below(k, frames, data, names, sample_struct)))
                self.models.append(None)
                self.rho.append(cal.rho)
                self.calibrations[k] = cal
                record.append({"level": level, "n_structures": len(frames), "n_samples": int(len(rows)),
                               "affine_calibration": cal.record(self.target)})
                continue
            if k:
                below = self._below(k, frames, data, names, sample_struct)
                rho = self._fit_rho(self.target.to_irreps(y), self.target.to_irreps(below), frames)
                y = y - self._scale(rho, below)
            model = self._factory()
            if self._run_options:
                ckpt = self._run_options["checkpoint_dir"]
                model.set_run_options(self._run_options["device"], f"{ckpt}/level{k}" if ckpt else None, self._run_options["resume"])
            model.fit(Dataset(frames, self.target, y, f"{data.name} ({self.fidelity_key}={level}"
                                                        f"{', correction' if k else ''})"))
            self.models.append(model)
            if k:
                self.rho.append(rho)
            record.append({"level": level, "n_structures": len(frames), "n_samples": int(len(rows)),
                           "rho": rho.tolist() if k else None, "heldout_metrics": model.metadata.get("heldout_metrics")})
        k_top = max(k for k, m in enumerate(self.models) if m is not None)
        top, top_level = self.models[k_top].metadata, self.levels[k_top]
        affine_note = ("" if top_level == self.target_level else f"; the target level {self.target_level} is an affine calibration "
                       "above it, not in these errors (multifidelity.per_level: affine_calibration)")
        self.metadata = {**self.training_record(data, t0), "fit_seconds": round(time.perf_counter() - t0, 3),
                         "heldout_metrics": {**top.get("heldout_metrics", {}), "method": (
                             f"{top.get('heldout_metrics', {}).get('method', 'held-out')} of the level-{top_level} "
                             f"correction (absolute errors of that level, given the lower levels' means{affine_note})")},
                         "composition_baseline": composition_record(self.target, data),
                         "multifidelity": {"fidelity_key": self.fidelity_key, "levels": self.levels,
                                           "target_level": self.target_level, "inner_kind": self.inner_kind, "per_level": record}}
        return self

    def _below(self, k: int, frames: list[Atoms], data: Dataset, names: np.ndarray, sample_struct: np.ndarray) -> np.ndarray:
        """Level k-1 on level k's structures (Cartesian, one row per sample): the observed level-(k-1)
        label where the same geometry was computed at that level, the level-(k-1) mean elsewhere."""
        out = self._predict_level(k - 1, frames, False).values.copy()
        lower = self.levels[k - 1]
        seen = {geometry_key(a): i for i, (a, n) in enumerate(zip(data.frames, names)) if n == lower}
        own = np.flatnonzero(names == self.levels[k])
        starts = np.concatenate([[0], np.cumsum([1 if self.target.per == "structure" else len(a) for a in frames])])
        for j, i in enumerate(own):
            twin = seen.get(geometry_key(data.frames[i]))
            if twin is not None:
                out[starts[j]:starts[j + 1]] = data.values[sample_struct == twin]
        return out

    def _fit_rho(self, y_irreps: np.ndarray, m_irreps: np.ndarray, frames: list[Atoms]) -> np.ndarray:
        """Least-squares scale of each irreducible block of the level below: (n_blocks,). Covariant blocks
        have zero mean by symmetry: a scale through the origin. An invariant (0e) block is fitted together
        with a composition intercept (the element counts, or one-hot per atom), which the level's
        correction then learns: a scale through the origin there is the ratio of the levels' means (3.1
        for water-dimer α, GFN2 against the reference) and would multiply the cheap level's fluctuations
        by it, when their ratio is ~1."""
        design = composition_design(frames, sorted({int(z) for a in frames for z in a.numbers}), self.target.per, self.target.pool)
        rho = []
        for blk in self.target.blocks:
            y, m = y_irreps[:, blk.cols], m_irreps[:, blk.cols]
            if not (blk.l == 0 and blk.p == 1) or y.size < design.shape[1] + 3:  # (too few samples for the intercept)
                rho.append(scale_through_origin(y, m))
                continue
            coef, *_ = np.linalg.lstsq(np.column_stack([m.ravel(), np.repeat(design, m.shape[1], axis=0)]), y.ravel(), rcond=None)
            rho.append(float(coef[0]))
        return np.array(rho)

    def _cartesian_map(self, rho: np.ndarray) -> np.ndarray:
        """A (D, D) with A x = to_cartesian(rho * to_irreps(x)) for a Cartesian row x (D = 3**rank)."""
        eye = np.eye(self.target.size)
        irr = self.target.to_irreps(eye)
        scale = np.ones(irr.shape[1])
        for b, blk in enumerate(self.target.blocks):
            scale[blk.cols] = rho[b]
        return self.target.to_cartesian(irr * scale).T

    def _scale(self, rho: np.ndarray, values: np.ndarray) -> np.ndarray:
        return values @ self._cartesian_map(rho).T

    # ---- prediction ------------------------------------------------------------------------------
    def _predict_level(self, k: int, frames: list[Atoms], with_cov: bool) -> Prediction:
        """Mean (and Cartesian covariance) of level ``k`` on ``frames``."""
        if k == 0:
            return self.models[0].predict(frames, return_std=with_cov, return_cov=with_cov)
        below = self._predict_level(k - 1, frames, with_cov)
        a = self._cartesian_map(self.rho[k - 1])
        values = below.values @ a.T
        cov = np.einsum("ij,njk,lk->nil", a, below.cov, a) if with_cov else None
        if k in self.calibrations:
            cal = self.calibrations[k]
            values = values + cal.offset_cartesian(self.target)
            cov = cov + cal.noise_covariance(self.target) if with_cov else None
        else:
            own = self.models[k].predict(frames, return_std=with_cov, return_cov=with_cov)
            values = values + own.values
            cov = cov + own.cov if with_cov else None
        return self._assemble(values, cov)

    def _assemble(self, values: np.ndarray, cov: np.ndarray | None) -> Prediction:
        irreps = self.target.to_irreps(values)
        if cov is None:
            return Prediction(values, np.zeros_like(values), irreps, np.zeros_like(irreps), None)
        t = self.target.to_irreps(np.eye(self.target.size))  # (D, n_irreps): irreps = x @ t
        cov_irr = np.einsum("ia,nij,jb->nab", t, cov, t)
        std = np.sqrt(np.clip(np.einsum("nii->ni", cov), 0, None))
        return Prediction(values, std, irreps, np.sqrt(np.clip(np.einsum("naa->na", cov_irr), 0, None)), cov)

    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool, fidelity: str | None = None, **options) -> Prediction:
        if not self.models:
            raise RuntimeError("model is not fitted")
        k = level_index(fidelity, self.levels, self.target_level)
        for m in self.models:
            if m is not None:
                m.progress = self.progress
        pred = self._predict_level(k, frames, return_std or return_cov)
        if not return_cov:
            pred.cov = None
        return pred

    def variance_terms(self, frames: list[Atoms]) -> np.ndarray:
        """(n_levels, n_samples, n_irreps): each level's own term of the target level's predictive
        variance, in the orthonormal irreps basis. Level k contributes P_k^2 var(delta_k), with
        P_k = rho_{k+1} ... rho_L per irreducible block (the product over the levels above it, 1 for the
        target level); the terms sum to the target level's ``irreps_std**2`` (the recursive scheme takes
        the levels as independent). Affine levels add their noise variance to their own term."""
        if not self.models:
            raise RuntimeError("model is not fitted")
        top = self.levels.index(self.target_level)
        t = self.target.to_irreps(np.eye(self.target.size))
        terms, scale = [], np.ones(t.shape[1])
        for k in range(top, -1, -1):
            if k in self.calibrations:
                n = len(frames) if self.target.per == "structure" else sum(len(a) for a in frames)
                var = np.tile(np.diag(t.T @ self.calibrations[k].noise_covariance(self.target) @ t), (n, 1))
            else:
                var = self.models[k].predict(frames, return_std=True).irreps_std ** 2
            terms.append(scale**2 * var)
            if k:
                for b, blk in enumerate(self.target.blocks):
                    scale[blk.cols] *= self.rho[k - 1][b]
        return np.stack(terms[::-1])

    level_posterior_factors = level_posterior_factors  # per level, scaled into the target level (active learning)

    # ---- persistence -----------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Metadata: levels, rho and every level model's metadata (``levels_state``); arrays prefixed ``levelK/``."""
        if not self.models:
            raise RuntimeError("model is not fitted")
        metas, arrays = [], {}
        for k, m in enumerate(self.models):
            if m is None:
                cal = self.calibrations[k]
                metas.append({"affine": True})
                arrays[f"offset{k}"], arrays[f"noise{k}"] = cal.offset, cal.noise
                continue
            meta, arr = m.to_state()
            metas.append({**meta, "training": m.metadata})
            arrays.update({f"level{k}/{name}": v for name, v in arr.items()})
        for k, r in enumerate(self.rho):
            arrays[f"rho{k + 1}"] = np.asarray(r, dtype=np.float64)
        return ({"fidelity_key": self.fidelity_key, "levels": self.levels, "target_level": self.target_level,
                 "inner_kind": self.inner_kind, "affine": self.affine, "levels_state": metas}, arrays)

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "MultiFidelityModel":
        inner = meta["inner_kind"]
        affine = [str(v) for v in meta.get("affine", [])]
        klass = multifidelity_kind(meta["fidelity_key"], meta["levels"], meta["target_level"], inner, affine)
        outer = {k: v for k, v in meta.items() if k not in ("levels_state", "inner_kind", "levels", "target_level",
                                                            "fidelity_key", "training", "affine")}
        models, calibrations = [], {}
        for k, m in enumerate(meta["levels_state"]):
            if m.get("affine"):
                calibrations[k] = AffineCalibration(np.asarray(arrays[f"rho{k}"]), np.asarray(arrays[f"offset{k}"]),
                                                    np.asarray(arrays[f"noise{k}"]))
                models.append(None)
                continue
            prefix = f"level{k}/"
            models.append(model_class(inner).from_state({**outer, **m, "model": inner},
                                                        {n[len(prefix):]: v for n, v in arrays.items() if n.startswith(prefix)}))
        rho = [np.asarray(arrays[f"rho{k}"]) for k in range(1, len(models))]
        known = {f"rho{k}" for k in range(1, len(models))} | {f"{p}{k}" for k in calibrations for p in ("offset", "noise")}
        if any(not (n in known or any(n.startswith(f"level{k}/") for k in range(len(models)))) for n in arrays):
            raise ValueError("unexpected arrays in a multifidelity model")
        model = klass(Target.from_dict(meta["target"]), meta["fidelity_key"], list(meta["levels"]), meta["target_level"], models, rho,
                      affine=affine, calibrations=calibrations)
        model.metadata = meta["training"]
        return model
