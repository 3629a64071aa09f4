"""Model files: a directory holding ``model.json`` (metadata) and ``arrays.npz`` (numbers).

Nothing is ever unpickled: arrays load with ``allow_pickle=False`` and every array's SHA-256 is
recorded in the metadata, together with a hash of the metadata itself, so a truncated, edited or
foreign file is refused with a clear error instead of silently giving wrong predictions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from psilearn._version import __version__
from psilearn.data.outputs import OLD_TAG, UMASK, make_parent, remove_stale_temporaries, stale_temporaries, temporary_name

log = logging.getLogger("psilearn")

FORMAT = "psilearn-model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file that is missing, corrupt, tampered with, or not a psilearn model."""


def _sha(arr: np.ndarray) -> str:
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256(str(a.dtype).encode() + str(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def _meta_sha(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "integrity"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def write_model(path, meta: dict, arrays: dict[str, np.ndarray], overwrite: bool = False) -> None:
    """Write atomically: the directory appears complete or not at all. An existing model at ``path``
    is replaced only with ``overwrite`` (and then the old one stays in place until the new one is
    complete); anything else at ``path`` is never replaced."""
    path = Path(path)
    _recover_interrupted(path)  # first: it may put back a model a killed writer had set aside
    _check_target(path, overwrite)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "psilearn_version": __version__, **meta}
    meta["integrity"] = {"arrays_sha256": {k: _sha(v) for k, v in arrays.items()}}
    meta["integrity"]["metadata_sha256"] = _meta_sha(meta)
    make_parent(path)
    tmp = temporary_name(path)
    tmp.mkdir()
    os.chmod(tmp, 0o777 & ~UMASK)
    old = None
    try:
        with open(tmp / "model.json", "w") as fh:
            json.dump(meta, fh, indent=1, sort_keys=True)
        np.savez(tmp / "arrays.npz", **arrays)
        _check_target(path, overwrite)  # again: the fit may have taken hours
        if path.exists():
            old = temporary_name(path, OLD_TAG)
            old.mkdir()
            os.replace(path, old / "model")  # a crash from here on leaves the old model in `old`, not lost
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and path.exists():
            shutil.rmtree(old, ignore_errors=True)


def _recover_interrupted(path: Path) -> None:
    """Clean up after a writer of ``path`` that was killed (SIGKILL, power loss): remove its
    half-written directory, and if it died between moving the old model aside and putting the new
    one in place, move the old model back (it is never deleted while it is the only copy)."""
    remove_stale_temporaries(path)
    for old in stale_temporaries(path, OLD_TAG):
        if not path.exists() and (old / "model" / "model.json").exists():
            os.replace(old / "model", path)
            log.warning("%s: restored the previous model left aside by an interrupted write", path)
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)


def _check_target(path: Path, overwrite: bool) -> None:
    if not path.exists():
        return
    if not path.is_dir() or not (path / "model.json").exists():
        raise ModelFileError(f"{path}: exists and is not a psilearn model; refusing to overwrite")
    if not overwrite:
        raise ModelFileError(f"{path}: a model already exists there; pass overwrite=True (--overwrite) to replace it")


def read_model(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a model directory; raises ModelFileError with the reason."""
    path = Path(path)
    mfile, afile = path / "model.json", path / "arrays.npz"
    if not path.exists():
        aside = [p / "model" for p in stale_temporaries(path, OLD_TAG) if (p / "model" / "model.json").exists()]
        if aside:
            raise ModelFileError(f"{path}: no such model, but an interrupted write left the previous one in {aside[0]} "
                                 f"(writing {path.name} again restores it first)")
        raise ModelFileError(f"{path}: no such model")
    if not path.is_dir() or not mfile.exists():
        raise ModelFileError(f"{path}: not a psilearn model (expected a directory with model.json and arrays.npz)")
    try:
        meta = json.loads(mfile.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{mfile}: corrupt metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a psilearn model (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format version {meta.get('format_version')} is not supported (this psilearn reads {FORMAT_VERSION})")
    integ = meta.get("integrity") or {}
    if integ.get("metadata_sha256") != _meta_sha(meta):
        raise ModelFileError(f"{mfile}: metadata does not match its checksum (edited or corrupted)")
    try:
        with np.load(afile, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise ModelFileError(f"{afile}: missing") from None
    except Exception as exc:  # zipfile/npy errors on truncation, pickle refusal on object arrays
        raise ModelFileError(f"{afile}: unreadable ({type(exc).__name__}: {exc})") from None
    expected = integ.get("arrays_sha256", {})
    if set(expected) != set(arrays):
        raise ModelFileError(f"{afile}: array set differs from the metadata (missing or extra arrays)")
    for k, v in arrays.items():
        if _sha(v) != expected[k]:
            raise ModelFileError(f"{afile}: array {k!r} does not match its checksum (tampered or corrupted)")
    return meta, arrays


def load(path):
    """Load any psilearn model file; the kind recorded in it selects the class (models.registry)."""
    from psilearn.models.registry import MODEL_KINDS, model_class

    meta, arrays = read_model(path)
    kind = meta.get("model")
    if kind not in MODEL_KINDS:
        raise ModelFileError(f"{path}: unknown model kind {kind!r} (known: {', '.join(sorted(MODEL_KINDS))})")
    try:
        return model_class(kind).from_state(meta, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: inconsistent model contents ({type(exc).__name__}: {exc})") from None
