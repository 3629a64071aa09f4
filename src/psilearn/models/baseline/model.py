"""The `baseline` model kind: a per-element composition fit, the reference every learned model must beat.

The invariant (0e: l = 0, even) blocks of the Target are fitted by least squares on the composition
(:mod:`psilearn.models.composition`): per structure ``y = sum_Z n_Z c_Z`` (pool ``sum``) or
``y = sum_Z (n_Z / n) c_Z`` (pool ``mean``), per atom ``y = c_Z`` of the atom's element. Every other
irreducible block is predicted as zero: the composition does not change under rotation or
inversion, so the only O(3)-equivariant functions of it are invariants.

Uncertainty: one standard deviation per block from the training fit, the same for every sample
(0e blocks: RMS residual; other blocks: RMS of the training labels, since the prediction is zero),
propagated to Cartesian components through the Target.

It is also the worked example of adding a model kind (docs/architecture.md, "Adding a model kind").
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
from ase import Atoms

from psilearn.config import Checks, Options
from psilearn.data import Dataset
from psilearn.data.prediction import Prediction
from psilearn.data.splits import structure_folds
from psilearn.models.base import Model
from psilearn.models.checks import check_training_data
from psilearn.models.composition import composition_design, element_pair_types, fit_composition
from psilearn.models.pair_rule import PairRule
from psilearn.targets import Target


@dataclass
class BaselineConfig(Options):
    """Options (YAML section ``model:``)."""

    section: ClassVar[str] = "model"

    ridge: float = 1e-8  # relative to the mean diagonal of the Gram matrix (see fit_composition)
    shrink: bool = True  # pull the coefficients towards a common value, strength by leave-one-out (fit_composition)
    cv_folds: int = 5  # k of the k-fold (by structure) held-out metrics
    seed: int = 0  # folds of the held-out metrics

    def check(self, c: Checks) -> None:
        c.require(math.isfinite(self.ridge) and self.ridge >= 0, "ridge", "must be a finite number >= 0")
        c.require(self.cv_folds >= 2, "cv_folds", "must be >= 2")
        c.require(self.seed >= 0, "seed", "must be >= 0")


@dataclass
class BaselineModel(Model):
    """Per-element composition fit of the invariant part of any (non-spectrum) Target.

    >>> model = BaselineModel(Target("alpha", tensor="ij=ji")).fit(dataset)
    >>> model.predict(frames).values  # isotropic: (alpha_iso, 0, 0, 0, alpha_iso, 0, 0, 0, alpha_iso)
    """

    target: Target
    config: BaselineConfig = field(default_factory=BaselineConfig)
    seed: int = 0
    progress: bool = False  # nothing to report; kept for the common interface (psilearn predict sets it)
    # fitted state
    species: list[int] = field(default_factory=list)
    coef: np.ndarray | None = None  # (n_species, n_blocks): c_Z of each 0e block, zero columns elsewhere (pairs: per element pair)
    block_std: np.ndarray | None = None  # (n_blocks,) standard deviation of one component of each block
    pair_rule: PairRule | None = None  # per-pair targets: which pairs are predicted (models/pair_rule.py)
    metadata: dict = field(default_factory=dict)

    kind: ClassVar[str] = "baseline"
    config_options: ClassVar[dict[str, type]] = {"model": BaselineConfig}

    def __post_init__(self) -> None:
        if self.target.is_spectrum:
            raise ValueError(f"the baseline model does not learn spectrum targets ({self.target.key} on a grid); "
                             "use psilearn fit-spectrum (model spectrum), which fits its own per-element baseline")

    @classmethod
    def from_options(cls, target: Target, options: dict, seed: int, progress: bool) -> "BaselineModel":
        """From the ``model`` section (see :class:`BaselineConfig`)."""
        return cls(target, options["model"], seed=seed, progress=progress)

    # ---- the linear model ----------------------------------------------------------------------
    def _fitted(self) -> list[int]:
        """Indices of the invariant (0e) blocks, the only ones a composition can predict."""
        return [i for i, b in enumerate(self.target.blocks) if b.l == 0 and b.p == 1]

    def _design(self, frames: list[Atoms], pairs: list[np.ndarray] | None = None) -> np.ndarray:
        return composition_design(frames, self.species, self.target.per, self.target.pool, pairs)

    @property
    def n_rows(self) -> int:
        """Rows of ``coef``: elements, or element pairs for a per-pair target."""
        return len(element_pair_types(self.species)) if self.target.per == "pair" else len(self.species)

    def _solve(self, design: np.ndarray, irreps: np.ndarray) -> np.ndarray:
        """(n_species, n_blocks) coefficients fitted to the 0e columns of ``irreps``."""
        blocks, fitted = self.target.blocks, self._fitted()
        coef = np.zeros((design.shape[1], len(blocks)))
        if fitted:
            coef[:, fitted] = fit_composition(design, irreps[:, [blocks[i].start for i in fitted]], self.config.ridge, self.config.shrink)
        return coef

    def _apply(self, design: np.ndarray, coef: np.ndarray) -> np.ndarray:
        """Full irreps vectors (n_samples, n_irreps): design @ coef in the 0e columns, zero elsewhere."""
        blocks = self.target.blocks
        out = np.zeros((len(design), max(b.start + b.dim for b in blocks)))
        for i in self._fitted():
            out[:, blocks[i].start] = design @ coef[:, i]
        return out

    # ---- fitting ---------------------------------------------------------------------------------
    def fit(self, data: Dataset) -> "BaselineModel":
        """Fit on a Dataset whose Target equals this model's. Returns self."""
        check_training_data(self.target, data, pairs=True)
        t0 = time.perf_counter()
        self.species = data.species
        if self.target.per == "pair":
            self.pair_rule = PairRule.from_data(data.frames, data.pairs)
        irreps = self.target.to_irreps(data.values)
        design = self._design(data.frames, data.pairs)
        self.coef = self._solve(design, irreps)
        resid = irreps - self._apply(design, self.coef)
        self.block_std = np.array([np.sqrt(np.mean(resid[:, b.cols] ** 2)) for b in self.target.blocks])
        heldout = self._heldout_metrics(data, design, irreps)
        self.metadata = self.training_record(data, t0, heldout_metrics=heldout)
        return self

    def _heldout_metrics(self, data: Dataset, design: np.ndarray, irreps: np.ndarray) -> dict:
        """Regression metrics of k-fold (by structure) predictions; ``design`` rows are the samples."""
        from psilearn.metrics.regression import regression_metrics

        k = min(self.config.cv_folds, len(data))
        folds = structure_folds(len(data), k, self.seed)
        sample_fold = folds[data.sample_structure]
        cv = np.zeros_like(irreps)
        for f in range(k):
            train, held = sample_fold != f, sample_fold == f
            cv[held] = self._apply(design[held], self._solve(design[train], irreps[train]))
        return {"method": f"{k}-fold cross-validation by structure", **regression_metrics(self.target, irreps, cv)}

    # ---- prediction ------------------------------------------------------------------------------
    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool) -> Prediction:
        if self.coef is None:
            raise RuntimeError("model is not fitted")
        t = self.target
        pairs = self.pair_rule.frame_pairs(frames, t) if t.per == "pair" else None
        irreps = self._apply(self._design(frames, pairs), self.coef)
        var = np.zeros_like(irreps)
        if return_std or return_cov:
            for b, s in zip(t.blocks, self.block_std):
                var[:, b.cols] = s**2
        cov = None
        if return_cov:  # independent irreps components: cov = sum_c var_c to_cartesian[c]^T to_cartesian[c]
            from psilearn.targets.cartesian import cartesian_basis

            tc = cartesian_basis(t.tensor).to_cartesian
            cov = np.einsum("nc,ck,cl->nkl", var, tc, tc)
        return Prediction(t.to_cartesian(irreps), t.to_cartesian_std(var), irreps, np.sqrt(var), cov, pairs=pairs)

    # ---- persistence -----------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Metadata: options, seed, species; arrays: ``coef`` (n_species, n_blocks), ``block_std`` (n_blocks,)."""
        if self.coef is None:
            raise RuntimeError("model is not fitted")
        meta = {"config": asdict(self.config), "seed": self.seed, "species": self.species}
        if self.pair_rule is not None:
            meta["pair_rule"] = self.pair_rule.to_dict()
        return meta, {"coef": np.asarray(self.coef, float), "block_std": np.asarray(self.block_std, float)}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "BaselineModel":
        model = cls(Target.from_dict(meta["target"]), BaselineConfig.from_dict(meta["config"]), seed=int(meta["seed"]))
        model.species = [int(z) for z in meta["species"]]
        model.coef, model.block_std = arrays["coef"], arrays["block_std"]
        model.metadata = meta["training"]
        if meta.get("pair_rule"):
            model.pair_rule = PairRule.from_dict(meta["pair_rule"])
        n_blocks = len(model.target.blocks)
        if model.coef.shape != (model.n_rows, n_blocks) or model.block_std.shape != (n_blocks,):
            raise ValueError(f"coefficients {model.coef.shape} / block_std {model.block_std.shape} do not match "
                             f"{model.n_rows} elements (or element pairs) and {n_blocks} target blocks")
        return model


def fit_baseline(target: Target, dataset: Dataset, ridge: float = 1e-8, cv_folds: int = 5, seed: int = 0) -> BaselineModel:
    """The fitted composition baseline of ``target`` on ``dataset``: the reference against which
    other models' errors can be reported (e.g. ``error / baseline error``)."""
    return BaselineModel(target, BaselineConfig(ridge=ridge, cv_folds=cv_folds), seed=seed).fit(dataset)
