"""Data-parallel training over processes and GPUs (PyTorch DDP), launched by ``torchrun`` or ``srun``.

A run is distributed when the environment says so: ``WORLD_SIZE`` > 1 with ``RANK`` and
``LOCAL_RANK`` (set by ``torchrun``; under SLURM also derived from ``SLURM_PROCID``/``SLURM_NTASKS``/
``SLURM_LOCALID`` when ``MASTER_ADDR`` is set). :func:`setup` then joins the process group (gloo on
CPUs, nccl on GPUs, one GPU per process: ``cuda:LOCAL_RANK``).

Every process reads the data and builds all neighbour graphs (the same seeded split and normalisation
statistics everywhere, so no statistic needs a reduction); the training loop splits each global batch
of ``batch_size`` structures over the processes and DistributedDataParallel all-reduces the gradients
(:class:`~psilearn.models._torch.train.Trainer`). Only rank 0 writes checkpoints and model files and
shows progress; decisions that depend on a clock (the time budget) are broadcast from rank 0.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def _slurm_env() -> None:
    """Fill RANK/WORLD_SIZE/LOCAL_RANK from SLURM's task variables (``srun`` without torchrun)."""
    if "WORLD_SIZE" in os.environ or "SLURM_NTASKS" not in os.environ or "MASTER_ADDR" not in os.environ:
        return
    os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
    os.environ["RANK"] = os.environ.get("SLURM_PROCID", "0")
    os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")
    os.environ.setdefault("MASTER_PORT", "29500")


def launched() -> bool:
    """True when this process is one of several of a distributed launch (torchrun, or srun with MASTER_ADDR)."""
    _slurm_env()
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """True on rank 0 and in a non-distributed run: the process that writes files and prints."""
    if active():
        return dist.get_rank() == 0
    return not launched() or int(os.environ.get("RANK", "0")) == 0


def local_device(device: torch.device) -> torch.device:
    """One GPU per process: 'cuda' (no index) becomes cuda:LOCAL_RANK in a distributed launch (modulo
    the visible GPUs: under ``srun --gpus-per-task=1`` each process sees only its own, as cuda:0)."""
    if device.type == "cuda" and device.index is None and launched():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % max(1, torch.cuda.device_count()))
    return device


def setup(device: torch.device) -> None:
    """Join the process group of a distributed launch (no-op otherwise or when already joined):
    nccl for CUDA devices, gloo for CPUs. MASTER_ADDR/MASTER_PORT come from the launcher."""
    if not launched() or not dist.is_available() or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)


def wrap(net: torch.nn.Module, device: torch.device, find_unused: bool = False) -> torch.nn.Module:
    """``net`` for training: DistributedDataParallel in a process group, else unchanged. Buffers
    (output scale and shift) are equal everywhere by construction: synced once, not at every forward.
    ``find_unused``: some parameters may get no gradient from a batch (DDP then looks for them each
    step; not for parameters used outside ``forward``, such as the qeq-nn hardness)."""
    if not active():
        return net
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None, forward_sync_buffers=False,
                                   find_unused_parameters=find_unused)


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum of ``values`` over all processes (float64)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if active():
        dist.all_reduce(t)
    return t.tolist()


def from_main(values: list[float], device: torch.device) -> list[float]:
    """Rank 0's ``values`` on every process (float64)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if active():
        dist.broadcast(t, src=0)
    return t.tolist()


def shutdown() -> None:
    """Leave the process group (end of a distributed command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
