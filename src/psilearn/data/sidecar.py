"""Large per-structure matrices beside an extxyz file, in one npz (the compact store of big labels).

An AO Hamiltonian and overlap are n_ao^2 numbers each: as extxyz text a 300-AO molecule is already
~3 MB per frame, and a 1000-AO one ~40 MB. :func:`psilearn.data.io.write_structures` moves every
``info`` array of more than :data:`INLINE_LIMIT` numbers under :data:`SIDECAR_KEYS` into
``OUT.xyz.arrays.npz`` (binary float64, keys ``"<frame>/<name>"``, written atomically with the
file, loaded later without pickle) and leaves ``sidecar = "OUT.xyz.arrays.npz"`` and
``sidecar_frame = <frame>`` in the frame's info; :func:`psilearn.data.io.read_structures` puts them
back, so every reader sees the same labels whatever their size. A missing or foreign npz is a one-line
DataError naming the file and frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ase import Atoms

from psilearn.data.errors import DataError

#: info arrays that may move to the npz (the matrices of the hamiltonian labels and predictions)
SIDECAR_KEYS = ("hamiltonian", "overlap", "hamiltonian_std", "hamiltonian_reference", "overlap_reference")
#: arrays of more numbers than this go to the npz (a 300 x 300 matrix stays inline)
INLINE_LIMIT = 300 * 300
SUFFIX = ".arrays.npz"


def sidecar_path(path: str | os.PathLike) -> str:
    return f"{os.fspath(path)}{SUFFIX}"


def split_large(frames: list[Atoms], path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Move large arrays out of ``frames`` (modified in place) and return them, keyed "frame/name"."""
    arrays: dict[str, np.ndarray] = {}
    name = Path(sidecar_path(path)).name
    for i, a in enumerate(frames):
        moved = False
        for key in SIDECAR_KEYS:
            v = a.info.get(key)
            if v is not None and np.size(v) > INLINE_LIMIT:
                arrays[f"{i}/{key}"] = np.asarray(a.info.pop(key), dtype=np.float64)
                moved = True
        if moved:
            a.info["sidecar"], a.info["sidecar_frame"] = name, i
        else:
            a.info.pop("sidecar", None)
            a.info.pop("sidecar_frame", None)
    return arrays


def restore_large(frames: list[Atoms], path: str) -> list[Atoms]:
    """Put the arrays of frames that name a sidecar back into their info (in place; returns frames)."""
    wanted = [a for a in frames if "sidecar" in a.info]
    if not wanted:
        return frames
    cache: dict[str, np.lib.npyio.NpzFile] = {}
    for a in wanted:
        where = f"{path}, frame {a.info.get('sidecar_frame')}"
        npz = Path(path).parent / str(a.info.pop("sidecar"))
        frame = a.info.pop("sidecar_frame", None)
        if not npz.exists():
            raise DataError(f"{where}: its large labels are in {npz.name}, which is missing (keep it beside {Path(path).name})")
        if str(npz) not in cache:
            try:
                cache[str(npz)] = np.load(npz, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataError(f"{npz}: not a readable array file ({type(exc).__name__}: {exc})") from None
        data = cache[str(npz)]
        keys = [k for k in data.files if k.split("/", 1)[0] == str(frame)]
        if not keys:
            raise DataError(f"{where}: {npz.name} holds no arrays of frame {frame} (was it written with another file?)")
        for k in keys:
            a.info[k.split("/", 1)[1]] = data[k]
    return frames
