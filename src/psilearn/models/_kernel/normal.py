"""Sparse-GP normal equations accumulated batch by batch, in this process or over a Dask cluster.

A sparse kernel channel is fitted from Phi^T Phi (M', M'), Phi^T Y (M', k), |y_j|^2 and the number
of rows (:meth:`psilearn.models._kernel.gpr.SparseGP.from_sums`), and these are sums over rows. So
the N x M' kernel Phi never has to exist: each batch of structures contributes its own rows' sums
and the sums are added (:class:`ChannelSums`). Batches are independent, which is what
:func:`map_batches` distributes: in this process (one batch after the other, with a progress bar),
or as Dask tasks of a client from :func:`dask_client` ('local': a LocalCluster on this machine; else the address of a
running scheduler, e.g. ``tcp://host:8786``, as ``psilearn label --scheduler``). Results come back
in batch order, so the sums are added in the same order as in-process (float64: the same numbers
to rounding).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("psilearn")


@dataclass
class ChannelSums:
    """Sums over the fitted rows of one channel: ``c`` = Phi^T Phi (M', M'), ``r`` = Phi^T Y (M', k),
    ``yy`` = column sums of Y**2 (k,), ``n`` rows. Kernel rows may come in float32; the sums are float64."""

    c: np.ndarray
    r: np.ndarray
    yy: np.ndarray
    n: int

    @classmethod
    def of(cls, phi: np.ndarray, y: np.ndarray) -> "ChannelSums":
        """Sums of one batch: ``phi`` (n, M') kernel rows, ``y`` (n, k) targets."""
        from scipy.linalg.blas import dsyrk

        phi64 = np.asarray(phi, dtype=np.float64)
        if len(phi64) == 0:
            c = np.zeros((phi64.shape[1],) * 2)
        else:  # the upper triangle by BLAS syrk (half the flops of a product), then mirrored
            c = dsyrk(1.0, phi64.T)  # phi64.T is Fortran-ordered: no copy
            c = np.triu(c) + np.triu(c, 1).T
        return cls(c, phi64.T @ y, np.sum(y**2, axis=0), len(y))

    def add(self, other: "ChannelSums") -> "ChannelSums":
        """In-place sum (returns self)."""
        self.c += other.c
        self.r += other.r
        self.yy += other.yy
        self.n += other.n
        return self

    @property
    def nbytes(self) -> int:
        return self.c.nbytes + self.r.nbytes


def batch_bounds(n: int, size: int) -> list[tuple[int, int]]:
    """[(start, stop)] of consecutive batches of ``size`` items covering range(n)."""
    size = max(1, int(size))
    return [(i, min(i + size, n)) for i in range(0, n, size)]


@contextmanager
def dask_client(scheduler: str = ""):
    """A Dask Client for ``scheduler`` ('' -> None: run here; 'local': a LocalCluster of one
    single-threaded worker process per core, closed on exit; else the address of a running
    scheduler). ValueError (one line) when it cannot be reached."""
    if not scheduler:
        yield None
        return
    client, cluster = _client(scheduler)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def map_batches(fn: Callable, shared, args: Sequence[tuple], client=None, progress: bool = False, desc: str = "batches") -> Iterator:
    """``fn(shared, *a)`` for each ``a`` in ``args``, yielded in order: here (``client`` None) or as
    tasks of a Dask ``client`` (:func:`dask_client`; ``shared`` is sent to every worker once)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(args), desc=desc, unit="batch", disable=not progress, leave=False)
    try:
        if client is None:
            for a in args:
                yield fn(shared, *a)
                bar.update()
            return
        common = client.scatter(shared, broadcast=True)
        # a window of tasks in flight, so that finished results do not pile up on the workers
        window = max(2, 2 * len(client.scheduler_info().get("workers", {})))
        futures = [client.submit(fn, common, *a, pure=False) for a in args[:window]]
        for i in range(len(args)):
            if i + window < len(args):
                futures.append(client.submit(fn, common, *args[i + window], pure=False))
            yield futures[i].result()
            futures[i].release()
            futures[i] = None
            bar.update()
    finally:
        bar.close()


def _client(scheduler: str):
    """(Client, LocalCluster or None) for ``scheduler`` ('local' or an address)."""
    from dask.distributed import Client, LocalCluster

    if scheduler != "local":
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError, ValueError) as exc:  # unreachable, or not an address
            raise ValueError(f"cannot connect to Dask scheduler {scheduler!r}: {exc}") from None
    import dask

    workers = max(1, os.cpu_count() or 1)
    # one BLAS thread per worker process (set before the workers import NumPy)
    dask.config.set({f"distributed.nanny.pre-spawn-environ.{v}": 1 for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR)
    log.info("Dask LocalCluster of %d worker processes", workers)
    return Client(cluster), cluster
