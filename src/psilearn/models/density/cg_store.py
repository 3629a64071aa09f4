"""Where the CG solve keeps what one product A w needs: the training structures' features and metrics.

Per structure s: per (Z, l) the stacked RKHS features Phi (n_atoms_Z (2l+1), D_{Z,l}) and their rows
(n_atoms_Z, n_l, 2l+1) in the structure's coefficient vector, and the metric S_s (n_coef_s^2). Both
stores hand them back as :class:`Chunk` s of consecutive structures, rows local to the chunk.

* :class:`MemoryStore` keeps them in RAM (one chunk: everything, concatenated once per (Z, l)):
  memory grows with the data, ~0.8 MB per methanol structure (100 sparse environments per element).
* :class:`DiskStore` appends them to binary files in a temporary directory (``tempfile.mkdtemp``
  under ``directory``, default the system's temp dir; deleted by :meth:`DiskStore.close` or when the
  store is garbage-collected) and reads them back chunk by chunk (``np.fromfile``, at most
  ``chunk_bytes`` of structures per chunk, a single structure if larger). RAM holds one chunk and
  O(n_structures x n_(Z,l)) integers of bookkeeping, so it does not grow with the data; each product
  A w reads the files once (the OS page cache keeps them in RAM if it can; otherwise from disk).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass

import numpy as np

#: bytes of structures read per chunk by the disk store (features, rows and metrics)
CHUNK_BYTES = 64 * 2**20


@dataclass
class Chunk:
    """Consecutive structures: ``feats[(Z, l)] = (Phi (rows, D), rows (n_atoms_Z, n_l, 2l+1))``
    with rows into the chunk's concatenated coefficients (``n_coef`` long), and ``metrics`` [(offset, S_s)]."""

    feats: dict
    metrics: list
    n_coef: int


def _structure_bytes(stacked: dict, rows: dict, n_coef: int) -> int:
    return 8 * (n_coef * n_coef + sum(f.size for f in stacked.values()) + sum(r.size for r in rows.values()))


class MemoryStore:
    """Every structure in RAM (the concatenation per (Z, l) is done once, at the first :meth:`chunks`)."""

    def __init__(self) -> None:
        self.feats: dict = {}
        self.rows: dict = {}
        self.metrics: list = []
        self.offsets: list = []
        self.n_coef = 0

    def append(self, stacked: dict, rows: dict, s: np.ndarray) -> None:
        """One structure: ``stacked`` {(Z, l): Phi}, ``rows`` {(Z, l): rows into its own coefficients}, metric ``s``."""
        for key, f in stacked.items():
            self.feats.setdefault(key, []).append(f)
            self.rows.setdefault(key, []).append(rows[key] + self.n_coef)
        self.metrics.append(s)
        self.offsets.append(self.n_coef)
        self.n_coef += len(s)

    def chunks(self):
        for key in self.feats:
            if len(self.feats[key]) > 1:  # one (Z, l) at a time: the transient is one key's features
                self.feats[key] = [np.concatenate(self.feats[key])]
                self.rows[key] = [np.concatenate(self.rows[key])]
        if self.metrics:
            yield Chunk({key: (self.feats[key][0], self.rows[key][0]) for key in self.feats},
                        list(zip(self.offsets, self.metrics)), self.n_coef)

    def nbytes(self) -> int:
        """Bytes held (features, rows, metrics)."""
        return sum(x.nbytes for d in (self.feats, self.rows) for v in d.values() for x in v) + sum(s.nbytes for s in self.metrics)

    def close(self) -> None:
        self.feats, self.rows, self.metrics, self.offsets = {}, {}, [], []


class DiskStore:
    """Structures appended to files in a temporary directory, read back in chunks (module docstring)."""

    def __init__(self, directory: str | None = None, chunk_bytes: int = CHUNK_BYTES) -> None:
        if directory:
            os.makedirs(directory, exist_ok=True)
        self.path = tempfile.mkdtemp(prefix="psilearn-density-cg-", dir=directory or None)
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.path, True)
        self.chunk_bytes = int(chunk_bytes)
        self.index: list[tuple[int, dict, int]] = []  # per structure: (n_coef, {key: n_atoms}, bytes)
        self.shapes: dict = {}  # key -> (D, (n_l, 2l+1))
        self.n_coef = 0
        self.disk_bytes = 0
        self._readers: dict = {}

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def _write(self, name: str, array: np.ndarray) -> None:
        with open(self._file(name), "ab") as fh:
            np.ascontiguousarray(array).tofile(fh)

    def append(self, stacked: dict, rows: dict, s: np.ndarray) -> None:
        """One structure, as :meth:`MemoryStore.append`."""
        for fh in self._readers.values():  # appending after a product: reopen for reading
            fh.close()
        self._readers = {}
        for (z, l), f in stacked.items():
            self._write(f"phi_{z}_{l}.f8", np.asarray(f, dtype=np.float64))
            self._write(f"rows_{z}_{l}.i8", np.asarray(rows[(z, l)], dtype=np.int64))
            self.shapes[(z, l)] = (f.shape[1], rows[(z, l)].shape[1:])
        self._write("metric.f8", np.asarray(s, dtype=np.float64))
        size = _structure_bytes(stacked, rows, len(s))
        self.index.append((len(s), {key: rows[key].shape[0] for key in stacked}, size))
        self.n_coef += len(s)
        self.disk_bytes += size

    def _read(self, name: str, dtype, start: int, count: int) -> np.ndarray:
        """``count`` items from item ``start`` of a file (its handle kept open between products)."""
        fh = self._readers.get(name)
        if fh is None:
            fh = self._readers[name] = open(self._file(name), "rb")  # noqa: SIM115 - closed by close()
        fh.seek(start * np.dtype(dtype).itemsize)
        return np.fromfile(fh, dtype=dtype, count=count)

    def _groups(self):
        """Runs [first, stop) of consecutive structures of at most ``chunk_bytes`` (at least one)."""
        first, size = 0, 0
        for i, (_, _, b) in enumerate(self.index):
            if i > first and size + b > self.chunk_bytes:
                yield first, i
                first, size = i, 0
            size += b
        if first < len(self.index):
            yield first, len(self.index)

    def chunks(self):
        atom_pos = dict.fromkeys(self.shapes, 0)  # atoms of (Z, l) before the chunk
        metric_pos = 0
        for first, stop in self._groups():
            sizes = np.array([n for n, _, _ in self.index[first:stop]])
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            feats = {}
            for key, (d, shape) in self.shapes.items():
                per = np.array([atoms.get(key, 0) for _, atoms, _ in self.index[first:stop]])
                n_at = int(per.sum())
                if n_at == 0:
                    continue
                z, l = key
                m = int(np.prod(shape))
                phi = self._read(f"phi_{z}_{l}.f8", np.float64, atom_pos[key] * (2 * l + 1) * d, n_at * (2 * l + 1) * d)
                rows = self._read(f"rows_{z}_{l}.i8", np.int64, atom_pos[key] * m, n_at * m).reshape(n_at, *shape)
                rows += np.repeat(offsets, per)[:, None, None]
                feats[key] = (phi.reshape(-1, d), rows)
                atom_pos[key] += n_at
            flat = self._read("metric.f8", np.float64, metric_pos, int((sizes**2).sum()))
            metric_pos += flat.size
            ends = np.cumsum(sizes**2)
            metrics = [(int(o), flat[e - n * n : e].reshape(n, n)) for o, n, e in zip(offsets, sizes, ends)]
            yield Chunk(feats, metrics, int(sizes.sum()))

    def nbytes(self) -> int:
        """Bytes held in RAM between products (the index; a chunk is read per product and dropped)."""
        return 64 * len(self.index) * (1 + len(self.shapes))

    def close(self) -> None:
        """Close the files and delete them (also done when the store is garbage-collected)."""
        for fh in self._readers.values():
            fh.close()
        self._readers = {}
        self._cleanup()
