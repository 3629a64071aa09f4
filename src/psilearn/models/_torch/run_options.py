"""Device, dtype, thread and checkpoint options shared by the torch estimators (``nn``, ``qeq-nn``).

A mixin for dataclass estimators that hold ``train_config`` (:class:`TrainConfig`),
``checkpoint_dir`` and ``resume``: these are options of one training run, not of the model.
"""

from __future__ import annotations

import torch

from psilearn.models._torch import distributed
from psilearn.models._torch.train import resolve_device


class TorchRunOptions:
    """``device``/``dtype`` from the training config, ``set_run_options`` for the CLI flags
    (--device, --checkpoint-dir, --resume), ``_apply_threads`` (``nn_train.threads``) and ``_join_distributed`` (a torchrun launch)."""

    @classmethod
    def has_joint_posterior(cls, options: dict | None = None) -> bool:
        """The networks' joint posterior is their LLPR: none with ``nn_train.uncertainty`` 'ensemble' or 'none'."""
        section = (options or {}).get("nn_train") or {}
        return super().has_joint_posterior(options) and section.get("uncertainty", "llpr") == "llpr"

    @property
    def device(self) -> torch.device:
        """The configured device; in a distributed launch 'cuda' is this process's GPU (cuda:LOCAL_RANK)."""
        return distributed.local_device(resolve_device(self.train_config.device))

    @property
    def dtype(self) -> torch.dtype:
        return self.train_config.torch_dtype

    def set_run_options(self, device: str | None = None, checkpoint_dir: str | None = None, resume: bool = False) -> None:
        """Options of one training run that are not part of the model (CLI: --device, --resume)."""
        if device:
            resolve_device(device)
            self.train_config.device = device
        if checkpoint_dir:
            self.checkpoint_dir = str(checkpoint_dir)
        self.resume = bool(resume)

    def _apply_threads(self) -> None:
        if self.train_config.threads:
            torch.set_num_threads(int(self.train_config.threads))

    def _join_distributed(self) -> None:
        """Under torchrun/srun (WORLD_SIZE > 1): join the process group before training (no-op otherwise)."""
        distributed.setup(self.device)
