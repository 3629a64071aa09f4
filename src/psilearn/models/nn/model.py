"""The `nn` model kind: fit(Dataset) -> self, predict(frames) -> Prediction, state for model files.

Target values are learned in the irreducible (e3nn) basis of the Target, after removing a
per-element baseline from the even scalar channel (composition fit, as in SA-GPR) and dividing each
block by its spread. A random ``val_fraction`` of the training structures is held out for early
stopping, uncertainty calibration and the held-out metrics stored in the model file.

Under ``torchrun`` (or ``srun``) every process runs this same fit on all the data, so the split, the
normalisation and the calibration agree everywhere; only the training batches are shared out
(:mod:`psilearn.models._torch.distributed`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from ase import Atoms

from psilearn.data import Dataset
from psilearn.data.prediction import Prediction
from psilearn.data.splits import random_split
from psilearn.models._torch import distributed
from psilearn.models._torch import uncertainty as unc
from psilearn.models._torch.graph import build_graphs, collate
from psilearn.models._torch.network import EquivariantNetwork, NetworkConfig
from psilearn.models._torch.run_options import TorchRunOptions
from psilearn.models._torch.train import TrainConfig, Trainer
from psilearn.models._torch.weights import build_in_dtype, load_weights, weights_blob
from psilearn.models.base import Model
from psilearn.models.checks import check_training_data
from psilearn.models.composition import composition_design, fit_composition
from psilearn.models.pair_rule import PairRule
from psilearn.targets import IrrepBlock, Target

log = logging.getLogger("psilearn")


def _even_scalar(b) -> bool:
    return b.l == 0 and b.p == 1


@dataclass
class NNModel(TorchRunOptions, Model):
    """Equivariant message-passing network (deep ensemble or single model with LLPR) for any Target.

    >>> model = NNModel(Target("alpha", tensor="ij=ji"), NetworkConfig(), TrainConfig()).fit(dataset)
    >>> model.predict(frames).values   # (n_structures, 9) Cartesian, in the label's units
    """

    target: Target
    net_config: NetworkConfig = field(default_factory=NetworkConfig)
    train_config: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    progress: bool = False
    checkpoint_dir: str | None = None  # where training checkpoints go (per ensemble member)
    resume: bool = False  # continue from checkpoints in checkpoint_dir
    on_epoch_end: object = None  # callback(member, epoch), for tests and monitoring
    # fitted state
    species: list[int] = field(default_factory=list)
    nets: list = field(default_factory=list)
    avg_num_neighbors: float = 1.0
    llpr: unc.LLPR | None = None
    ens_alpha2: np.ndarray | None = None
    pair_rule: PairRule | None = None  # per-pair targets: which pairs, how far (models/pair_rule.py)
    metadata: dict = field(default_factory=dict)

    kind: ClassVar[str] = "nn"
    config_options: ClassVar[dict[str, type]] = {"nn": NetworkConfig, "nn_train": TrainConfig}
    iterative: ClassVar[bool] = True

    @classmethod
    def from_options(cls, target: Target, options: dict, seed: int, progress: bool) -> "NNModel":
        """From the ``nn`` (architecture) and ``nn_train`` (training) sections (seed None: 0)."""
        return cls(target, options["nn"], options["nn_train"], seed=seed, progress=progress)

    # ---- helpers ---------------------------------------------------------------------------------
    @property
    def out_irreps(self) -> list[tuple[int, int]]:
        return [(b.l, b.p) for b in self.target.blocks]

    @property
    def n_irreps(self) -> int:
        """Length of the target's full irreps vector (including parts dropped as traceless)."""
        return max(b.start + b.dim for b in self.target.blocks)

    @property
    def blocks(self) -> list[IrrepBlock]:
        """The target blocks in the network's compact output layout (learned parts only, in order)."""
        out, start = [], 0
        for b in self.target.blocks:
            out.append(IrrepBlock(b.l, b.p, start))
            start += b.dim
        return out

    @property
    def n_out(self) -> int:
        return sum(b.dim for b in self.target.blocks)

    def _compact(self, full: np.ndarray) -> np.ndarray:
        return full[:, np.concatenate([np.arange(b.start, b.start + b.dim) for b in self.target.blocks])]

    def _full(self, compact: np.ndarray) -> np.ndarray:
        out = np.zeros((len(compact), self.n_irreps))
        out[:, np.concatenate([np.arange(b.start, b.start + b.dim) for b in self.target.blocks])] = compact
        return out

    def _new_net(self) -> EquivariantNetwork:
        """A fresh network in the model's dtype (see :func:`~psilearn.models._torch.weights.build_in_dtype`);
        per-pair targets get the pair network (:mod:`psilearn.models._torch.pair_head`)."""
        if self.target.per == "pair":
            from psilearn.models._torch.pair_head import PairNetwork

            return build_in_dtype(lambda: PairNetwork(self.net_config, len(self.species), self.out_irreps, list(self.target.swap_signs),
                                                      self.avg_num_neighbors, self.pair_rule.reach), self.dtype, self.device)
        return build_in_dtype(lambda: EquivariantNetwork(self.net_config, len(self.species), self.out_irreps, self.avg_num_neighbors),
                              self.dtype, self.device)

    def _warn_state_blind(self, frames: list[Atoms]) -> None:
        """A warning when the training structures mix charge or spin states that the network does not see."""
        from psilearn.data.electronic_state import needed_state_mode

        need = needed_state_mode(frames)
        if self.net_config.global_state == "none" and need != "none":
            log.warning("the training structures are in several electronic states (atoms.info charge/multiplicity) but the network "
                        "does not see them: one geometry in two states gets one prediction; set nn: {global_state: %s}", need)

    def _graphs(self, frames: list[Atoms], pairs: list[np.ndarray] | None = None, progress: bool = False) -> list:
        """Neighbour graphs of ``frames``; per-pair targets also carry each structure's ``pairs``."""
        graphs = build_graphs(frames, self.species, self.net_config.cutoff, progress=progress,
                              global_state=self.net_config.global_state, magnetic_moments=self.net_config.magnetic_moments)
        if pairs is not None:
            from psilearn.data.errors import frame_location
            from psilearn.data.pairs import pair_vectors

            for k, (g, a, p) in enumerate(zip(graphs, frames, pairs)):
                g.pairs = np.asarray(p, dtype=np.int64).reshape(-1, 2)
                g.pair_vec = pair_vectors(a, g.pairs, frame_location(a, k))
        return graphs

    def _normalisation(self, data: Dataset, rows_irreps: np.ndarray, train_idx: np.ndarray):
        """Per-element (per-element-pair) shift of the even scalar blocks, output scale and loss scale (per column)."""
        t, blocks = self.target, self.blocks
        frames = [data.frames[i] for i in train_idx]
        design = composition_design(frames, self.species, t.per, t.pool, None if data.pairs is None else [data.pairs[i] for i in train_idx])
        if data.labelled is not None:  # labels on only some atoms: the rows of the labelled ones
            design = design[data.subset(train_idx).labelled]
        shift = np.zeros((design.shape[1], self.n_out))
        resid = rows_irreps.copy()
        for b in blocks:
            if _even_scalar(b):
                y = rows_irreps[:, b.start]
                coef = fit_composition(design, y)
                shift[:, b.start] = coef
                resid[:, b.start] -= design @ coef
        loss_scale = np.ones(self.n_out)
        for b in blocks:
            s = float(np.sqrt(np.mean(resid[:, b.cols] ** 2)))
            loss_scale[b.cols] = s if s > 0 else 1.0
        # sum pooling: what remains after the per-element baseline are fluctuations, which add up
        # like independent local contributions (~ sqrt(n_atoms)); measured better than 1/n_atoms on
        # dimers and liquid-water boxes
        mean_atoms = float(np.mean([len(a) for a in frames]))
        out_scale = loss_scale / np.sqrt(mean_atoms) if (t.per == "structure" and t.pool == "sum") else loss_scale.copy()
        return shift, out_scale, loss_scale

    def _col_weights(self) -> np.ndarray:
        from psilearn.metrics.regression import block_names

        names = block_names(self.target)
        given = dict(self.train_config.loss_weights or {})
        unknown = set(given) - set(names) - {b.name for b in self.target.blocks}
        if unknown:
            raise ValueError(f"nn_train.loss_weights: unknown blocks {sorted(unknown)}; this target has {names}")
        w = np.zeros(self.n_out)
        wb = [float(given.get(n, given.get(b.name, 1.0))) for n, b in zip(names, self.target.blocks)]
        if any(x < 0 for x in wb) or sum(wb) <= 0:
            raise ValueError("nn_train.loss_weights must be >= 0 with a positive sum")
        for x, b in zip(wb, self.blocks):
            w[b.cols] = x / b.dim
        return w / sum(wb)

    def _split(self, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """(train, validation) structure indices: a random ``val_fraction`` held out."""
        return random_split(len(data), self.train_config.val_fraction, self.seed)

    def _loss(self, loss_scale: np.ndarray, col_weight: np.ndarray):
        """The Trainer's loss object (None: its TargetLoss); a hook for subclasses."""
        return None

    # ---- fitting ---------------------------------------------------------------------------------
    def fit(self, data: Dataset) -> "NNModel":
        """Train on a Dataset whose Target equals this model's. Returns self. Per-atom labels on only
        some atoms (a Dataset with ``labelled``): every atom is described and predicted; only the
        labelled atoms enter the loss, the normalisation, the validation metrics and the calibration."""
        why, partial = "(one is held out for validation)", self.target.per == "atom"
        check_training_data(self.target, data, why=why, pairs=True, partial_labels=partial)
        t0 = time.perf_counter()
        cfg, t = self.train_config, self.target
        self._apply_threads()
        self._join_distributed()
        self.species = data.species
        self._warn_state_blind(data.frames)
        if t.per == "pair":  # structures without a labelled pair teach nothing
            data = data.subset(np.flatnonzero([len(p) for p in data.pairs]))
            check_training_data(self.target, data, why="with a labelled pair (one is held out for validation)", pairs=True)
            self.pair_rule = PairRule.from_data(data.frames, data.pairs)
        if data.labelled is not None:  # structures without a labelled atom teach nothing
            data = data.subset(np.flatnonzero([np.any(data.labelled[data.atom_structure == i]) for i in range(len(data))]))
            check_training_data(self.target, data, why="with a labelled atom (one is held out for validation)", partial_labels=True)
        graphs = self._graphs(data.frames, data.pairs, self.progress and distributed.is_main())
        if data.labelled is not None:
            for g, m in zip(graphs, np.split(data.labelled, np.cumsum([len(a) for a in data.frames])[:-1])):
                g.labelled = m
        train_idx, val_idx = self._split(data)
        tr, va = data.subset(train_idx), data.subset(val_idx)
        y_tr, y_va = self._compact(t.to_irreps(tr.values)), self._compact(t.to_irreps(va.values))
        g_tr, g_va = [graphs[i] for i in train_idx], [graphs[i] for i in val_idx]
        shift, out_scale, loss_scale = self._normalisation(data, y_tr, train_idx)
        self.avg_num_neighbors = max(1.0, float(sum(g.n_edges for g in g_tr) / sum(g.n_atoms for g in g_tr)))
        col_w = self._col_weights()
        n_members = cfg.ensemble_size if cfg.uncertainty == "ensemble" else 1
        device, fp = self.device, data.fingerprint()
        self.nets, summaries = [], []
        for k in range(n_members):
            torch.manual_seed(self.seed + 7919 * k)
            net = self._new_net()
            with torch.no_grad():
                net.scale.copy_(torch.as_tensor(out_scale))
                net.shift.copy_(torch.as_tensor(shift))
            ckpt = None
            if self.checkpoint_dir:
                ckpt = f"{self.checkpoint_dir}/member{k}"
            cb = None if self.on_epoch_end is None else (lambda e, k=k: self.on_epoch_end(k, e))
            trainer = Trainer(net, cfg, t.per, t.pool, loss_scale, col_w, seed=self.seed + 7919 * k, device=device,
                              checkpoint_dir=ckpt, resume=self.resume, progress=self.progress, fingerprint=fp,
                              on_epoch_end=cb, loss=self._loss(loss_scale, col_w))
            summaries.append(trainer.fit(g_tr, y_tr, g_va, y_va))
            net.eval()
            self.nets.append(net)

        pred_va, var_va = self._calibrate(g_tr, g_va, y_va, tr.labelled, va.labelled)

        from psilearn.metrics.regression import calibration, regression_metrics

        calib = None
        if var_va is not None:
            std_c = t.to_cartesian_std(self._full(unc.expand_blocks(var_va, self.blocks, self.n_out)))
            calib = {"method": f"{cfg.uncertainty}, scale fitted on the validation split (in-sample for the scale)",
                     **calibration(va.values, t.to_cartesian(self._full(pred_va)), std_c)}
        self.metadata = self.training_record(data, t0, **{
            "n_train_structures": len(train_idx),
            "n_validation_structures": len(val_idx),
            "n_train_samples": int(len(y_tr)),
            "n_parameters": int(sum(p.numel() for p in self.nets[0].parameters())),
            "members": summaries,  # each with its own loss history (written as MODEL.loss.csv/png by `psilearn fit`)
            "history": summaries[0]["history"],
            "heldout_metrics": {"method": f"validation split ({len(val_idx)} structures, used for early stopping)",
                                **regression_metrics(t, self._full(y_va), self._full(pred_va))},
            "calibration": calib,
            **({"label_mask": data.label_mask} if data.labelled is not None else {}),
        })
        return self

    def _calibrate(self, g_tr, g_va, y_va: np.ndarray, m_tr: np.ndarray | None, m_va: np.ndarray | None):
        """Fit the uncertainty (LLPR covariance on the training samples, its or the ensemble's scale on
        the validation ones; with a label mask ``m_tr``/``m_va``, bool per atom, the labelled atoms
        only). Returns the validation predictions (n_val_samples, n_out) and calibrated variance
        (n_val_samples, n_blocks) or None."""
        cfg, t, blocks = self.train_config, self.target, self.blocks
        rows = lambda x, m: x if m is None else x[m]  # noqa: E731
        members = self._member_irreps(g_va)[:, slice(None) if m_va is None else m_va]  # (K, n_val, n_out)
        pred_va = members.mean(0)
        err2 = unc.block_mean_sq(pred_va - y_va, blocks)
        self.llpr, self.ens_alpha2 = None, None
        if cfg.uncertainty == "llpr":
            keys = sorted(set(self.out_irreps))
            feats = lambda g: unc.last_layer_features(self.nets[0], g, t.per, t.pool, keys, cfg.predict_batch_size,  # noqa: E731
                                                      self.device, self.dtype)
            self.llpr = unc.LLPR.fit({k: rows(v, m_tr) for k, v in feats(g_tr).items()}, cfg.llpr_regularization)
            self.llpr.alpha2 = unc.calibrate(self.llpr.raw_variance({k: rows(v, m_va) for k, v in feats(g_va).items()}, blocks), err2)
        elif cfg.uncertainty == "ensemble":
            self.ens_alpha2 = unc.calibrate(unc.ensemble_variance(members, blocks), err2)
        var_va = self._variance(g_va, members, m_va)
        return pred_va, var_va

    # ---- prediction ------------------------------------------------------------------------------
    @torch.no_grad()
    def _member_irreps(self, graphs) -> np.ndarray:
        """(K, n_samples, n_out) float64 predictions of every member (compact layout)."""
        bs = self.train_config.predict_batch_size
        out = []
        for net in self.nets:
            net.eval()
            rows = []
            for s in range(0, len(graphs), bs):
                b = collate(graphs[s : s + bs], self.device, self.dtype)
                rows.append(net(b, self.target.per, self.target.pool).double().cpu().numpy())
            out.append(np.concatenate(rows))
        return np.stack(out)

    def _variance(self, graphs, members: np.ndarray, labelled: np.ndarray | None = None) -> np.ndarray | None:
        """Calibrated per-block variance (n_samples, n_blocks), or None without an estimate.
        ``labelled`` (bool per atom of ``graphs``): the samples are those atoms only (``members``
        already restricted to them)."""
        t = self.target
        if self.llpr is not None:
            keys = sorted(self.llpr.inv)
            f = unc.last_layer_features(self.nets[0], graphs, t.per, t.pool, keys, self.train_config.predict_batch_size,
                                        self.device, self.dtype)
            return self.llpr.variance(f if labelled is None else {k: v[labelled] for k, v in f.items()}, self.blocks)
        if self.ens_alpha2 is not None and len(members) > 1:
            return unc.ensemble_variance(members, self.blocks) * self.ens_alpha2
        return None

    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool) -> Prediction:
        if not self.nets:
            raise RuntimeError("model is not fitted")
        t = self.target
        self._apply_threads()
        pairs = self.pair_rule.frame_pairs(frames, t) if t.per == "pair" else None
        graphs = self._graphs(frames, pairs)
        if pairs is not None and not any(len(p) for p in pairs):
            return Prediction(*(np.zeros((0, n)) for n in (t.size, t.size, self.n_irreps, self.n_irreps)), pairs=pairs)
        members = self._member_irreps(graphs)
        irreps = self._full(members.mean(0))
        values = t.to_cartesian(irreps)
        var = self._variance(graphs, members) if (return_std or return_cov) else None
        if var is None:
            var = np.zeros((len(irreps), len(t.blocks)))
        var_full = self._full(unc.expand_blocks(var, self.blocks, self.n_out))
        cov = unc.cartesian_cov(t, var) if return_cov else None
        return Prediction(values, t.to_cartesian_std(var_full), irreps, np.sqrt(var_full), cov, pairs=pairs)

    def posterior_factors(self, frames: list[Atoms]) -> list[tuple[np.ndarray, float]] | None:
        """The LLPR joint posterior across samples (:func:`psilearn.models.nn.posterior.llpr_factors`); None for
        deep ensembles (a K-member spread has no noise model for a label to condition) and per-pair targets."""
        from psilearn.models.nn.posterior import llpr_factors

        return llpr_factors(self, frames)

    # ---- persistence -----------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict]:
        """Each member's weights as a safetensors blob (``memberK.safetensors``, uint8) and the
        LLPR matrices (``llpr/l/p``, ``llpr/alpha2``) or the ensemble calibration."""
        if not self.nets:
            raise RuntimeError("model is not fitted")
        arrays = {f"member{k}.safetensors": weights_blob(net) for k, net in enumerate(self.nets)}
        llpr_meta = None
        if self.llpr is not None:
            for (l, p), m in self.llpr.inv.items():
                arrays[f"llpr/{l}/{p}"] = m
            arrays["llpr/alpha2"] = np.asarray(self.llpr.alpha2, float)
            llpr_meta = [[l, p] for l, p in self.llpr.inv]
        if self.ens_alpha2 is not None:
            arrays["ensemble/alpha2"] = np.asarray(self.ens_alpha2, float)
        net = self.net_config.to_dict()
        if net.get("magnetic_moments") == "none":  # files without moments stay as before the option
            del net["magnetic_moments"]
        meta = {
            "nn": net,
            "nn_train": self.train_config.to_dict(),
            "seed": self.seed,
            "species": self.species,
            "avg_num_neighbors": self.avg_num_neighbors,
            "n_members": len(self.nets),
            "llpr_irreps": llpr_meta,
        }
        if self.pair_rule is not None:
            meta["pair_rule"] = self.pair_rule.to_dict()
        if self.net_config.magnetic_moments != "none":  # what predict needs besides the structures
            meta["required_inputs"] = {"arrays": {"initial_magmoms": self.net_config.magnetic_moments}}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> "NNModel":
        model = cls(Target.from_dict(meta["target"]), NetworkConfig.from_dict(meta["nn"]), TrainConfig.from_dict(meta["nn_train"]),
                    seed=int(meta["seed"]))
        if model.train_config.device != "cpu" and not torch.cuda.is_available():
            model.train_config.device = "cpu"  # trained on a GPU, used here on a CPU
        model.species = [int(z) for z in meta["species"]]
        model.avg_num_neighbors = float(meta["avg_num_neighbors"])
        model.metadata = meta["training"]
        if meta.get("pair_rule"):
            model.pair_rule = PairRule.from_dict(meta["pair_rule"])
        for k in range(int(meta["n_members"])):
            net = model._new_net().to(device=model.device, dtype=model.dtype)
            model.nets.append(load_weights(net, arrays[f"member{k}.safetensors"]))
        if meta.get("llpr_irreps"):
            inv = {(int(l), int(p)): arrays[f"llpr/{l}/{p}"] for l, p in meta["llpr_irreps"]}
            model.llpr = unc.LLPR(inv, arrays["llpr/alpha2"])
        if "ensemble/alpha2" in arrays:
            model.ens_alpha2 = arrays["ensemble/alpha2"]
        return model
