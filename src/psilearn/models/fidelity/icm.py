"""The `multifidelity-icm` model kind: all levels of theory in one GP with a learned coregionalisation.

Structures carry the observable under one key and their level in ``atoms.info[fidelity_key]``. Per
irreducible block of the Target (as SA-GPR fits each block), one sparse GP over (structure, level):

    k((x, f), (x', f')) = B_ff' k_lambda(x, x'),   noise variance noise_f per level,

the intrinsic coregionalisation model (ICM; Alvarez, Rosasco & Lawrence, Found. Trends ML 4, 195
(2012)), with k_lambda the lambda-SOAP kernel of SA-GPR (same features, sparse points, zeta and
predictive covariance: the SA-GPR kind is reached through the registry and its machinery reused).
B is a symmetric positive-definite L x L matrix per block, parametrised by its Cholesky factor with a
log diagonal; B and the noise levels maximise the projected-process (Nystrom) log marginal likelihood
of all levels' rows together (:mod:`psilearn.models._kernel.coregional`, which states it). The start:
per level the label variance (1 % of it as noise), and the correlation of the labels of geometries
computed at two levels (0.5 where there are none). Designs need not be nested.

The invariant blocks get a composition baseline per level: SA-GPR's on the level with the most
structures, and on each other level that one scaled by least squares (plus its own composition
correction where that lowers the leave-one-out error: energies of two levels differ by per-element
constants, polarizabilities mostly by a scale); every block is normalised by the RMS of its residual over all levels. Equivariance is
exact (B multiplies whole irreducible blocks). With one level this is SA-GPR with its regularisation
chosen by marginal likelihood: the same optimum, reached by another optimiser (equal to ~1e-4); with
B and the noise fixed (``fixed``) at SA-GPR's values, the same model to rounding.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
from ase import Atoms

from psilearn.data import Dataset
from psilearn.data.prediction import Prediction
from psilearn.data.splits import structure_folds
from psilearn.errors import ConfigError
from psilearn.features import SoapConfig
from psilearn.features.compress import apply_projections
from psilearn.metrics.regression import regression_metrics
from psilearn.models._kernel import coregional as icm
from psilearn.models._kernel.gpr import SparseGP
from psilearn.models._kernel.kernels import self_kernel, sparse_kernel, sparse_sparse_kernel
from psilearn.models._kernel.sparse import check_elements_known, rebuild_sparse
from psilearn.models._kernel.state_kernel import SPARSE_STATE_KEY
from psilearn.models.base import Model
from psilearn.models.checks import check_fidelity_names, check_training_data, fidelity_levels, fidelity_of, geometry_key, level_index, order_levels
from psilearn.models.composition import fit_composition, scaled_composition
from psilearn.models.registry import model_class
from psilearn.targets import Target

KIND = "multifidelity-icm"
#: the covariance-only arrays (each channel's basis, each block's low-rank posterior factor) are rounded to
#: this precision at fit time and stored in it (half the file; a loaded model predicts bit-identically; the
#: means do not use them)
STORE_DTYPE = np.float32
_rounded = lambda x: x.astype(STORE_DTYPE).astype(np.float64)  # noqa: E731


def icm_kind(fidelity_key: str, levels: list[str] | None, target_level: str, inner: str = "sagpr") -> type["ICMModel"]:
    """The ICM kind for structures labelled at several levels named by ``info[fidelity_key]``, predicting
    ``target_level`` by default; ``levels`` fixes their order (None: by decreasing number of structures,
    the target last; the order only names the levels here, every level is fitted jointly)."""
    check_fidelity_names(fidelity_key, target_level)
    check_icm_inner(inner)
    levels = fidelity_levels(levels, target_level)
    return type("ICMModel[sagpr]", (ICMModel,), {"__module__": __name__, "fidelity_key_default": fidelity_key,
                                                 "levels_default": levels, "target_level_default": target_level})


def check_icm_inner(inner: str) -> None:
    """ConfigError unless ``inner`` is sagpr (the only kind whose kernel the levels can share)."""
    if inner != "sagpr":
        raise ConfigError(f"--coregionalisation icm: the levels share one SA-GPR kernel, --model {inner} is not supported "
                          "(use --model sagpr, or --coregionalisation autoregressive)")


@dataclass
class ICMBlock:
    """One irrep occurrence, normalised units: B (L, L), noise (L,), weights on the kernel columns per
    level (L, M'), and the posterior covariance of each level's weights diag(diag[f]) - z[f] z[f]^T."""

    b: np.ndarray
    noise: np.ndarray
    coef: np.ndarray
    diag: np.ndarray  # (L, r)
    z: np.ndarray  # (L, r, m)


@dataclass
class ICMChannel:
    channel: tuple[int, int]  # (l, sigma)
    basis: np.ndarray  # (M', r): whitened kernel columns -> rotated weight directions
    blocks: list[tuple[int, ICMBlock]]


@dataclass
class ICMModel(Model):
    """One coregionalised SA-GPR over every level; ``predict(frames, fidelity=NAME)`` for another level."""

    target: Target
    fidelity_key: str = "level"
    levels: list[str] = field(default_factory=list)
    target_level: str = ""
    progress: bool = False
    baseline: np.ndarray | None = None  # (L, n_species, n_invariant_blocks) per-level composition baseline
    scales: np.ndarray | None = None  # (n_blocks,)
    channels: list[ICMChannel] = field(default_factory=list)
    fixed: dict | None = None  # {block index: (B (L, L), noise (L,))} in normalised units: used instead of learning them
    metadata: dict = field(default_factory=dict)
    base: Model | None = field(default=None, repr=False)  # the SA-GPR model: settings, elements, sparse environments

    kind: ClassVar[str] = KIND
    fidelity_key_default: ClassVar[str] = "level"
    levels_default: ClassVar[list[str] | None] = None
    target_level_default: ClassVar[str] = ""
    config_options: ClassVar[dict[str, type]] = dict(model_class("sagpr").config_options)

    @classmethod
    def from_options(cls, target: Target, options: dict, seed: int, progress: bool) -> "ICMModel":
        if not cls.target_level_default:
            raise ConfigError("the multifidelity-icm kind needs a fidelity key and a target level: psilearn fit --fidelity-key KEY "
                              "--target-fidelity NAME --coregionalisation icm, or psilearn.models.fidelity.icm_kind(KEY, levels, NAME)")
        if target.is_spectrum or type(target) is not Target:
            raise ConfigError(f"--coregionalisation icm learns Cartesian-tensor targets, not {target.describe()}")
        cfg = options["model"]
        refused = [(cfg.regularization != "ml", f"model.regularization {cfg.regularization!r} (B and the noise are learned: 'ml')"),
                   (cfg.stream_batch or cfg.float32 or cfg.scheduler, "a streamed fit (stream_batch, float32, scheduler)"),
                   (cfg.covariance_storage != "basis", "covariance_storage 'training'"),
                   (cfg.magnetic_moments != "none", "magnetic_moments")]
        for what in [what for bad, what in refused if bad][:1]:
            raise ConfigError(f"--coregionalisation icm does not support {what}")
        base = model_class("sagpr").from_options(target, options, seed, progress)
        return cls(target, cls.fidelity_key_default, list(cls.levels_default or []), cls.target_level_default, progress, base=base)

    @property
    def species(self) -> list[int]:
        return self.base.species

    # ---- fitting ---------------------------------------------------------------------------------
    def fit(self, data: Dataset) -> "ICMModel":
        """Fit every level jointly on ``data`` (structures of every level, labels under the Target's key)."""
        check_training_data(self.target, data)
        t0 = time.perf_counter()
        names = fidelity_of(data.frames, self.fidelity_key)
        self.levels = order_levels(names, self.fidelity_key, self.target_level, list(self.levels), upto_target=False)
        lev = np.array([self.levels.index(n) for n in names])
        sample_lev = lev[data.sample_structure]
        base, frames = self.base, data.frames
        base.species = data.species
        base._resolve_global_state(frames)
        check_elements_known(base.config.n_sparse, base.species)
        base.progress = self.progress
        feats = base._fit_features(frames)
        irreps = self.target.to_irreps(data.values)
        resid = self._fit_baseline(frames, irreps, sample_lev)
        base._choose_sparse(feats, frames)
        self._sparse_from_coefficients()  # the same sparse features at fit time and after loading
        top = self.levels.index(self.target_level)
        k = min(base.config.cv_folds, int(np.sum(lev == top)))
        fold = np.full(len(frames), -1)
        fold[lev == top] = structure_folds(int(np.sum(lev == top)), k, base.config.seed)
        twins = _twin_samples(frames, lev, data.sample_structure, len(self.levels))
        cv = np.zeros_like(irreps)
        self.channels, records = [], []
        for ch in base._channel_list():
            self.channels.append(self._fit_channel(ch, feats, frames, resid, sample_lev, twins, fold[data.sample_structure], cv, records))
        t_rows = sample_lev == top
        held = regression_metrics(self.target, irreps[t_rows], cv[t_rows] + (irreps - resid)[t_rows])
        self.metadata = self.training_record(data, t0, heldout_metrics={
            "method": f"{k}-fold cross-validation over the {self.target_level} structures (every other row kept; B and noise fixed)",
            **held}, multifidelity={"fidelity_key": self.fidelity_key, "levels": self.levels, "target_level": self.target_level,
                                    "coregionalisation": "icm", "inner_kind": "sagpr", "blocks": records,
                                    "n_structures": {lv: int(np.sum(lev == i)) for i, lv in enumerate(self.levels)}})
        return self

    def _fit_baseline(self, frames: list[Atoms], irreps: np.ndarray, sample_lev: np.ndarray) -> np.ndarray:
        """Per-level composition baseline of the invariant blocks and per-block scales; returns the residual irreps."""
        base, blocks = self.base, self.target.blocks
        design = base._baseline_design(frames)
        cols = [b.start for b in blocks if base._has_baseline(b)]
        self.baseline = np.zeros((len(self.levels), len(base.species), len(cols)))
        resid = irreps.copy()
        big = int(np.argmax(np.bincount(sample_lev, minlength=len(self.levels))))
        for f in [big] + [g for g in range(len(self.levels)) if g != big]:
            rows = np.flatnonzero(sample_lev == f)
            if not cols:
                continue
            y = irreps[np.ix_(rows, cols)]
            if f == big:
                self.baseline[f] = fit_composition(design[rows], y).reshape(len(base.species), len(cols))
            else:
                self.baseline[f] = scaled_composition(design[rows], y, self.baseline[big])
            resid[np.ix_(rows, cols)] -= design[rows] @ self.baseline[f]
        scales = np.array([np.sqrt(np.mean(resid[:, b.cols] ** 2)) for b in blocks])
        self.scales = np.where(scales > 0, scales, 1.0)
        return resid

    def _fit_channel(self, ch, feats, frames, resid, sample_lev, twins, sample_fold, cv, records) -> ICMChannel:
        """The channel's pooled basis, rotated so the largest level's Gram matrix is diagonal, and one ICM per block."""
        base, d, n_lv = self.base, 2 * ch[0] + 1, len(self.levels)
        phi = sparse_kernel(feats, base.sparse, ch, base.config.zeta, self.target.per, self.target.pool)
        kmm = sparse_sparse_kernel(base.sparse, ch, base.config.zeta)
        phi, kmm = base._with_global_state(phi, kmm, feats, frames, d)
        gp, bw = SparseGP.build(phi, kmm)
        row_lev = np.repeat(sample_lev, d)
        big = int(np.argmax(np.bincount(sample_lev, minlength=n_lv)))
        if n_lv == 1:  # the basis already diagonalises the only level's Gram matrix (as SA-GPR's)
            mu, basis = gp.S2, gp.P
        else:
            mu, v = np.linalg.eigh(bw[row_lev == big].T @ bw[row_lev == big])
            bw, basis = bw @ v, gp.P @ v
        xs = [bw[row_lev == f] for f in range(n_lv)]
        top = self.levels.index(self.target_level)
        blocks = []
        for bi, b in enumerate(self.target.blocks):
            if base._channel_of(b) != ch:
                continue
            y = resid[:, b.cols] / self.scales[bi]
            data = icm.ICMData(big, np.clip(mu, 0.0, None), xs, [y[sample_lev == f].reshape(-1) for f in range(n_lv)])
            bmat, noise, rec = self._hyperparameters(bi, data, y, twins)
            post = icm.posterior(data, bmat, noise)
            blocks.append((bi, ICMBlock(bmat, noise, post.mean @ basis.T, post.diag, _rounded(post.z))))
            rows = sample_lev == top
            pred = icm.kfold_level(data, bmat, noise, top, np.repeat(sample_fold[rows], d))
            cv[rows, b.cols] = pred.reshape(-1, d) * self.scales[bi]
            records.append(self._block_record(bi, bmat, noise, rec))
        return ICMChannel(ch, _rounded(basis), blocks)

    def _hyperparameters(self, bi: int, data: icm.ICMData, y: np.ndarray, twins: dict) -> tuple[np.ndarray, np.ndarray, dict]:
        """(B, noise, record): ``fixed`` if given for this block, else learned from the moment start."""
        if self.fixed is not None and bi in self.fixed:
            bmat = np.asarray(self.fixed[bi][0], float).reshape(data.n_levels, data.n_levels)
            noise = np.atleast_1d(np.asarray(self.fixed[bi][1], float))
            return bmat, noise, {"fixed": True, "nll_per_row": icm.neg_log_ml(data, bmat, noise) / max(sum(len(y) for y in data.ys), 1)}
        corr = np.full((data.n_levels, data.n_levels), np.nan)
        for (f, g), (sf, sg) in twins.items():
            if len(sf) >= 2:  # uncentred: the GP has zero mean
                a, c = y[sf].ravel(), y[sg].ravel()
                corr[f, g] = corr[g, f] = float(a @ c / max(np.sqrt((a @ a) * (c @ c)), 1e-300))
        b0, n0 = icm.initial_guess(data, corr)
        bmat, noise, rec = icm.learn_hyperparameters(data, b0, n0)
        np.fill_diagonal(corr, 1.0)
        return bmat, noise, {**rec, "start_correlation": np.nan_to_num(corr, nan=0.5).tolist()}

    def _block_record(self, bi: int, bmat: np.ndarray, noise: np.ndarray, rec: dict) -> dict:
        sd = np.sqrt(np.diag(bmat))
        return {"block": self.target.blocks[bi].name,
                "B_normalised": bmat.tolist(), "correlation": (bmat / np.outer(sd, sd)).tolist(),
                "amplitude_ratio_to_first": (sd / sd[0]).tolist(), "noise_std": (np.sqrt(noise) * self.scales[bi]).tolist(),
                "scale": float(self.scales[bi]), **rec}

    def _sparse_from_coefficients(self) -> None:
        """The sparse lambda-SOAP blocks from their stored expansion coefficients (then the feature compression)."""
        base = self.base
        state = base.sparse.get(SPARSE_STATE_KEY)
        base.sparse = {} if state is None else {SPARSE_STATE_KEY: state}
        rebuild_sparse(base, base.sparse_coefficients)

    # ---- prediction ------------------------------------------------------------------------------
    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool, fidelity: str | None = None, **options) -> Prediction:
        if not self.channels:
            raise RuntimeError("model is not fitted")
        f, bs = level_index(fidelity, self.levels, self.target_level), max(1, self.base.soap.batch_size)
        parts = [self._predict_batch(frames[i : i + bs], f, return_std or return_cov) for i in range(0, len(frames), bs)]
        return Prediction(*[np.concatenate(a) for a in zip(*[(p.values, p.std, p.irreps, p.irreps_std) for p in parts])],
                          np.concatenate([p.cov for p in parts]) if return_cov else None)

    def _predict_batch(self, frames: list[Atoms], f: int, with_cov: bool) -> Prediction:
        base, blocks = self.base, self.target.blocks
        feats = base._lsoap().compute(frames, base._channel_list(), progress=self.progress)
        if base.projections:
            apply_projections(feats, base.projections)
        n = feats.n_structures if self.target.per == "structure" else len(feats.numbers)
        irreps = np.zeros((n, self.target.to_irreps(np.zeros((1, self.target.size))).shape[1]))
        covs = {}
        for cm in self.channels:
            d = 2 * cm.channel[0] + 1
            phi = sparse_kernel(feats, base.sparse, cm.channel, base.config.zeta, self.target.per, self.target.pool)
            phi, _ = base._with_global_state(phi, [], feats, frames, d)
            if with_cov:
                t = (phi @ cm.basis).reshape(n, d, -1)
                kss = self_kernel(feats, cm.channel, base.config.zeta, self.target.per, self.target.pool)
            for bi, blk in cm.blocks:
                irreps[:, blocks[bi].cols] = (phi @ blk.coef[f]).reshape(n, d) * self.scales[bi]
                if with_cov:
                    covs[bi] = icm.predictive_covariance(t, kss, blk.b[f, f], blk.noise[f], blk.diag[f], blk.z[f]) * self.scales[bi] ** 2
        cols = [b.start for b in blocks if base._has_baseline(b)]
        if cols:
            irreps[:, cols] += base._baseline_design(frames) @ self.baseline[f]
        return self._assemble(irreps, covs, with_cov)

    def _assemble(self, irreps: np.ndarray, covs: dict, with_cov: bool) -> Prediction:
        """Cartesian values, std, irreps std and Cartesian covariance from the blocks' (n, d, d) covariances."""
        from psilearn.targets.cartesian import cartesian_basis

        values = self.target.to_cartesian(irreps)
        if not with_cov:
            return Prediction(values, np.zeros_like(values), irreps, np.zeros_like(irreps), None)
        tc = cartesian_basis(self.target.tensor).to_cartesian  # (n_irreps, 3**rank)
        cov = np.zeros((len(values), self.target.size, self.target.size))
        var = np.zeros_like(irreps)
        for bi, c in covs.items():
            rows = tc[self.target.blocks[bi].cols]
            cov += np.einsum("ak,nab,bl->nkl", rows, c, rows)
            var[:, self.target.blocks[bi].cols] = np.einsum("naa->na", c)
        std = np.sqrt(np.clip(np.einsum("nkk->nk", cov), 0.0, None))
        return Prediction(values, std, irreps, np.sqrt(np.clip(var, 0.0, None)), cov)

    # ---- persistence -----------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Metadata: levels, SOAP and SA-GPR settings, elements, channels; arrays: scales, baseline, the sparse
        environments' coefficients (``sparse_coef/Z``), projections, and per channel C its basis and per block B
        ``chC/bB/{b,noise,coef,diag,z}`` (basis and z in STORE_DTYPE, as rounded at fit time: loading gives
        bit-identical predictions)."""
        if not self.channels:
            raise RuntimeError("model is not fitted")
        base = self.base
        arrays = {"scales": np.asarray(self.scales), "baseline": np.asarray(self.baseline)}
        arrays.update({f"sparse_coef/{z}": c for z, c in base.sparse_coefficients.items()})
        arrays.update({f"sparse/-1/0/{z}": x for z, x in base.sparse.get(SPARSE_STATE_KEY, {}).items()})
        arrays.update({f"proj/{l}/{s}/{z}": v for (l, s), per_z in base.projections.items() for z, v in per_z.items()})
        channels = []
        for ci, cm in enumerate(self.channels):
            arrays[f"ch{ci}/basis"] = cm.basis.astype(STORE_DTYPE)
            for bi, blk in cm.blocks:
                arrays.update({f"ch{ci}/b{bi}/{k}": v.astype(STORE_DTYPE) if k == "z" else v for k, v in asdict(blk).items()})
            channels.append({"l": cm.channel[0], "sigma": cm.channel[1], "blocks": [bi for bi, _ in cm.blocks]})
        return ({"fidelity_key": self.fidelity_key, "levels": self.levels, "target_level": self.target_level, "soap": base.soap.to_dict(),
                 "config": asdict(base.config), "species": base.species, "channels": channels}, arrays)

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "ICMModel":
        sagpr = model_class("sagpr")
        target = Target.from_dict(meta["target"])
        base = sagpr(target, SoapConfig.from_dict(meta["soap"]), sagpr.config_options["model"].from_dict(meta["config"]))
        base.species = [int(z) for z in meta["species"]]
        for name, x in arrays.items():
            parts = name.split("/")
            if parts[0] == "proj":
                base.projections.setdefault((int(parts[1]), int(parts[2])), {})[int(parts[3])] = x
            elif parts[0] == "sparse":
                base.sparse.setdefault(SPARSE_STATE_KEY, {})[int(parts[3])] = x
            elif parts[0] == "sparse_coef":
                base.sparse_coefficients[int(parts[1])] = x
        model = icm_kind(meta["fidelity_key"], list(meta["levels"]), meta["target_level"])(
            target, meta["fidelity_key"], list(meta["levels"]), meta["target_level"], scales=arrays["scales"], baseline=arrays["baseline"],
            base=base)
        model._sparse_from_coefficients()
        for ci, ch in enumerate(meta["channels"]):
            blocks = [(bi, ICMBlock(**{k: np.asarray(arrays[f"ch{ci}/b{bi}/{k}"], np.float64) for k in ("b", "noise", "coef", "diag", "z")}))
                      for bi in ch["blocks"]]
            model.channels.append(ICMChannel((ch["l"], ch["sigma"]), np.asarray(arrays[f"ch{ci}/basis"], np.float64), blocks))
        model.metadata = meta["training"]
        return model


def _twin_samples(frames: list[Atoms], lev: np.ndarray, sample_structure: np.ndarray, n_levels: int) -> dict:
    """{(f, g): (samples at f, samples at g)} of geometries computed at both levels f < g (sample rows aligned)."""
    rows = {}
    for s, i in enumerate(sample_structure):
        rows.setdefault(int(i), []).append(s)
    where = {}
    for i, a in enumerate(frames):
        where.setdefault(geometry_key(a), {})[int(lev[i])] = i
    out = {}
    for levels in where.values():
        for f in levels:
            for g in levels:
                if f < g:
                    sf, sg = out.setdefault((f, g), ([], []))
                    sf += rows[levels[f]]
                    sg += rows[levels[g]]
    return {k: (np.array(a, int), np.array(b, int)) for k, (a, b) in out.items() if n_levels > 1}
