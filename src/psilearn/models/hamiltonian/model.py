"""The ``hamiltonian`` model kind: an equivariant network predicting AO Fock/Kohn-Sham matrices.

fit(HamiltonianDataset) -> self; predict(frames) -> HamiltonianPrediction (Hartree, PySCF's AO
order, symmetric). A random ``nn_train.val_fraction`` of the structures is held out for early
stopping and the held-out metrics stored in the model file (entry MAE, occupied orbital-energy MAE,
gap MAE, orbital-coefficient cosine; :mod:`psilearn.metrics.hamiltonian`). Pairs of atoms farther
apart than ``nn.cutoff`` get zero blocks; the error that alone causes (the labels with those blocks
zeroed) is measured on the held-out structures and stored as ``cutoff_truncation``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

from psilearn.data.hamiltonian import check_prediction_inputs, truncated
from psilearn.data.prediction import HamiltonianPrediction
from psilearn.data.splits import random_split
from psilearn.metrics.hamiltonian import closed_shell_occupied, dataset_metrics
from psilearn.models._torch import distributed
from psilearn.models._torch.graph import build_graphs, collate
from psilearn.models._torch.run_options import TorchRunOptions
from psilearn.models._torch.train import Trainer
from psilearn.models._torch.weights import build_in_dtype, load_weights, weights_blob
from psilearn.models.base import Model
from psilearn.models.checks import check_training_data
from psilearn.models.hamiltonian.config import HamiltonianConfig, HamiltonianNetConfig, HamiltonianTrainConfig
from psilearn.models.hamiltonian.layout import collate_index, structure_index
from psilearn.models.hamiltonian.loss import HamiltonianLoss, structure_record
from psilearn.models.hamiltonian.network import HamiltonianNetwork
from psilearn.models.hamiltonian.normalise import head_statistics
from psilearn.targets.hamiltonian import HamiltonianTarget


@dataclass
class HamiltonianModel(TorchRunOptions, Model):
    """Equivariant node/edge network for a :class:`~psilearn.targets.HamiltonianTarget`.

    >>> model = HamiltonianModel(target).fit(load_hamiltonian_dataset("labelled.xyz"))
    >>> model.predict(frames).matrices[0]   # (n_ao, n_ao) Hartree, PySCF's AO order
    """

    target: HamiltonianTarget
    net_config: HamiltonianNetConfig = field(default_factory=HamiltonianNetConfig)
    train_config: HamiltonianTrainConfig = field(default_factory=HamiltonianTrainConfig)
    config: HamiltonianConfig = field(default_factory=HamiltonianConfig)
    seed: int = 0
    progress: bool = False
    checkpoint_dir: str | None = None
    resume: bool = False
    on_epoch_end: object = None  # callback(member, epoch)
    species: list[int] = field(default_factory=list)
    net: HamiltonianNetwork | None = None
    avg_num_neighbors: float = 1.0
    metadata: dict = field(default_factory=dict)

    kind: ClassVar[str] = "hamiltonian"
    config_options: ClassVar[dict[str, type]] = {"nn": HamiltonianNetConfig, "nn_train": HamiltonianTrainConfig,
                                                 "hamiltonian": HamiltonianConfig}
    iterative: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if getattr(self.target, "kind", None) != "hamiltonian":
            raise ValueError(f"the hamiltonian model learns hamiltonian targets (psilearn fit --hamiltonian), not {self.target.describe()}")

    @classmethod
    def from_options(cls, target, options: dict, seed: int, progress: bool) -> "HamiltonianModel":
        return cls(target, options["nn"], options["nn_train"], options["hamiltonian"], seed=seed, progress=progress)

    @property
    def cutoff(self) -> float:
        """Angstrom: pairs closer than this get predicted blocks (``nn.cutoff``)."""
        return self.net_config.cutoff

    @property
    def elements(self) -> list[str]:
        return [chemical_symbols[z] for z in self.species]

    def _new_net(self) -> HamiltonianNetwork:
        return build_in_dtype(lambda: HamiltonianNetwork(self.net_config, self.config, self.target, self.elements,
                                                         self.avg_num_neighbors), self.dtype, self.device)

    def check_elements(self, frames: list[Atoms]) -> None:
        """DataError naming file and frame: elements the model never saw, inputs labelled in another
        basis, periodic structures."""
        check_prediction_inputs(frames, self.target, self.kind)
        super().check_elements(frames)

    # ---- fitting -----------------------------------------------------------------------------------
    def fit(self, data) -> "HamiltonianModel":
        """Train on a HamiltonianDataset of this model's target. Returns self."""
        check_training_data(self.target, data, why="(one is held out for validation)")
        t0 = time.perf_counter()
        cfg = self.train_config
        self._apply_threads()
        self._join_distributed()
        self.species = data.species
        graphs = build_graphs(data.frames, self.species, self.net_config.cutoff, progress=self.progress and distributed.is_main())
        index = [structure_index(self.target, a, g) for a, g in zip(data.frames, graphs)]
        tr, va = random_split(len(data), cfg.val_fraction, self.seed)
        self.avg_num_neighbors = max(1.0, float(sum(graphs[i].n_edges for i in tr) / sum(graphs[i].n_atoms for i in tr)))
        torch.manual_seed(self.seed)
        self.net = self._new_net()
        stats = head_statistics(self.target, data, graphs, tr)
        with torch.no_grad():
            for name, (shift, scale) in stats.items():
                getattr(self.net, f"shift_{name}").copy_(torch.as_tensor(shift))
                getattr(self.net, f"scale_{name}").copy_(torch.as_tensor(scale))
        n_eig = lambda a: closed_shell_occupied(a.numbers, a.info.get("charge", 0)) + self.config.eigenvalue_virtual  # noqa: E731
        records = [structure_record(index[i], data.matrix(i).ravel(), data.overlap(i).ravel(),
                                    n_eig(data.frames[i]) if self.config.eigenvalue_weight > 0 else 0) for i in range(len(data))]
        loss = HamiltonianLoss(self.config.loss_unit, self.config.eigenvalue_weight)
        trainer = Trainer(self.net, cfg, None, None, None, None, seed=self.seed, device=self.device,
                          checkpoint_dir=self.checkpoint_dir, resume=self.resume, progress=self.progress,
                          fingerprint=data.fingerprint(), loss=loss,
                          on_epoch_end=None if self.on_epoch_end is None else (lambda e: self.on_epoch_end(0, e)))
        summary = trainer.fit([graphs[i] for i in tr], [records[i] for i in tr], [graphs[i] for i in va], [records[i] for i in va])
        self.net.eval()
        held = self._heldout(data, va, [graphs[i] for i in va], [index[i] for i in va])
        self.metadata = {
            "n_train_structures": len(tr), "n_validation_structures": len(va), "n_train_samples": int(len(tr)),
            "training_data_sha256": data.fingerprint(), "training_data": data.name,
            "fit_seconds": round(time.perf_counter() - t0, 3), "composition_baseline": None,
            "n_parameters": int(sum(p.numel() for p in self.net.parameters())),
            "members": [summary], "history": summary["history"], **held,
        }
        return self

    def _heldout(self, data, va, graphs, index) -> dict:
        """Held-out metrics of the validation split, and the cutoff's truncation error on it (Hartree)."""
        held = data.subset(va)
        cut = [truncated(self.target, a, held.matrix(k), self.net_config.cutoff) for k, a in enumerate(held.frames)]
        return {"heldout_metrics": {"method": f"validation split ({len(va)} structures, used for early stopping)",
                                    "units": "Hartree", **dataset_metrics(self._matrices(graphs, index), held)},
                "cutoff_truncation": {"cutoff": self.net_config.cutoff, "units": "Hartree", **dataset_metrics(cut, held)}}

    # ---- prediction --------------------------------------------------------------------------------
    @torch.no_grad()
    def _matrices(self, graphs, index) -> list[np.ndarray]:
        bs = self.train_config.predict_batch_size
        out = []
        for s in range(0, len(graphs), bs):
            gs, ix = graphs[s : s + bs], index[s : s + bs]
            flat = self.net(collate(gs, self.device, self.dtype), collate_index(ix, gs)).double().cpu().numpy()
            starts = np.concatenate([[0], np.cumsum([it.n_ao ** 2 for it in ix])])
            out += [flat[a:b].reshape(it.n_ao, it.n_ao) for a, b, it in zip(starts[:-1], starts[1:], ix)]
        return out

    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool) -> HamiltonianPrediction:
        """Matrices in Hartree; std is None (no uncertainty estimate for this kind yet)."""
        if self.net is None:
            raise RuntimeError("model is not fitted")
        if return_cov:
            raise ValueError("the hamiltonian model has no predictive covariance")
        self._apply_threads()
        graphs = build_graphs(frames, self.species, self.net_config.cutoff)
        index = [structure_index(self.target, a, g) for a, g in zip(frames, graphs)]
        n_pairs = [len(a) * (len(a) - 1) // 2 for a in frames]
        within = [g.n_edges // 2 for g in graphs]
        return HamiltonianPrediction(self._matrices(graphs, index), self.target.basis, None, n_pairs, within)

    # ---- persistence -------------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict]:
        if self.net is None:
            raise RuntimeError("model is not fitted")
        meta = {"nn": self.net_config.to_dict(), "nn_train": self.train_config.to_dict(), "hamiltonian": self.config.to_dict(),
                "seed": self.seed, "species": self.species, "avg_num_neighbors": self.avg_num_neighbors}
        return meta, {"network.safetensors": weights_blob(self.net)}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> "HamiltonianModel":
        model = cls(HamiltonianTarget.from_dict(meta["target"]), HamiltonianNetConfig.from_dict(meta["nn"]),
                    HamiltonianTrainConfig.from_dict(meta["nn_train"]), HamiltonianConfig.from_dict(meta["hamiltonian"]),
                    seed=int(meta["seed"]))
        if model.train_config.device != "cpu" and not torch.cuda.is_available():
            model.train_config.device = "cpu"
        model.species = [int(z) for z in meta["species"]]
        model.avg_num_neighbors = float(meta["avg_num_neighbors"])
        model.metadata = meta["training"]
        model.net = load_weights(model._new_net().to(device=model.device, dtype=model.dtype), arrays["network.safetensors"])
        return model
