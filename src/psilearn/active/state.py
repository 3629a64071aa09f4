"""The run's state on disk: ``STATE/log.json``, rewritten atomically after every step.

Each round is one entry: ``round``, ``selected`` (pool indices, in selection order), ``status``
(``selected`` -> ``labelled`` -> ``done``), ``failed`` (pool index -> reason, method labels only),
``n_labelled`` (structures in the fit), ``validation`` (the fit's k-fold estimate and, with a test
set, its test errors) and ``seconds`` (select, label, fit, test). A batch is logged as ``selected``
before any of it is labelled, so a run killed at any moment resumes with the same batch: labels
already stored are read back, never recomputed, and nothing is selected twice.
"""

from __future__ import annotations

import json
from pathlib import Path

from psilearn.active.options import differences
from psilearn.data.outputs import open_atomic
from psilearn.errors import ConfigError, DataError

LOG_NAME = "log.json"
FORMAT = 1


def default_state_dir(output: str) -> str:
    """The state of ``-o MODEL``: ``MODEL.active`` next to it."""
    return f"{str(output).rstrip('/')}.active"


def log_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / LOG_NAME


def save_log(state_dir: str | Path, log: dict) -> None:
    """Write the log atomically (a kill leaves the previous complete log)."""
    with open_atomic(log_path(state_dir)) as fh:
        json.dump(log, fh, indent=1, allow_nan=False)


def read_log(state_dir: str | Path) -> dict | None:
    """The logged run, or None if there is none; DataError for an unreadable log."""
    path = log_path(state_dir)
    if not path.exists():
        return None
    try:
        log = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not an active-learning log ({exc})") from None
    if not isinstance(log, dict) or log.get("format") != FORMAT or not isinstance(log.get("rounds"), list):
        raise DataError(f"{path}: not an active-learning log of this psilearn (format {FORMAT})")
    return log


def start_or_resume(state_dir: str | Path, options: dict, overwrite: bool = False) -> tuple[dict, bool]:
    """(log, resumed): the logged run when its options equal ``options``; a new log otherwise if
    ``overwrite``, else ConfigError naming the differing options."""
    log = read_log(state_dir)
    if log is not None:
        diff = differences(log["options"], json.loads(json.dumps(options)))
        if not diff:
            return log, True
        if not overwrite:
            raise ConfigError(f"{log_path(state_dir)}: an active-learning run with other options is logged there "
                              f"({'; '.join(diff)}); rerun with the same options to resume it, or pass --overwrite "
                              "to start over")
    return {"format": FORMAT, "options": options, "rounds": [], "complete": False}, False
