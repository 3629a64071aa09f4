"""Sparse symmetry-adapted Gaussian process regression (SA-GPR) on lambda-SOAP kernels.

One sparse GP per irreducible channel (l, parity) of the Target, sharing sparse environments; the
l=0 even channel gets a per-element baseline (composition fit for structure targets, element means
for atom targets). Predictions are assembled back into Cartesian tensors with exact symmetry.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
from ase import Atoms

from psilearn.data import Dataset
from psilearn.data.memory import MemoryBudgetError, check_allocation, gb
from psilearn.data.prediction import Prediction
from psilearn.data.splits import structure_folds
from psilearn.errors import ConfigError
from psilearn.features import LambdaSoap, SoapConfig
from psilearn.features.compress import apply_projections, fit_projections
from psilearn.features.lsoap import FEATURE_HINT, sigma_for
from psilearn.features.magnetic import lambda_soap, read_moments
from psilearn.metrics.regression import regression_metrics
from psilearn.models._kernel.gpr import ColumnFit, SparseGP, fixed_regularization
from psilearn.models._kernel.kernels import contracted_mean, contracted_weights, self_kernel, sparse_kernel, sparse_sparse_kernel
from psilearn.models._kernel.kind import SoapKernelKind
from psilearn.models._kernel.memory import KERNEL_HINT, PREDICT_HINT, channel_fit_bytes, channel_predict_bytes, projection_bytes
from psilearn.models._kernel.sparse import AUTO_RULE, check_elements_known, select_sparse_by_state, shrink_sizes, sparse_sizes
from psilearn.models.base import Model
from psilearn.models.checks import check_training_data
from psilearn.models.composition import composition_design, fit_composition
from psilearn.models.sagpr.config import SAGPRConfig
from psilearn.models.sagpr.covariance import needs_rebuild, rebuild_covariance_basis, training_environments
from psilearn.models.sagpr.posterior import posterior_blocks, posterior_factors
from psilearn.models.sagpr.state import sagpr_from_state, sagpr_state
from psilearn.targets import Target

log = logging.getLogger("psilearn")


@dataclass
class ChannelModel:
    """A fitted kernel channel: sparse GP basis plus one ColumnFit per irrep occurrence."""

    channel: tuple[int, int]  # (l, sigma)
    gp: SparseGP
    columns: list[tuple[int, ColumnFit]]  # (index into target.blocks, fit)


@dataclass
class SAGPR(SoapKernelKind, Model):
    """Sparse SA-GPR estimator for any Target.

    >>> model = SAGPR(Target("alpha", tensor="ij=ji")).fit(dataset)
    >>> pred = model.predict(frames)  # Prediction with Cartesian values and std
    """

    target: Target
    soap: SoapConfig = field(default_factory=SoapConfig)
    config: SAGPRConfig = field(default_factory=SAGPRConfig)
    progress: bool = False
    # fitted state
    species: list[int] = field(default_factory=list)
    sparse: dict = field(default_factory=dict)  # (l, sigma) -> {Z: (M_Z, 2l+1, Q)}
    channels: list[ChannelModel] = field(default_factory=list)
    # Z -> one value per invariant (l=0 even) block, in block order (a rank-4 elasticity tensor has two)
    baseline: dict[int, list[float]] = field(default_factory=dict)
    scales: np.ndarray | None = None  # (n_blocks,) normalisation of each irrep occurrence
    projections: dict = field(default_factory=dict)  # (l, sigma) -> {Z: (Q, K)} feature compression
    sparse_coefficients: dict = field(default_factory=dict)  # Z -> (M_Z, C) expansion coefficients of the sparse points
    # covariance_storage 'training': the training environments the covariance basis is rebuilt from
    training_envs: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    _contracted: dict = field(default_factory=dict, repr=False)  # cache for the mean-only fast path
    _sizes: dict = field(default_factory=dict, repr=False)  # Z -> number of sparse environments of this fit
    _rows: np.ndarray | None = field(default=None, repr=False)  # labelled atoms of this fit (label mask), or None

    kind: ClassVar[str] = "sagpr"
    config_options: ClassVar[dict[str, type]] = {"soap": SoapConfig, "model": SAGPRConfig}

    # ---- channels --------------------------------------------------------------------------------
    def _channel_of(self, b) -> tuple[int, int]:
        return (b.l, sigma_for(b.l, b.p))

    def _channel_list(self) -> list[tuple[int, int]]:
        return sorted({self._channel_of(b) for b in self.target.blocks})

    def _baseline_design(self, frames: list[Atoms]) -> np.ndarray:
        """(n_samples, n_species) composition design for the l=0 baseline."""
        return composition_design(frames, self.species, self.target.per, self.target.pool)

    def _lsoap(self) -> LambdaSoap:
        """The lambda-SOAP calculator: with collinear moments as inputs when ``model.magnetic_moments``
        is set (psilearn.features.magnetic)."""
        return lambda_soap(self.soap, self.species, self.config.magnetic_moments)

    def _has_baseline(self, b) -> bool:
        return b.l == 0 and b.p == 1

    # ---- fitting ---------------------------------------------------------------------------------
    def fit(self, data: Dataset) -> "SAGPR":
        """Fit on a Dataset whose Target equals this model's. Returns self. Per-atom labels on only
        some atoms (a Dataset with ``labelled``): every atom is described and can be a sparse point,
        only the labelled atoms are fitted."""
        check_training_data(self.target, data, partial_labels=True)
        t0 = time.perf_counter()
        self.species = data.species
        frames = data.frames
        self._resolve_global_state(frames)
        check_elements_known(self.config.n_sparse, self.species)
        self._rows = data.labelled
        numbers = np.concatenate([a.numbers for a in frames])
        reg_w = self._regularization_weights(numbers if self._rows is None else numbers[self._rows])
        from psilearn.models.sagpr.stream import fit_streamed, stream_plan

        plan = stream_plan(self, frames, numbers)
        if plan:  # batches of structures, normal equations accumulated (docs/scaling.md)
            return fit_streamed(self, data, plan, reg_w, t0)
        feats = self._fit_features(frames)
        irreps = self.target.to_irreps(data.values)  # (n_samples, n_irreps)
        t_feat = time.perf_counter() - t0

        resid = self._fit_baseline(frames, irreps)
        self._choose_sparse(feats, frames)
        if self.config.covariance_storage == "training":
            self.training_envs = training_environments(feats, self._states(frames), self._rows)
        # folds by structure, shared by all channels (for CV regularisation and held-out metrics)
        k = min(self.config.cv_folds, len(frames))
        fold_of_struct = structure_folds(len(frames), k, self.config.seed)
        sample_fold = fold_of_struct[data.sample_structure]
        cv_pred = np.zeros_like(irreps)
        self.channels = []
        self._contracted = {}
        from tqdm.auto import tqdm

        for ch in tqdm(self._channel_list(), desc="fitting channels", disable=not self.progress, leave=False):
            self.channels.append(self._fit_channel(ch, feats, frames, resid, sample_fold, cv_pred, reg_w))
        cv_irreps = cv_pred + (irreps - resid)  # held-out (k-fold) predictions, baseline added back
        from ase.data import chemical_symbols

        n_sparse = {chemical_symbols[z]: int(len(x)) for z, x in self.sparse[(0, 1)].items()}
        self.metadata = self.training_record(data, t0, featurize_seconds=round(t_feat, 3), n_sparse=n_sparse,
                                             n_sparse_rule=AUTO_RULE if self.config.n_sparse is None else "stated",
                                             **({"label_mask": data.label_mask} if data.labelled is not None else {}), heldout_metrics={
            "method": f"{k}-fold cross-validation by structure (hyperparameters fixed at their final values)",
            **regression_metrics(self.target, irreps, cv_irreps),
        })
        return self

    def _fit_features(self, frames: list[Atoms]) -> dict:
        """The memory check, then the lambda-SOAP features of ``frames`` (coefficients kept), ``feature_tol`` compression fitted and applied."""
        self._check_fit_memory(frames)
        feats = self._lsoap().compute(frames, self._channel_list(), progress=self.progress, keep_coefficients=True)
        self.projections = fit_projections(feats, self.config.feature_tol) if self.config.feature_tol > 0 else {}
        if self.projections:
            apply_projections(feats, self.projections)
        return feats

    def _check_fit_memory(self, frames: list[Atoms]) -> None:
        """Refuse (MemoryBudgetError) a fit whose peak memory would exceed the budget, before any work:
        the features and their sparse copies (both alive while the channels are fitted), plus the
        largest of the per-channel kernels and the ``feature_tol`` compression (psilearn.data.memory).
        Data-scaled default sparse sizes (``n_sparse`` unset) shrink until the fit fits; stated ones never do."""
        numbers = np.concatenate([a.numbers for a in frames])
        counts = {z: int(np.sum(numbers == z)) for z in self.species}
        m = sparse_sizes(self.config.n_sparse, counts)
        while True:
            try:
                self._check_fit_bytes(frames, numbers, counts, m)
                break
            except MemoryBudgetError:
                m = shrink_sizes(m, self.config.n_sparse)
                if m is None:
                    raise
                log.info("data-scaled n_sparse reduced to %s to fit in memory", m)
        self._sizes = m

    def _check_fit_bytes(self, frames, numbers, counts: dict, m: dict) -> None:
        soap = self._lsoap()
        channels = sorted(set(self._channel_list()) | {(0, 1)})
        feats = soap.estimate_bytes(counts, channels, True) + soap.estimate_bytes(m, channels, True)
        n_samples = len(frames) if self.target.per == "structure" else len(numbers)
        kernels = max(channel_fit_bytes(n_samples, 2 * l + 1, list(m.values())) for l, _ in channels)
        if self.config.feature_tol > 0:
            kernels = max(kernels, projection_bytes([soap.width(*ch) for ch in channels]))
        what = (f"SA-GPR fit of {len(numbers)} atoms, {len(self.species)} elements (lambda-SOAP "
                f"{gb(feats)}, largest kernel step {gb(kernels)})")
        hint = FEATURE_HINT if feats >= kernels else KERNEL_HINT
        check_allocation(feats + kernels, what, hint)

    def _fit_baseline(self, frames: list[Atoms], irreps: np.ndarray) -> np.ndarray:
        """Per-element composition baseline of the invariant channel and per-block scales; returns
        the residual irreps (n_samples, n_irreps)."""
        blocks = self.target.blocks
        design = self._baseline_design(frames)
        if self._rows is not None:
            design = design[self._rows]
        resid = irreps.copy()
        cols = [b.start for b in blocks if self._has_baseline(b)]
        coef = fit_composition(design, irreps[:, cols]).reshape(len(self.species), len(cols))  # (n_species, n_invariant_blocks)
        resid[:, cols] -= design @ coef
        self.baseline = {int(z): [float(c) for c in row] for z, row in zip(self.species, coef)} if cols else {}
        scales = np.array([np.sqrt(np.mean(resid[:, b.cols] ** 2)) for b in blocks])
        self.scales = np.where(scales > 0, scales, 1.0)
        return resid

    def _choose_sparse(self, feats, frames: list[Atoms]) -> None:
        """Sparse environments per element, chosen on the invariant SOAP vectors (and their states)."""
        x0 = feats.blocks[(0, 1)]
        sizes = self._sizes or sparse_sizes(self.config.n_sparse, {z: len(x0[z]) for z in self.species})
        states = self._states(frames)
        chosen = {z: select_sparse_by_state(x0[z][:, 0, :], None if states is None else states[feats.structure[feats.index[z]]],
                                            sizes[z], self.config.sparse_method, self.config.state_width) for z in self.species}
        self.sparse = {ch: {z: feats.blocks[ch][z][chosen[z]] for z in self.species} for ch in feats.blocks}
        self.sparse_coefficients = {z: feats.coefficients[z][chosen[z]] for z in self.species}
        if states is not None:
            from psilearn.models._kernel.state_kernel import SPARSE_STATE_KEY, sparse_states

            self.sparse[SPARSE_STATE_KEY] = sparse_states(feats, states, chosen)

    def _regularization_weights(self, numbers: np.ndarray) -> np.ndarray | None:
        """Per-element regularisation (a {symbol: sigma2/s2} mapping, per-atom targets): 1/sqrt(reg)
        of each sample's element, which turns the per-element noise into a common noise (reg = 1) of
        row-scaled kernels and labels; None otherwise. ConfigError for a structure target or a
        training element without a value."""
        regs = self.config.regularization
        if not isinstance(regs, dict):
            return None
        from ase.data import chemical_symbols

        if self.target.per != "atom":
            raise ConfigError("model.regularization: a value per element needs a per-atom target (--per atom)")
        present = [chemical_symbols[z] for z in self.species]
        check_elements_known(regs, self.species, "model.regularization")
        missing = [s for s in present if s not in regs]
        if missing:
            raise ConfigError(f"model.regularization: no value for element {missing[0]!r} (give one for each of: {', '.join(present)})")
        table = np.zeros(max(self.species) + 1)
        for s, v in regs.items():
            table[chemical_symbols.index(s)] = float(v)
        return 1.0 / np.sqrt(table[numbers])

    @staticmethod
    def _fitted_rows(phi: np.ndarray, d: int, rows: np.ndarray | None, reg_w: np.ndarray | None) -> np.ndarray:
        """The kernel rows each channel's GP is fitted on: those of the labelled samples (``rows``, a
        label mask, or all) scaled by the per-element regularisation weights ``reg_w`` (or not).
        Shared by the fit and the rebuild of the covariance basis (:mod:`psilearn.models.sagpr.covariance`)."""
        if rows is not None:
            phi = phi[np.repeat(rows, d)]
        return phi if reg_w is None else phi * np.repeat(reg_w, d)[:, None]

    def _fit_channel(self, ch, feats, frames, resid: np.ndarray, sample_fold: np.ndarray, cv_pred: np.ndarray,
                     reg_w: np.ndarray | None = None) -> ChannelModel:
        """Sparse GP of channel ``ch`` = (l, sigma) and one column fit per irrep occurrence; fills the
        channel's k-fold predictions into ``cv_pred``. ``reg_w``: per-sample weights of per-element
        regularisation (:meth:`_regularization_weights`)."""
        d = 2 * ch[0] + 1
        phi = sparse_kernel(feats, self.sparse, ch, self.config.zeta, self.target.per, self.target.pool)
        kmm = sparse_sparse_kernel(self.sparse, ch, self.config.zeta)
        phi, kmm = self._with_global_state(phi, kmm, feats, frames, d)
        phi = self._fitted_rows(phi, d, self._rows, reg_w)
        rw = np.ones(len(phi)) if reg_w is None else np.repeat(reg_w, d)
        gp, bw = SparseGP.build(phi, kmm)
        if len(gp.S2) == 0:
            log.warning("lambda-SOAP has no features for channel l=%d sigma=%d (e.g. pseudo-scalars at body order 3): "
                        "it is predicted as 0 with the training data's spread as uncertainty", ch[0], ch[1])
        row_fold = np.repeat(sample_fold, d)
        mode = self.config.regularization
        reg = 1.0 if reg_w is not None else fixed_regularization(mode)
        cols = []
        for bi, b in enumerate(self.target.blocks):
            if self._channel_of(b) != ch:
                continue
            y = (resid[:, b.cols] / self.scales[bi]).reshape(-1) * rw
            fit = gp.fit_column(bw, y, reg=reg, folds=row_fold if mode == "cv" else None)
            cols.append((bi, fit))
            _, pred = gp.kfold_residuals(bw, y[:, None], row_fold, np.array([fit.reg]))
            cv_pred[:, b.cols] = (pred[:, 0] / rw).reshape(-1, d) * self.scales[bi]
            log.info("channel %s block %d: reg=%.3g s2=%.3g", ch, bi, fit.reg, fit.s2)
        if self.config.covariance_storage == "basis":  # the model file's P: float32 unless that changes the std
            gp.choose_precision([c for _, c in cols], phi, bw)  # ('training' stores no P: nothing to decide)
        return ChannelModel(ch, gp, cols)

    # ---- prediction ------------------------------------------------------------------------------
    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool) -> Prediction:
        """Predictions in batches of ``soap.batch_size`` structures (samples are independent, so the
        result does not depend on the batch size), which bounds the memory of features and kernels."""
        if not self.channels:
            raise RuntimeError("model is not fitted")
        if self.config.magnetic_moments != "none":
            read_moments(frames, self.config.magnetic_moments)  # a missing moment is one DataError naming file, frame and key
        if (return_std or return_cov) and needs_rebuild(self):
            rebuild_covariance_basis(self)
        bs = max(1, self.soap.batch_size)
        parts = [self._predict_batch(frames[i : i + bs], return_std, return_cov) for i in range(0, len(frames), bs)]
        if len(parts) == 1:
            return parts[0]
        cat = [np.concatenate(a) for a in zip(*[(p.values, p.std, p.irreps, p.irreps_std) for p in parts])]
        return Prediction(*cat, np.concatenate([p.cov for p in parts]) if return_cov else None)

    def _predict_batch(self, frames: list[Atoms], return_std: bool, return_cov: bool) -> Prediction:
        feats = self._lsoap().compute(frames, self._channel_list(), progress=self.progress)
        if self.projections:
            apply_projections(feats, self.projections)
        blocks = self.target.blocks
        n = feats.n_structures if self.target.per == "structure" else len(feats.numbers)
        n_irr = sum(b.dim for b in blocks) if not blocks else max(b.start + b.dim for b in blocks)
        irreps = np.zeros((n, n_irr))
        var = np.zeros((n, n_irr))
        covs = {}
        fast = not (return_std or return_cov) and self.config.zeta in (1, 2)
        for cm in self.channels:
            d = 2 * cm.channel[0] + 1
            n_env = sum(len(x) for x in self.sparse[cm.channel].values())
            q0 = max((x.shape[2] for x in self.sparse[(0, 1)].values()), default=0)
            # mean only: contract the sparse sum once instead of forming the kernel, when cheaper
            # (per atom: d*Q*Q0 flops for zeta=2 instead of d*Q*M*d)
            if fast and (self.config.zeta == 1 or q0 < n_env * d):
                for bi, col in cm.columns:
                    key = (cm.channel, bi)
                    if key not in self._contracted:
                        self._contracted[key] = contracted_weights(self.sparse, cm.channel, self.config.zeta, col.coef)
                    mean = contracted_mean(feats, cm.channel, self.config.zeta, self._contracted[key], self.target.per, self.target.pool)
                    irreps[:, blocks[bi].cols] = mean * self.scales[bi]
                continue
            check_allocation(channel_predict_bytes(n, d, n_env, return_std or return_cov),
                             f"SA-GPR prediction kernels of {n} samples, channel l={d // 2}", PREDICT_HINT)
            phi = sparse_kernel(feats, self.sparse, cm.channel, self.config.zeta, self.target.per, self.target.pool)
            phi, _ = self._with_global_state(phi, [], feats, frames, d)
            if return_std or return_cov:
                t = (phi @ cm.gp.P).reshape(n, d, -1)
                kss = self_kernel(feats, cm.channel, self.config.zeta, self.target.per, self.target.pool)
            for bi, col in cm.columns:
                b = blocks[bi]
                irreps[:, b.cols] = cm.gp.predict(phi, col).reshape(n, d) * self.scales[bi]
                if return_std or return_cov:
                    cov = cm.gp.covariance(t, kss, col)
                    if isinstance(self.config.regularization, dict):  # the noise of each atom's element
                        w = self._regularization_weights(feats.numbers)
                        cov = cov + (col.s2 * (1 / w**2 - 1))[:, None, None] * np.eye(d)
                    cov = cov * self.scales[bi] ** 2
                    covs[bi] = cov
                    var[:, b.cols] = np.einsum("naa->na", cov)
        if self.baseline:
            cols = [b.start for b in blocks if self._has_baseline(b)]
            coef = np.array([self.baseline[z] for z in self.species]).reshape(len(self.species), -1)
            # one column per invariant block; files written before the per-block baseline kept one value
            # per element (the last invariant block's), which broadcasts here as it did then
            irreps[:, cols] += self._baseline_design(frames) @ coef
        values = self.target.to_cartesian(irreps)
        std = np.zeros_like(values)
        cov_cart = None
        if return_std or return_cov:
            from psilearn.targets.cartesian import cartesian_basis

            tc = cartesian_basis(self.target.tensor).to_cartesian  # (n_irreps_full, 3**rank)
            cov_cart = np.zeros((n, self.target.size, self.target.size))
            for bi, cov in covs.items():
                rows = tc[blocks[bi].cols]  # (d, 3**rank)
                cov_cart += np.einsum("ak,nab,bl->nkl", rows, cov, rows)
            std = np.sqrt(np.clip(np.einsum("nkk->nk", cov_cart), 0.0, None))
        return Prediction(values, std, irreps, np.sqrt(np.clip(var, 0.0, None)), cov_cart if return_cov else None)

    def _resolve_global_state(self, frames: list[Atoms]) -> None:
        """``global_state: auto`` -> the state input the training structures need (stored as chosen)."""
        if self.config.global_state == "auto":
            from psilearn.data.electronic_state import needed_state_mode

            self.config = replace(self.config, global_state=needed_state_mode(frames))
            if self.config.global_state != "none":
                log.info("global_state auto: %s (the training structures are in several electronic states)", self.config.global_state)

    def _states(self, frames: list[Atoms]) -> np.ndarray | None:
        """(n_structures, 2) electronic states of ``frames`` when ``global_state`` is set, else None."""
        if self.config.global_state == "none":
            return None
        from psilearn.data.electronic_state import state_vectors

        return state_vectors(frames, self.config.global_state)

    def _with_global_state(self, phi, kmm, feats, frames, d, states: np.ndarray | None = None):
        """Kernels times the state kernel when ``global_state`` is set (k_state(s, s) = 1, so the
        self-kernels are unchanged); ``states`` (n_structures, 2) instead of reading them from ``frames``."""
        if self.config.global_state == "none":
            return phi, kmm
        from psilearn.models._kernel.state_kernel import SPARSE_STATE_KEY, apply_state_kernel

        states = self._states(frames) if states is None else states
        sample = states if self.target.per == "structure" else states[feats.structure]
        return apply_state_kernel(phi, kmm, sample, self.sparse[SPARSE_STATE_KEY], d, self.config.state_width)

    # ---- persistence -----------------------------------------------------------------------------
    to_state = sagpr_state
    from_state = classmethod(sagpr_from_state)
    posterior_factors = posterior_factors  # the joint posterior across samples (active learning)
    posterior_blocks = posterior_blocks
