"""The `nn-multifidelity` model kind: one equivariant network for several levels of theory.

Structures carry the observable under one key and their level in ``atoms.info[fidelity_key]``, as for
the recursive `multifidelity` kind (:mod:`psilearn.models.fidelity.multifidelity`). Instead of one model
per level, one network is trained jointly on the structures of every level: a shared message-passing
body, a learned level embedding in the invariant node channels and one equivariant readout per level
(:mod:`psilearn.models._torch.fidelity_heads`). Each structure's loss is taken on its own level's
output only, scaled by that level's label spread (so each level is weighted by the inverse of its own
variance); ``nn_fidelity.level_weights: balanced`` also weights the levels so each counts equally.
The cheap, plentiful level trains the body; the few accurate structures mainly train their own
readout. ``predict`` returns the target level, ``predict(frames, fidelity=NAME)`` any level.

Per level: its own normalisation (per-element shift of the invariant part, output and loss scales),
its own validation structures (the split is stratified by level, so a level of a few structures keeps
one or more for validation) and its own held-out metrics; the held-out metrics of the model are those
of the target level. The uncertainty (LLPR or ensemble) is the nn kind's with one calibration factor
per level and block (irreducible channel): the factor fitted on that level's validation structures,
shrunk in log space towards the factor fitted on all levels together, by an empirical-Bayes weight that
grows with the level's number of validation structures (docs/fidelity.md). Early stopping watches all
levels' validation loss or, with ``nn_fidelity.early_stopping: target``, the target level's. With one
level the model is the plain `nn` fit (same split, normalisation, parameters, training and calibration).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase import Atoms

from psilearn.data import Dataset
from psilearn.data.errors import DataError
from psilearn.data.prediction import Prediction
from psilearn.data.splits import random_split
from psilearn.errors import ConfigError
from psilearn.models._torch import uncertainty as unc
from psilearn.models._torch.fidelity_heads import FidelityHeadsConfig, FidelityHeadsNetwork, FidelityLoss, level_weights
from psilearn.models._torch.weights import build_in_dtype
from psilearn.models.checks import check_fidelity_names, fidelity_levels, fidelity_of, level_index, order_levels
from psilearn.models.nn.model import NNModel

log = logging.getLogger("psilearn")

# Per-level calibration: a level's own factor is a mean of d squared z-scores (d = validation structures
# x (2l + 1) per block), whose log has sampling variance v >= trigamma(d/2) ~ 2/d (Gaussian errors; 0.49 for
# 5 scalar structures: a factor of 2 either way is within one std), more with correlated components or heavy
# tails (v is the larger of that and the spread the level's own z-scores show). Levels can also truly differ
# (tenfold in variance in tests/nn/test_fidelity_calibration.py). Both are weighed by empirical Bayes: the
# spread tau^2 of the true log factors between levels is estimated from how much more the own factors scatter
# than their sampling noise explains (DerSimonian-Laird), and each level's log factor is moved towards the
# pooled one with weight tau^2 / (tau^2 + v) on its own data, i.e. the pooled factor acts as a prior worth
# about 2/tau^2 degrees of freedom (psilearn.models._torch.uncertainty.shrink_factors). No magic count: levels
# that agree within their noise get the pooled factor, levels that clearly differ keep nearly their own.


def nn_heads_kind(fidelity_key: str, levels: list[str] | None, target_level: str) -> type["NNHeadsModel"]:
    """The `nn-multifidelity` kind for structures whose level is ``info[fidelity_key]``: one network, a
    readout per level, predicting ``target_level`` by default. ``levels`` (None: the levels present,
    by decreasing number of structures, the target last) only fixes their order and which are allowed."""
    check_fidelity_names(fidelity_key, target_level)
    levels = fidelity_levels(levels, target_level)
    return type("NNHeadsModel", (NNHeadsModel,), {"__module__": __name__, "fidelity_key_default": fidelity_key,
                                                  "levels_default": levels, "target_level_default": target_level})


@dataclass
class NNHeadsModel(NNModel):
    """Multi-fidelity equivariant network (shared body, level embedding, one readout per level)."""

    fidelity_key: str = ""
    levels: list[str] = field(default_factory=list)  # one readout each, in this order
    target_level: str = ""
    fidelity_config: FidelityHeadsConfig = field(default_factory=FidelityHeadsConfig)
    _level_counts: np.ndarray | None = field(default=None, repr=False, compare=False)  # training samples per level
    _predict_as: int | None = field(default=None, repr=False, compare=False)  # level index of the graphs being built
    _val_idx: np.ndarray | None = field(default=None, repr=False, compare=False)
    _val_levels: np.ndarray | None = field(default=None, repr=False, compare=False)  # level index of each validation structure
    # calibration factor of each level and block (n_levels, n_blocks); None: the pooled one (files before it)
    level_alpha2: np.ndarray | None = field(default=None, repr=False, compare=False)
    level_calibration: list[str] = field(default_factory=list)  # per level: 'shrunk' ('level' in older files) or 'pooled'
    # weight of each level's own validation data in its log factor (n_levels, n_blocks); None in files before the shrinkage
    level_weight: np.ndarray | None = field(default=None, repr=False, compare=False)
    _level_own: tuple | None = field(default=None, repr=False, compare=False)  # (own factors, dof, var of log own, tau^2) of the last fit

    kind: ClassVar[str] = "nn-multifidelity"
    fidelity_key_default: ClassVar[str] = "level"
    levels_default: ClassVar[list[str] | None] = None
    target_level_default: ClassVar[str] = ""
    config_options: ClassVar[dict[str, type]] = {**NNModel.config_options, "nn_fidelity": FidelityHeadsConfig}

    def __post_init__(self) -> None:
        self.fidelity_key = self.fidelity_key or self.fidelity_key_default
        self.target_level = self.target_level or self.target_level_default
        self.levels = list(self.levels or self.levels_default or [])

    @classmethod
    def from_options(cls, target, options: dict, seed: int, progress: bool) -> "NNHeadsModel":
        if not cls.target_level_default:
            raise ConfigError("the nn-multifidelity kind needs a fidelity key and a target level: psilearn fit --model nn-multifidelity "
                              "--fidelity-key KEY --target-fidelity NAME, or psilearn.models.nn.multifidelity.nn_heads_kind(KEY, levels, NAME)")
        model = super().from_options(target, options, seed, progress)
        model.fidelity_config = options["nn_fidelity"]
        return model

    # ---- levels ----------------------------------------------------------------------------------
    def _level_index(self, frames: list[Atoms]) -> np.ndarray:
        """Index (into ``levels``) of every structure's level; DataError for a missing or unknown one."""
        names = fidelity_of(frames, self.fidelity_key)
        unknown = sorted(set(names) - set(self.levels))
        if unknown:
            raise DataError(f"{self.fidelity_key}={', '.join(unknown)}: not a level of this model ({', '.join(self.levels)})")
        pos = {lv: k for k, lv in enumerate(self.levels)}
        return np.array([pos[n] for n in names], dtype=np.int64)

    # ---- hooks of the nn fit -----------------------------------------------------------------------
    def _graphs(self, frames: list[Atoms], pairs=None, progress: bool = False) -> list:
        graphs = super()._graphs(frames, pairs, progress)
        levels = np.full(len(frames), self._predict_as) if self._predict_as is not None else self._level_index(frames)
        for g, k in zip(graphs, levels):
            g.fidelity = int(k)
        return graphs

    def _new_net(self) -> FidelityHeadsNetwork:
        return build_in_dtype(lambda: FidelityHeadsNetwork(self.net_config, len(self.species), self.out_irreps, self.avg_num_neighbors,
                                                           len(self.levels)), self.dtype, self.device)

    def _split(self, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """Stratified by level: each level's own random ``val_fraction`` (one level: the nn split)."""
        lv = self._level_index(data.frames)
        train, val = [], []
        for k in range(len(self.levels)):
            rows = np.flatnonzero(lv == k)
            tr, va = random_split(len(rows), self.train_config.val_fraction, self.seed + k) if len(rows) > 1 else (np.arange(len(rows)), [])
            train.append(rows[tr])
            val.append(rows[np.asarray(va, dtype=np.int64)])
        self._val_idx = np.sort(np.concatenate(val))
        self._val_levels = lv[self._val_idx]
        return np.sort(np.concatenate(train)), self._val_idx

    def _normalisation(self, data: Dataset, rows_irreps: np.ndarray, train_idx: np.ndarray):
        """Each level's own shift, output and loss scale, stacked: (n_levels, ...) each."""
        lv = self._level_index([data.frames[i] for i in train_idx])
        counts = np.ones(len(train_idx), int) if self.target.per == "structure" else np.array([len(data.frames[i]) for i in train_idx])
        row_level = np.repeat(lv, counts)
        self._level_counts = np.bincount(row_level, minlength=len(self.levels))
        parts = [super(NNHeadsModel, self)._normalisation(data, rows_irreps[row_level == k], train_idx[lv == k])
                 for k in range(len(self.levels))]
        return tuple(np.stack(p) for p in zip(*parts))

    def _loss(self, loss_scale: np.ndarray, col_weight: np.ndarray) -> FidelityLoss:
        watch = None
        if self.fidelity_config.early_stopping == "target" and len(self.levels) > 1:
            watch = self.levels.index(self.target_level)
            if not np.any(self._val_levels == watch):
                log.warning("nn_fidelity.early_stopping: target: level %s has no validation structure; early stopping watches all levels",
                            self.target_level)
                watch = None
        return FidelityLoss(self.target.per, self.target.pool, loss_scale, col_weight,
                            level_weights(self.fidelity_config.level_weights, self._level_counts), watch=watch)

    # ---- uncertainty per level ---------------------------------------------------------------------
    def _pooled_alpha2(self) -> np.ndarray | None:
        return self.llpr.alpha2 if self.llpr is not None else self.ens_alpha2

    def _calibrate(self, g_tr, g_va, y_va: np.ndarray, m_tr, m_va):
        """The nn calibration (one factor per block over all validation samples), then one factor per
        level and block: the level's own (from its validation samples) shrunk towards the pooled one
        (:func:`~psilearn.models._torch.uncertainty.shrink_factors`). Returns the validation predictions
        and their variance, each level's own."""
        self.level_alpha2, self.level_weight, self.level_calibration, self._level_own = None, None, [], None
        pred_va, var_va = super()._calibrate(g_tr, g_va, y_va, m_tr, m_va)
        pooled = self._pooled_alpha2()
        if var_va is None or pooled is None:
            return pred_va, var_va
        lv_struct = np.array([g.fidelity for g in g_va], dtype=np.int64)
        lv = lv_struct if self.target.per == "structure" else np.repeat(lv_struct, [g.n_atoms for g in g_va])
        struct = np.arange(len(g_va)) if self.target.per == "structure" else np.repeat(np.arange(len(g_va)), [g.n_atoms for g in g_va])
        raw = var_va / pooled  # the uncalibrated variance (the nn calibration only multiplies by the pooled factor)
        ratio = unc.block_mean_sq(pred_va - y_va, self.blocks) / np.maximum(raw, 1e-300)
        n_levels, pooled = len(self.levels), np.asarray(pooled, float)
        own = np.array([ratio[lv == k].mean(0) if np.any(lv == k) else np.full(len(pooled), np.nan) for k in range(n_levels)])
        # degrees of freedom of a level's own factor: its validation structures x (2l + 1) components per block.
        # Structures, not atoms, for per-atom targets: the errors of the atoms of one structure are correlated.
        dof = np.outer(np.bincount(lv_struct, minlength=n_levels), [b.dim for b in self.blocks]).astype(float)
        # sampling variance of the log own factor: that of Gaussian errors, or the one the level's own z-scores show
        # (spread of its per-structure squared z-scores), whichever is larger. On the water dimers the latter was up to
        # 17x larger: the 2l+1 components of a structure err together and the errors have heavy tails (benchmarks/results/fidelity_nn_heads.md).
        var_log = np.array([np.maximum(unc.log_factor_variance(dof[k]), unc.log_mean_variance(ratio[lv == k], struct[lv == k]))
                            if np.any(lv == k) else np.full(len(pooled), np.inf) for k in range(n_levels)])
        if n_levels > 1:
            a2, w, tau2 = unc.shrink_factors(own, pooled, dof, var_log=var_log)
        else:  # one level: its own factor is the pooled one
            a2, w, tau2 = pooled[None, :].copy(), np.ones((1, len(pooled))), None
        self.level_alpha2, self.level_weight, self._level_own = a2, w, (own, dof, var_log, tau2)
        self.level_calibration = ["shrunk" if n_levels > 1 and np.any(lv_struct == k) else "pooled" for k in range(n_levels)]
        if n_levels > 1:
            log.info("nn-multifidelity: calibration factor per level shrunk towards the pooled one (between-level spread of the log "
                     "factor %.3g); weight of each level's own validation data: %s", tau2,
                     ", ".join(f"{lv_} {np.round(w[k], 2).tolist()}" for k, lv_ in enumerate(self.levels)))
        return pred_va, raw * a2[lv]

    def _variance(self, graphs, members: np.ndarray, labelled: np.ndarray | None = None) -> np.ndarray | None:
        """The nn variance with the factor of the level predicted (its shrunk one, or the pooled one)."""
        var = super()._variance(graphs, members, labelled)
        if var is None or self.level_alpha2 is None or self._predict_as is None:
            return var
        return var * (self.level_alpha2[self._predict_as] / self._pooled_alpha2())

    # ---- fitting and prediction --------------------------------------------------------------------
    def fit(self, data: Dataset) -> "NNHeadsModel":
        """Train one network on the structures of every level (labels under the Target's key)."""
        if self.target.per == "pair" or data.labelled is not None:
            raise ConfigError("nn-multifidelity: per-pair targets and partial per-atom labels are not supported (use --model nn "
                              "with --fidelity-key, the recursive multifidelity kind)")
        # every given level present is kept, also above the target: it trains the shared body
        self.levels = order_levels(fidelity_of(data.frames, self.fidelity_key), self.fidelity_key, self.target_level,
                                   list(self.levels_default or []), upto_target=False)
        lv = self._level_index(data.frames)
        if any(int(np.sum(lv == k)) < 1 for k in range(len(self.levels))):
            raise DataError("every level needs a training structure")
        super().fit(data)
        self.metadata["heldout_metrics_all_levels"] = self.metadata["heldout_metrics"]
        per_level = [self._level_record(data, lv, k) for k in range(len(self.levels))]
        top = per_level[self.levels.index(self.target_level)]
        if top["heldout_metrics"] is not None:
            self.metadata["heldout_metrics"] = top["heldout_metrics"]
        self.metadata["multifidelity"] = {"fidelity_key": self.fidelity_key, "levels": self.levels, "target_level": self.target_level,
                                          "mode": "heads", "per_level": per_level}
        return self

    def _level_record(self, data: Dataset, lv: np.ndarray, k: int) -> dict:
        """Level k's structure count and the held-out metrics of its own readout on its validation structures."""
        from psilearn.metrics.regression import calibration, regression_metrics

        val = [i for i in self._val_idx if lv[i] == k]
        rec = {"level": self.levels[k], "n_structures": int(np.sum(lv == k)), "n_validation_structures": len(val), "heldout_metrics": None}
        if self.level_alpha2 is not None:
            rec["calibration"] = {"factor": self.level_calibration[k], "alpha2": self.level_alpha2[k].tolist(),
                                  **self._shrinkage_record(k)}
        if val:
            sub = data.subset(np.asarray(val))
            pred = self.predict(sub.frames, return_std=self.level_alpha2 is not None, fidelity=self.levels[k])
            rec["heldout_metrics"] = {"method": f"validation split of level {self.levels[k]} ({len(val)} structures, used for early stopping)",
                                      **regression_metrics(self.target, self.target.to_irreps(sub.values), pred.irreps)}
            if self.level_alpha2 is not None:  # in-sample for a level with its own factor
                rec["calibration"].update(calibration(sub.values, pred.values, pred.std))
        return rec

    def _shrinkage_record(self, k: int) -> dict:
        """Level k's own factor, its degrees of freedom, the pooled factor and the weight its own data got (per block)."""
        if self._level_own is None or self.level_weight is None:
            return {}
        own, dof, var_log, tau2 = self._level_own
        finite = lambda x: [float(v) if np.isfinite(v) else None for v in x]  # noqa: E731
        return {"alpha2_own": finite(own[k]), "alpha2_pooled": np.ravel(self._pooled_alpha2()).tolist(), "dof": dof[k].tolist(),
                "var_log_own": finite(var_log[k]), "weight_own": self.level_weight[k].tolist(), "between_level_var_log": tau2}

    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool, fidelity: str | None = None) -> Prediction:
        if not self.nets:
            raise RuntimeError("model is not fitted")
        self._predict_as = level_index(fidelity, self.levels, self.target_level)
        try:
            return super()._predict(frames, return_std, return_cov)
        finally:
            self._predict_as = None

    def posterior_factors(self, frames: list[Atoms], fidelity: str | None = None) -> list[tuple[np.ndarray, float]] | None:
        """The nn kind's LLPR joint posterior (:mod:`psilearn.models.nn.posterior`) of level ``fidelity`` (None: the
        target level): that level's readout features and calibration factors, those of its own ``predict`` variance."""
        from psilearn.models.nn.posterior import llpr_factors

        self._predict_as = level_index(fidelity, self.levels, self.target_level)
        try:
            return llpr_factors(self, frames, None if self.level_alpha2 is None else self.level_alpha2[self._predict_as])
        finally:
            self._predict_as = None

    # ---- persistence -----------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict]:
        """The nn state plus the fidelity key, the levels (one readout each, in order), the target level and
        each level's calibration factors (``fidelity/alpha2``, (n_levels, n_blocks), the shrunk ones) with their
        source and the weight of each level's own data in them (``fidelity/weight``)."""
        meta, arrays = super().to_state()
        if self.level_alpha2 is not None:
            arrays["fidelity/alpha2"] = np.asarray(self.level_alpha2, float)
            meta["level_calibration"] = list(self.level_calibration)
        if self.level_weight is not None:
            arrays["fidelity/weight"] = np.asarray(self.level_weight, float)
        return {**meta, "fidelity_key": self.fidelity_key, "levels": list(self.levels), "target_level": self.target_level,
                "nn_fidelity": self.fidelity_config.to_dict()}, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> "NNHeadsModel":
        klass = nn_heads_kind(meta["fidelity_key"], list(meta["levels"]), meta["target_level"])
        model = super(NNHeadsModel, klass).from_state(meta, arrays)
        model.fidelity_config = FidelityHeadsConfig.from_dict(meta.get("nn_fidelity"))
        if "fidelity/alpha2" in arrays:  # files written before the per-level calibration: the pooled factor
            model.level_alpha2 = np.asarray(arrays["fidelity/alpha2"], float)
            model.level_calibration = list(meta.get("level_calibration", []))
        if "fidelity/weight" in arrays:  # files before the shrinkage: the level's own factor or the pooled one, no weight
            model.level_weight = np.asarray(arrays["fidelity/weight"], float)
        return model
