"""Kernel model of spectra (DOS, XANES, ...) on invariant SOAP: one sparse GP per output column
(grid point or PCA score) sharing one kernel, with a per-element baseline and a choice of loss
(plain L2, per-structure shift optimisation, or alignment on a stated feature).

>>> target = Target("dos", grid=energies, grid_units="eV")
>>> model = SpectrumModel(target, config=SpectrumConfig(loss="shift", max_shift=0.5)).fit(dataset)
>>> pred = model.predict(frames)      # Prediction: values (n, n_grid), std (n, n_grid)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from psilearn.data import DataError, Dataset
from psilearn.data.errors import frame_location
from psilearn.data.prediction import Prediction
from psilearn.data.spectra import structure_spectra
from psilearn.data.splits import structure_folds
from psilearn.features import SoapConfig
from psilearn.models._kernel.gpr import SparseGP, fixed_regularization
from psilearn.models._kernel.kernels import self_kernel, sparse_kernel, sparse_sparse_kernel
from psilearn.models._kernel.kind import SoapKernelKind
from psilearn.models._kernel.sparse import select_sparse, sparse_sizes
from psilearn.models.base import Model
from psilearn.models.checks import check_training_data, unknown_elements_message
from psilearn.models.spectrum.alignment import align_on_feature, optimise_shifts
from psilearn.models.spectrum.config import SpectrumConfig
from psilearn.models.spectrum.regression import ColumnsFit, cv_regularization, fit_columns, kfold_predict, predictive_scale
from psilearn.models.spectrum.representation import CHANNEL, invariant_features
from psilearn.models.spectrum.state import spectrum_from_state, spectrum_state
from psilearn.models.spectrum.transform import TargetTransform, design_matrix
from psilearn.targets import Target

log = logging.getLogger("psilearn")


@dataclass
class SpectrumModel(SoapKernelKind, Model):
    """Sparse kernel regression of a spectrum Target (``target.grid`` set).

    Per-structure targets pool atomic contributions (``target.pool``); per-atom targets (local
    spectra) are learned atom by atom and :meth:`predict_structures` sums them; absorber-centred
    targets use only the absorber's environments. Values keep the units of the training labels.
    """

    target: Target
    soap: SoapConfig = field(default_factory=SoapConfig)
    config: SpectrumConfig = field(default_factory=SpectrumConfig)
    progress: bool = False
    # fitted state
    species: list[int] = field(default_factory=list)  # descriptor (neighbour) elements
    centre_species: list[int] = field(default_factory=list)  # elements with sparse environments
    baseline_species: list[int] = field(default_factory=list)
    sparse: dict = field(default_factory=dict)  # {(0, 1): {Z: (M_Z, 1, Q)}}
    gp: SparseGP | None = None
    fit_: ColumnsFit | None = None
    transform: TargetTransform | None = None
    train_shifts: np.ndarray | None = None  # (n_train,) grid units, loss 'shift'/'align'
    metadata: dict = field(default_factory=dict)

    kind: ClassVar[str] = "spectrum"
    config_options: ClassVar[dict[str, type]] = {"soap": SoapConfig, "model": SpectrumConfig}

    def __post_init__(self) -> None:
        if not self.target.is_spectrum:
            raise ValueError(f"target {self.target.key!r} has no grid: a spectrum model needs a spectrum target (use `psilearn fit-spectrum`)")
        if self.config.loss == "shift" and self.target.per == "atom":
            raise ValueError("the shift-aware loss is per structure; learn local spectra with loss 'l2' or 'align'")

    # ---- pieces --------------------------------------------------------------------------------
    @property
    def grid(self) -> np.ndarray:
        return np.asarray(self.target.grid)

    @property
    def _per(self) -> str:
        return "atom" if self.target.per == "atom" else "structure"

    def _features(self, frames: list[Atoms]):
        return invariant_features(frames, self.soap, self.species, self.target.absorber, self.config.crop, self.progress)

    def _design(self, frames: list[Atoms]) -> np.ndarray:
        return design_matrix(frames, self.baseline_species, self._per, self.target.pool, self.target.absorber)

    def _max_shift(self) -> float:
        g = self.grid
        return float(self.config.max_shift) if self.config.max_shift else 0.1 * float(g[-1] - g[0])

    def check_elements(self, frames: list[Atoms]) -> None:
        """DataError naming the structure when an element is unknown to the descriptor, or (except
        for absorber-centred models) was never a centre in training."""
        centres = set(self.centre_species) if not self.target.absorber else None
        for i, a in enumerate(frames):
            zs = set(int(z) for z in a.numbers)
            bad = sorted(zs - set(self.species)) or (sorted(zs - centres) if centres is not None else [])
            if self.target.absorber and atomic_numbers[self.target.absorber] not in zs:
                bad_msg = f"no {self.target.absorber} atom (the spectrum belongs to {self.target.absorber})"
            elif bad:
                bad_msg = unknown_elements_message(bad, self.species)
            else:
                continue
            raise DataError(f"{frame_location(a, i)}: {bad_msg}")

    # ---- fitting -------------------------------------------------------------------------------
    def fit(self, data: Dataset, features=None) -> "SpectrumModel":
        """Fit on a Dataset of this model's Target (see psilearn.data.spectra.load_spectrum_dataset).
        ``features``: optional precomputed
        :func:`~psilearn.models.spectrum.representation.invariant_features` of ``data.frames`` (or a
        ``subset_features`` of a larger set), computed with the same SOAP, absorber/crop and
        descriptor elements (the training elements plus ``config.species``)."""
        check_training_data(self.target, data)
        cfg = self.config
        t0 = time.perf_counter()
        frames, y = data.frames, np.asarray(data.values, dtype=np.float64)
        self.species = sorted(set(data.species) | set(int(z) for z in (cfg.species or [])))
        self.baseline_species = data.species
        feats = self._features(frames) if features is None else features
        t_feat = time.perf_counter() - t0
        x0 = feats.blocks[CHANNEL]
        self.centre_species = sorted(z for z, x in x0.items() if len(x))
        sizes = sparse_sizes(cfg.n_sparse, {z: len(x0[z]) for z in self.centre_species})
        chosen = {z: select_sparse(x0[z][:, 0, :], sizes[z], cfg.sparse_method) for z in self.centre_species}
        self.sparse = {CHANNEL: {z: x0[z][chosen[z]] for z in self.centre_species}}
        phi = sparse_kernel(feats, self.sparse, CHANNEL, cfg.zeta, self._per, self.target.pool)
        self.gp, bw = SparseGP.build(phi, sparse_sparse_kernel(self.sparse, CHANNEL, cfg.zeta))
        design = self._design(frames)
        n_s = len(frames)
        k = min(cfg.cv_folds, n_s)
        fold_of_struct = structure_folds(n_s, k, cfg.seed)
        folds = fold_of_struct if self._per == "structure" else fold_of_struct[data.atom_structure]
        fixed_reg = fixed_regularization(cfg.regularization)

        def fit_on(yt: np.ndarray):
            transform, z = TargetTransform.fit(design, yt, cfg.pca)
            reg = cv_regularization(self.gp, bw, z, folds) if cfg.regularization == "cv" else fixed_reg
            fit = fit_columns(self.gp, bw, z, reg)
            cv = transform.inverse(design, kfold_predict(bw, z, folds, fit.reg))
            return transform, fit, cv

        grid = self.grid
        self.train_shifts, iterations = None, 0
        if cfg.loss == "align":
            y_fit, self.train_shifts = align_on_feature(grid, y, cfg.align_feature, cfg.align_level)
        elif cfg.loss == "shift":
            y_fit, self.train_shifts, iterations = optimise_shifts(
                grid, y, lambda yt: fit_on(yt)[2], self._max_shift(), cfg.shift_iterations, log=log.info)
        else:
            y_fit = y
        self.transform, self.fit_, cv = fit_on(y_fit)
        self.metadata = self._training_metadata(data, y, y_fit, cv, k, iterations, t0, t_feat)
        return self

    def _training_metadata(self, data, y, y_fit, cv, k, iterations, t0, t_feat) -> dict:
        from psilearn.spectral.metrics import compare_spectra

        err = cv - y_fit
        spread = float(np.sqrt(np.mean((y_fit - y_fit.mean(0)) ** 2)))
        rmse = float(np.sqrt(np.mean(err**2)))
        spectral = compare_spectra(self.grid, y_fit, cv, max_shift=self._max_shift())["mean"]
        meta = self.training_record(data, t0, **{
            "n_train_samples": int(len(y)),
            "featurize_seconds": round(t_feat, 3),
            "regularization": self.fit_.reg,
            "n_columns": self.transform.n_columns,
            "heldout_metrics": {
                "method": f"{k}-fold cross-validation by structure (hyperparameters fixed at their final values)"
                          + ("; against the aligned training spectra" if self.config.loss != "l2" else ""),
                "n_samples": int(len(y)),
                "cartesian": {"mae": float(np.mean(np.abs(err))), "rmse": rmse,
                              "pct_rmse": 100 * rmse / spread if spread > 0 else float("nan")},
                "channels": {},
                "spectral": spectral,
            },
        })
        if self.train_shifts is not None:
            meta["train_shifts"] = {"rms": float(np.sqrt(np.mean(self.train_shifts**2))), "max_abs": float(np.max(np.abs(self.train_shifts))),
                                    "iterations": iterations, "units": self.target.grid_units or "grid units"}
        return meta

    # ---- prediction ----------------------------------------------------------------------------
    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool, features=None) -> Prediction:
        """Spectra (n, n_grid) for each structure (or each atom, for per-atom targets), with
        predictive standard deviations; ``irreps`` equal ``values`` (every grid point is 0e).
        For loss 'shift'/'align' the spectra are on the training set's common energy reference.
        ``features``: optional precomputed environments of ``frames`` (as in :meth:`fit`)."""
        if self.fit_ is None:
            raise RuntimeError("model is not fitted")
        feats = self._features(frames) if features is None else features
        cfg = self.config
        phi = sparse_kernel(feats, self.sparse, CHANNEL, cfg.zeta, self._per, self.target.pool)
        z = phi @ self.fit_.coef
        design = self._design(frames)
        values = self.transform.inverse(design, z)
        std = np.zeros_like(values)
        if return_std:
            kss = self_kernel(feats, CHANNEL, cfg.zeta, self._per, self.target.pool)[:, 0, 0]
            v = predictive_scale(self.gp, self.fit_, phi, kss)
            std = self.transform.inverse_std(v[:, None] * self.fit_.s2[None, :])
        return Prediction(values, std, values.copy(), std.copy())

    def predict_structures(self, frames: list[Atoms]) -> np.ndarray:
        """Structure spectra (n_structures, n_grid): the prediction itself for per-structure
        targets, the sum over atoms for per-atom (local) spectra."""
        return structure_spectra(self.target, frames, self.predict(frames, return_std=False).values)

    # ---- persistence ---------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict]:
        return spectrum_state(self)

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> "SpectrumModel":
        return spectrum_from_state(cls, meta, arrays)
