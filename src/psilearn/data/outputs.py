"""Writing outputs without losing anything: the one check of output paths, and atomic writes.

Every command that writes goes through here (the CLI declares its inputs and outputs, see
:func:`check_outputs`; the writers use :func:`atomic_write`):

* an output that is one of the command's inputs (paths resolved, ``file.xyz@:10`` specs reduced to
  the file), or lies inside an input directory, is refused;
* an existing model directory is replaced only with ``overwrite`` (``--overwrite``); an existing
  SQLite database is never replaced by another kind of file unless ``overwrite``; a label database
  (kind ``"database"``) is appended to, so it must be an SQLite file if it exists;
* missing output directories are created (at write time), an output under a path whose parent is a
  file is refused up front;
* files are written to a temporary file in the same directory and renamed over the target
  (``os.replace``), so a crash or Ctrl-C leaves the old file intact and no half-written one.

Errors are :class:`~psilearn.errors.DataError` (a ValueError: one line from the CLI, exit code 2).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from psilearn.data.io import split_spec
from psilearn.errors import DataError

SQLITE_MAGIC = b"SQLite format 3\x00"
#: what an output is: a file (replaced), a model directory, a label database (appended to), a directory
KINDS = ("file", "model", "database", "directory")
TMP_TAG = ".psilearn-tmp-"
OLD_TAG = ".psilearn-old-"  #: a model being replaced, kept until its successor is in place


def is_sqlite(path: str | os.PathLike) -> bool:
    """True if ``path`` is a file starting with SQLite's header."""
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def is_model_dir(path: str | os.PathLike) -> bool:
    return Path(path, "model.json").is_file()


def _resolve(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path)))).resolve()


def input_paths(inputs: Iterable) -> list[Path]:
    """Resolved paths of input specs (``None`` skipped, ``file.xyz@:10`` -> ``file.xyz``)."""
    out = []
    for spec in inputs:
        if spec is None or spec == "":
            continue
        path = split_spec(os.fspath(spec))[0] if isinstance(spec, str) else spec
        out.append(_resolve(path))
    return out


def _blocking_file(path: Path) -> Path | None:
    """The first ancestor of ``path`` that exists and is not a directory (None if the parents can be created)."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def check_output(path: str | os.PathLike, inputs: Iterable = (), overwrite: bool = False, kind: str = "file",
                 name: str = "") -> Path:
    """Refuse (DataError) an output ``path`` that would lose data; returns the resolved path.

    ``inputs``: paths or specs the command reads; ``kind``: ``"file"``, ``"model"`` (a model
    directory), ``"database"`` (a label database, appended to) or ``"directory"``; ``name``: how
    the command line calls the output (``-o``), for the message. Creates nothing."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    label = f"{name} {path}" if name else str(path)
    if not os.fspath(path):
        raise DataError(f"{name or 'output'}: empty path")
    out = _resolve(path)
    for inp in input_paths(inputs):
        if out == inp:
            raise DataError(f"{label}: the output is also an input of this command; write to another path")
        if inp.is_dir() and inp in out.parents:
            raise DataError(f"{label}: the output is inside the input directory {inp}; write it elsewhere")
        if out.is_dir() and out in inp.parents and kind in ("model", "directory"):
            raise DataError(f"{label}: the output directory holds the input {inp}; write to another path")
    blocker = _blocking_file(out)
    if blocker is not None:
        raise DataError(f"{label}: cannot create it: {blocker} is a file, not a directory")
    if not os.path.lexists(out):
        return out
    if kind == "model":
        if not out.is_dir() or not is_model_dir(out):
            raise DataError(f"{label}: exists and is not a psilearn model; refusing to replace it")
        if not overwrite:
            raise DataError(f"{label}: a model already exists there; pass --overwrite to replace it")
    elif kind == "directory":
        if not out.is_dir():
            raise DataError(f"{label}: exists and is not a directory")
    elif kind == "database":
        if out.is_dir() or (out.stat().st_size > 0 and not is_sqlite(out)):
            raise DataError(f"{label}: exists and is not an SQLite database; refusing to add labels to it")
    else:
        if out.is_dir():
            raise DataError(f"{label}: is a directory{' (a psilearn model)' if is_model_dir(out) else ''}; give a file name")
        if is_sqlite(out) and not overwrite:
            raise DataError(f"{label}: is an SQLite database; refusing to replace it with another file "
                            f"(write to another path, or remove the database first)")
    return out


def check_outputs(outputs: Mapping[str, tuple], inputs: Iterable = (), overwrite: bool = False) -> list[Path]:
    """:func:`check_output` for each ``name -> (path, kind)`` (``None`` paths skipped), and refuse two
    outputs of one command that are the same path."""
    inputs = list(inputs)
    given = {name: (path, kind) for name, (path, kind) in outputs.items() if path is not None}
    seen: dict[Path, str] = {}
    for name, (path, _) in given.items():
        out = _resolve(path) if os.fspath(path) else Path()
        if out in seen:
            raise DataError(f"{name} {path}: the same path as {seen[out]}; give each output its own path")
        seen[out] = name
    return [check_output(path, inputs, overwrite=overwrite, kind=kind, name=name) for name, (path, kind) in given.items()]


def check_checkpoint_dir(path: str | os.PathLike, inputs: Iterable = (), resume: bool = False, overwrite: bool = False) -> Path:
    """Refuse (DataError) a training-checkpoint directory that is an input, lies under a file, is not a
    directory, or holds the checkpoints of an earlier run that would be replaced neither resumed
    (``resume``) nor explicitly discarded (``overwrite``)."""
    out = check_output(path, inputs, kind="directory", name="--checkpoint-dir")
    if out.is_dir() and not resume and not overwrite and any(out.rglob("state.json")):
        raise DataError(f"--checkpoint-dir {path}: holds the checkpoints of an earlier training run; pass --resume to "
                        f"continue it or --overwrite to start over")
    return out


def make_parent(path: str | os.PathLike) -> Path:
    """Create the missing directories above ``path`` (DataError if a file is in the way)."""
    parent = Path(os.path.abspath(os.fspath(path))).parent
    blocker = _blocking_file(parent / "x")
    if blocker is not None:
        raise DataError(f"{path}: cannot create it: {blocker} is a file, not a directory")
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()  #: the process's umask, for the permissions of files written through a temporary


def temporary_name(path: str | os.PathLike, tag: str = TMP_TAG) -> Path:
    """A hidden temporary sibling of ``path`` that names the writing process and ends with the same
    name (so formats inferred from the file name, .xyz, .png, .gz, are the same)."""
    p = Path(os.fspath(path))
    return p.with_name(f"{tag}{os.getpid()}-{secrets.token_hex(4)}-{p.name}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it runs, under another user
        pass
    return True


def stale_temporaries(path: str | os.PathLike, tag: str = TMP_TAG) -> list[Path]:
    """Temporary siblings of ``path`` left by writers that no longer run (killed with SIGKILL, or a
    machine that went down mid-write: the only ways :func:`atomic_write` cannot clean up)."""
    p = Path(os.fspath(path))
    parent = p.parent if str(p.parent) else Path(".")
    out = []
    try:
        candidates = list(parent.glob(f"{tag}*-{p.name}"))
    except OSError:
        return []
    for c in candidates:
        pid = c.name[len(tag):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            out.append(c)
    return out


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Delete the half-written temporaries of ``path`` whose writer is gone."""
    import shutil

    for c in stale_temporaries(path):
        shutil.rmtree(c, ignore_errors=True) if c.is_dir() else c.unlink(missing_ok=True)


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path next to ``path``; write there. On success it is renamed over ``path``
    (``os.replace``, atomic on one file system); on any exception, Ctrl-C included, it is removed
    and ``path`` is left as it was. Missing parent directories are created."""
    make_parent(path)
    remove_stale_temporaries(path)
    tmp = temporary_name(path)
    try:
        yield str(tmp)
        if not tmp.exists():
            raise RuntimeError(f"{path}: the writer wrote nothing")
        os.chmod(tmp, 0o666 & ~UMASK)  # as any new file, whatever mode the writer chose
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


@contextmanager
def open_atomic(path: str | os.PathLike, mode: str = "w", **kwargs):
    """``open(path, mode)`` written atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh
