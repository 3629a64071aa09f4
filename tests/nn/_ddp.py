"""Run a function in two gloo processes configured as ``torchrun --nproc_per_node 2`` would
(RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and collect what each returns."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out: str, fn, args: tuple) -> None:
    import torch

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from psilearn.models._torch import distributed

    result = fn(rank, *args)
    torch.save(result, f"{out}.{rank}")
    distributed.shutdown()


def run_two(fn, args: tuple, tmp: Path) -> list:
    """[fn(0, *args), fn(1, *args)], run at the same time in two processes (``fn`` must be importable)."""
    import torch
    import torch.multiprocessing as mp

    out = str(tmp / "rank")
    # fork: the children inherit the imported modules (torch, e3nn, psilearn) instead of importing them again
    mp.start_processes(_worker, args=(free_port(), out, fn, args), nprocs=2, start_method="fork")
    return [torch.load(f"{out}.{r}", weights_only=False) for r in range(2)]
