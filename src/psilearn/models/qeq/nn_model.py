"""QEq with a neural-network electronegativity: the ``qeq-nn`` model kind.

chi_i (eV/e) comes from psilearn's equivariant message-passing network with one invariant output
per atom plus an element baseline (:mod:`.nn_chi`); charges come from the exact constrained QEq
solve (sum q = Q to machine precision, molecules and Ewald-periodic cells), dipoles are
mu = f sum_i q_i (r_i - o) with the kernel model's origin, unit and periodic conventions. It is
trained by gradient descent through QEq (:mod:`.nn_loss`, the nn training loop of
:mod:`psilearn.models._torch.train`) on what the user has: reference charges (per-atom Target),
dipoles (latent charges), or both (a dipole Target plus ``charges_key``).

Initialisation from the training split (numpy, exact): the element baseline b_Z is the
least-squares fit of the observations through the QEq maps (as in the kernel model), each
observation type is normalised by the RMS of its residual after the baseline, and the network's
chi scale is that RMS divided by the RMS gain of the map chi -> observation (||T||_F / sqrt(rows)).

Uncertainty: LLPR on the chi readout propagated linearly through QEq (:mod:`.nn_llpr`),
calibrated on the validation split. Prediction evaluates chi with the network and then runs the
numpy QEq code of the kernel model (:class:`.linear_maps.QEqMaps`), so both backends return the
same :class:`.prediction.QEqPrediction`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

from psilearn.data import Dataset
from psilearn.data.electronic_state import structure_states
from psilearn.data.splits import random_split
from psilearn.errors import ConfigError
from psilearn.models._torch import distributed
from psilearn.models._torch import uncertainty as unc
from psilearn.models._torch.graph import Graph, build_graphs, collate
from psilearn.models._torch.network import NetworkConfig
from psilearn.models._torch.run_options import TorchRunOptions
from psilearn.models._torch.train import TrainConfig, Trainer
from psilearn.models._torch.weights import build_in_dtype, load_weights, weights_blob
from psilearn.models.base import Model
from psilearn.models.checks import check_training_data
from psilearn.models.qeq.checks import QEqTargetMixin, check_charge_sums, check_target, reference_charges
from psilearn.models.qeq.config import QEqNNConfig
from psilearn.models.qeq.linear_maps import QEqMaps
from psilearn.models.qeq.nn_chi import ChiNetwork
from psilearn.models.qeq.nn_llpr import QEqLLPR
from psilearn.models.qeq.nn_loss import QEqItem, QEqLoss, qeq_items
from psilearn.models.qeq.prediction import QEqPrediction
from psilearn.physics.dipole import dipole_unit_factor
from psilearn.physics.params import QEqParams
from psilearn.targets import Target

log = logging.getLogger("psilearn")


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class QEqNNModel(TorchRunOptions, QEqTargetMixin, Model):
    """QEq with NN electronegativities (see module docstring).

    >>> model = QEqNNModel(Target("mu", tensor="i", units="e*Bohr"), NetworkConfig(), TrainConfig()).fit(dataset)
    >>> pred = model.predict(frames)   # pred.values: dipoles; pred.charges: QEq charges (e)
    """

    target: Target
    net_config: NetworkConfig = field(default_factory=NetworkConfig)
    train_config: TrainConfig = field(default_factory=TrainConfig)
    config: QEqNNConfig = field(default_factory=QEqNNConfig)
    seed: int = 0
    progress: bool = False
    checkpoint_dir: str | None = None
    resume: bool = False
    on_epoch_end: object = None  # callback(member, epoch)
    # fitted state
    species: list[int] = field(default_factory=list)
    net: ChiNetwork | None = None
    avg_num_neighbors: float = 1.0
    llpr: QEqLLPR | None = None
    metadata: dict = field(default_factory=dict)

    kind: ClassVar[str] = "qeq-nn"
    config_options: ClassVar[dict[str, type]] = {"model": QEqNNConfig, "nn": NetworkConfig, "nn_train": TrainConfig}
    iterative: ClassVar[bool] = True

    @classmethod
    def from_options(cls, target: Target, options: dict, seed: int, progress: bool) -> "QEqNNModel":
        """From the ``model`` (QEq, :class:`QEqNNConfig`), ``nn`` (architecture) and ``nn_train``
        (training) sections."""
        return cls(target, options["nn"], options["nn_train"], options["model"], seed=seed, progress=progress)

    def __post_init__(self) -> None:
        check_target(self.target)
        if self.net_config.magnetic_moments != "none":
            raise ConfigError("nn.magnetic_moments: magnetic moments as inputs are not supported by the qeq-nn model")
        tc = self.train_config
        if tc.uncertainty == "ensemble":
            raise ValueError("the qeq-nn model estimates uncertainty by LLPR through QEq; nn_train.uncertainty must be "
                             "'llpr' or 'none' (ensembles are not implemented for it)")
        if tc.loss_weights:
            raise ValueError("nn_train.loss_weights do not apply to qeq-nn; weight charges against dipoles with charge_weight")
        self.params = QEqParams.from_dict(self.config.qeq)
        self.dipole_factor = dipole_unit_factor(self.config.dipole_units or self.target.units) if self.is_dipole else 1.0

    # ---- helpers ---------------------------------------------------------------------------------
    def _new_net(self, hardness_init: np.ndarray | None = None) -> ChiNetwork:
        """A fresh ChiNetwork in the model's dtype (e3nn constants, :func:`build_in_dtype`)."""
        return build_in_dtype(lambda: ChiNetwork(self.net_config, len(self.species), self.avg_num_neighbors,
                                                 self.config.learn_hardness, hardness_init), self.dtype, self.device)

    def _species_index(self, frames: list[Atoms]) -> list[np.ndarray]:
        lookup = {z: i for i, z in enumerate(self.species)}
        return [np.array([lookup[int(z)] for z in a.numbers], dtype=np.int64) for a in frames]

    def _maps(self, frames: list[Atoms], total: np.ndarray, params: QEqParams | None = None) -> QEqMaps:
        cfg = self.config
        return QEqMaps.build(frames, total, params or self.params, cfg.origin, cfg.periodic_dipole, progress=self.progress)

    # ---- fitting ---------------------------------------------------------------------------------
    def _references(self, data: Dataset, total: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, float]]:
        """(reference charges (n_atoms_total,) e or None, dipoles (n, 3) or None, loss weight per type)."""
        cfg, frames = self.config, data.frames
        if self.is_dipole:
            weights = {"dipole": 1.0}
            q = None
            if cfg.charges_key and cfg.charge_weight > 0:
                q = reference_charges(frames, cfg.charges_key, total)
                weights["charges"] = float(cfg.charge_weight)
            return q, np.asarray(data.values, float), weights
        q = np.asarray(data.values[:, 0], float)
        check_charge_sums(frames, q, total, self.target.key)
        return q, None, {"charges": 1.0}

    def _initial_scales(self, items: list[QEqItem], weights: dict[str, float]) -> tuple[np.ndarray, dict[str, float], float]:
        """Element baseline of chi (n_species,) eV/e, RMS of each observation type's residual after
        it, and the chi scale (eV/e) = main RMS / RMS gain of chi -> main observation."""
        ns = len(self.species)
        blocks: dict[str, list] = {k: [[], []] for k in weights}  # type -> [design rows, residual rows]
        gain2 = {k: [0.0, 0] for k in weights}  # type -> [sum ||T||_F^2, rows]
        for it in items:
            onehot = (it.species[:, None] == np.arange(ns)[None]).astype(float)
            d_q = -it.response @ onehot
            if "charges" in weights:
                blocks["charges"][0].append(d_q)
                blocks["charges"][1].append(it.charges - it.offset)
                gain2["charges"][0] += float(np.sum(it.response**2))
                gain2["charges"][1] += len(it.offset)
            if "dipole" in weights:
                blocks["dipole"][0].append(it.arm.T @ d_q)
                blocks["dipole"][1].append(it.dipole - it.arm.T @ it.offset)
                gain2["dipole"][0] += float(np.sum((it.arm.T @ it.response) ** 2))
                gain2["dipole"][1] += 3
        design = {k: np.concatenate(v[0]) for k, v in blocks.items()}
        resid = {k: np.concatenate(v[1]) for k, v in blocks.items()}
        dw = np.vstack([design[k] * np.sqrt(w) for k, w in weights.items()])
        yw = np.concatenate([resid[k] * np.sqrt(w) for k, w in weights.items()])
        beta = np.linalg.lstsq(dw, yw, rcond=1e-10)[0]  # minimum norm: a common shift of chi is invisible
        scales = {}
        for k in weights:
            rms = float(np.sqrt(np.mean((resid[k] - design[k] @ beta) ** 2)))
            scales[k] = rms if rms > 0 else 1.0
        main = "dipole" if self.is_dipole else "charges"
        gain = np.sqrt(gain2[main][0] / max(gain2[main][1], 1))
        chi_scale = scales[main] / gain if gain > 0 else 1.0
        return beta, scales, float(chi_scale)

    def fit(self, data: Dataset) -> "QEqNNModel":
        """Train on a Dataset whose Target is this model's (charges or dipoles). Returns self."""
        check_training_data(self.target, data, why="(one is held out for validation)")
        t0 = time.perf_counter()
        cfg, tc, t = self.config, self.train_config, self.target
        self._apply_threads()
        self._join_distributed()
        frames = data.frames
        total = structure_states(frames)[:, 0]  # validates charge and multiplicity
        self.species = data.species
        graphs = build_graphs(frames, self.species, self.net_config.cutoff, progress=self.progress and distributed.is_main(),
                              global_state=self.net_config.global_state)
        q_ref, mu_ref, weights = self._references(data, total)

        j0 = None
        params = self.params
        if cfg.learn_hardness:  # start from qeq.hardness where given, else hardness_init
            given = QEqParams.from_dict(cfg.qeq).hardness_of(np.array(self.species))
            j0 = np.where(given > 0, given, cfg.hardness_init)
            params = QEqParams.from_dict({**cfg.qeq, "hardness": {chemical_symbols[z]: float(j) for z, j in zip(self.species, j0)}})
        maps = self._maps(frames, total, params)
        items = qeq_items(maps, self._species_index(frames), self.dipole_factor, cfg.learn_hardness, q_ref, mu_ref)
        train_idx, val_idx = random_split(len(data), tc.val_fraction, self.seed)
        g_tr, g_va = [graphs[i] for i in train_idx], [graphs[i] for i in val_idx]
        it_tr, it_va = [items[i] for i in train_idx], [items[i] for i in val_idx]
        beta, scales, chi_scale = self._initial_scales(it_tr, weights)
        self.avg_num_neighbors = max(1.0, float(sum(g.n_edges for g in g_tr) / sum(g.n_atoms for g in g_tr)))

        torch.manual_seed(self.seed)
        net = self._new_net(j0)
        with torch.no_grad():
            net.network.scale.fill_(chi_scale)
            net.network.shift[:, 0] = torch.as_tensor(beta)
        fp = _fingerprint(data.fingerprint(), asdict(cfg), self.net_config.to_dict(), t.to_dict())
        cb = None if self.on_epoch_end is None else (lambda e: self.on_epoch_end(0, e))
        trainer = Trainer(net, tc, None, None, None, None, seed=self.seed, device=self.device,
                          checkpoint_dir=f"{self.checkpoint_dir}/member0" if self.checkpoint_dir else None,
                          resume=self.resume, progress=self.progress, fingerprint=fp, on_epoch_end=cb,
                          loss=QEqLoss(weights, scales, self.device))
        summary = trainer.fit(g_tr, it_tr, g_va, it_va)
        net.eval()
        self.net = net
        if cfg.learn_hardness:
            j = net.hardness().detach().cpu().numpy()
            self.config.qeq = {**cfg.qeq, "hardness": {chemical_symbols[z]: float(v) for z, v in zip(self.species, j)}}
            self.params = QEqParams.from_dict(self.config.qeq)
        self.metadata = {"trained_on": sorted(weights), "loss_scales": scales, "chi_scale_eV": chi_scale}
        self._fit_uncertainty(data, total, train_idx, val_idx, g_tr, weights, scales)
        self._finish_metadata(data, train_idx, val_idx, summary, t0)
        return self

    def _fit_uncertainty(self, data, total, train_idx, val_idx, g_tr, weights, scales) -> None:
        """LLPR through QEq: fit on the training split, calibrate on the validation split."""
        self.llpr = None
        if self.train_config.uncertainty != "llpr":
            return
        frames_tr = [data.frames[i] for i in train_idx]
        maps_tr = self._maps(frames_tr, total[train_idx])
        _, g = self._chi(g_tr, features=True)
        main = "dipole" if self.is_dipole else "charges"
        rw = {k: np.sqrt(w) / scales[k] for k, w in weights.items()}
        self.llpr = QEqLLPR.fit(maps_tr, g, self.dipole_factor, rw, main, self.train_config.llpr_regularization)
        frames_va = [data.frames[i] for i in val_idx]
        chi, g, maps = self._run(frames_va, features=True)
        q = maps.charges(chi)
        q_var, mu_cov = self.llpr.raw(maps, g, self.dipole_factor)
        alpha2 = {}
        if "dipole" in weights:
            err2 = np.mean((maps.dipoles(q, self.dipole_factor) - data.values[val_idx]) ** 2, axis=1, keepdims=True)
            alpha2["dipole"] = float(unc.calibrate(np.einsum("nkk->n", mu_cov)[:, None] / 3, err2)[0])
        if "charges" in weights:
            q_ref, _, _ = self._references(data.subset(val_idx), total[val_idx])
            alpha2["charges"] = float(unc.calibrate(q_var[:, None], ((q - q_ref) ** 2)[:, None])[0])
        self.llpr.alpha2 = alpha2

    def _finish_metadata(self, data, train_idx, val_idx, summary, t0) -> None:
        from psilearn.metrics.regression import calibration, regression_metrics

        t = self.target
        va = data.subset(val_idx)
        pred = self.predict(va.frames, return_std=self.llpr is not None)
        calib = None
        if self.llpr is not None:
            calib = {"method": "llpr through QEq, scale fitted on the validation split (in-sample for the scale)",
                     **calibration(va.values, pred.values, pred.std)}
        self.metadata.update(self.training_record(data, t0, **{
            "n_train_structures": len(train_idx),
            "n_validation_structures": len(val_idx),
            "n_train_samples": int(len(data.subset(train_idx).values)),
            "charges_key": self.config.charges_key if "charges" in self.metadata["trained_on"] and self.is_dipole else "",
            "n_parameters": int(sum(p.numel() for p in self.net.parameters())),
            "members": [summary],
            "history": summary["history"],
            "hardness_eV": {chemical_symbols[z]: float(v) for z, v in zip(self.species, self.params.hardness_of(np.array(self.species)))},
            "heldout_metrics": {"method": f"validation split ({len(val_idx)} structures, used for early stopping)",
                                **regression_metrics(t, t.to_irreps(va.values), pred.irreps)},
            "calibration": calib,
        }))

    # ---- prediction ------------------------------------------------------------------------------
    @torch.no_grad()
    def _chi(self, graphs: list[Graph], features: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """chi (n_atoms_total,) eV/e, float64, and optionally the readout's invariant features (n_atoms_total, mul)."""
        net = self.net
        net.eval()
        bs = self.train_config.predict_batch_size
        chi, feats = [], []
        for s in range(0, len(graphs), bs):
            b = collate(graphs[s : s + bs], self.device, self.dtype)
            f = net.network.features(b)
            chi.append(net(b, f).double().cpu().numpy())
            if features:
                feats.append(unc.block_features(net.network, f, (0, 1))[:, 0, :].double().cpu().numpy())
        return np.concatenate(chi), (np.concatenate(feats) if features else None)

    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool) -> QEqPrediction:
        """Predict the Target, charges (e), dipoles and energies for ``frames`` (as the kernel
        model: ``values``/``std`` the Target, ``charges`` (n_atoms,), ``dipoles`` (n_struct, 3) in
        the dipole Target's units or e*Angstrom, ``chi`` (n_atoms,) eV/e, energies eV)."""
        want_std = (return_std or return_cov) and self.llpr is not None
        chi, g, maps = self._run(frames, features=want_std)
        q = maps.charges(chi)
        mu = maps.dipoles(q, self.dipole_factor)
        energy = np.array([sys.energy(q[maps.atoms_of(s)], chi[maps.atoms_of(s)]) for s, sys in enumerate(maps.systems)])
        e_es = np.array([sys.electrostatic_energy(q[maps.atoms_of(s)]) for s, sys in enumerate(maps.systems)])
        q_var, mu_cov = np.zeros(len(q)), np.zeros((len(maps), 3, 3))
        if want_std:
            q_var, mu_cov = self.llpr.predict(maps, g, self.dipole_factor)
        t = self.target
        values, cov = (mu, mu_cov) if self.is_dipole else (q[:, None], q_var[:, None, None])
        return QEqPrediction.from_target(
            t, values, cov, return_cov,
            charges=q, charges_std=np.sqrt(np.clip(q_var, 0.0, None)), dipoles=mu,
            dipoles_std=np.sqrt(np.clip(np.einsum("nkk->nk", mu_cov), 0.0, None)), chi=chi, energy=energy,
            electrostatic_energy=e_es, charges_name=self.charges_name, dipole_name=t.key if self.is_dipole else "qeq_dipole",
        )

    def posterior_factors(self, frames: list[Atoms]) -> list[tuple[np.ndarray, float]] | None:
        """The LLPR-through-QEq joint posterior across samples (:func:`.nn_posterior.qeq_llpr_factors`)."""
        from psilearn.models.qeq.nn_posterior import qeq_llpr_factors

        return qeq_llpr_factors(self, frames)

    def _run(self, frames, features: bool = False) -> tuple[np.ndarray, np.ndarray | None, QEqMaps]:
        """Checked inputs -> chi (n_atoms_total,) eV/e, readout features (or None) and the QEq maps."""
        if self.net is None:
            raise RuntimeError("model is not fitted")
        self._apply_threads()
        total = structure_states(frames)[:, 0]  # validates charge and multiplicity
        graphs = build_graphs(frames, self.species, self.net_config.cutoff, progress=False,
                              global_state=self.net_config.global_state)
        chi, g = self._chi(graphs, features=features)
        return chi, g, self._maps(frames, total)

    # ---- persistence -----------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict]:
        """The network weights as a safetensors blob (``member0.safetensors``, uint8) and the LLPR matrix."""
        if self.net is None:
            raise RuntimeError("model is not fitted")
        arrays = {"member0.safetensors": weights_blob(self.net)}
        if self.llpr is not None:
            arrays["llpr/inv"] = self.llpr.inv
        meta = {
            "nn": self.net_config.to_dict(),
            "nn_train": self.train_config.to_dict(),
            "config": asdict(self.config),
            "seed": self.seed,
            "species": self.species,
            "avg_num_neighbors": self.avg_num_neighbors,
            "llpr": None if self.llpr is None else {"main": self.llpr.main, "alpha2": self.llpr.alpha2},
            "units": {"chi": "eV/e", "hardness": "eV/e^2", "charges": "e", "positions": "Angstrom", "energy": "eV",
                      "dipoles": self.target.units if self.is_dipole else "e*Angstrom", "dipole_origin": self.config.origin},
        }
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> "QEqNNModel":
        model = cls(Target.from_dict(meta["target"]), NetworkConfig.from_dict(meta["nn"]), TrainConfig.from_dict(meta["nn_train"]),
                    QEqNNConfig.from_dict(meta["config"]), seed=int(meta["seed"]))
        if model.train_config.device != "cpu" and not torch.cuda.is_available():
            model.train_config.device = "cpu"  # trained on a GPU, used here on a CPU
        model.species = [int(z) for z in meta["species"]]
        model.avg_num_neighbors = float(meta["avg_num_neighbors"])
        model.metadata = meta["training"]
        hardness0 = np.ones(len(model.species)) if model.config.learn_hardness else None
        net = model._new_net(hardness0).to(device=model.device, dtype=model.dtype)
        model.net = load_weights(net, arrays["member0.safetensors"])
        if meta.get("llpr"):
            model.llpr = QEqLLPR(arrays["llpr/inv"], meta["llpr"]["main"], {k: float(v) for k, v in meta["llpr"]["alpha2"].items()})
        return model

    def config_dict(self) -> dict:
        return asdict(self.config)
