"""A writer killed with SIGKILL cannot clean up after itself: the next write of the same path
removes what it left (half-written temporaries), and a model it was replacing is never lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from psilearn.data.outputs import open_atomic, stale_temporaries
from psilearn.models.io import ModelFileError, read_model, write_model


def _killed_midway(script: str, cwd: Path, marker: str) -> None:
    """Run ``script`` in a child Python, wait until it creates ``marker``, then SIGKILL it."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd)
    deadline = time.monotonic() + 60
    while not (cwd / marker).exists():
        assert proc.poll() is None, "the writer exited before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


#: replaces m.model, and is killed after moving the old model aside and before putting the new one in place
KILLED_WHILE_REPLACING = """
import os, time
import numpy as np
from psilearn.models import io
real = os.replace
def slow_replace(src, dst):
    real(src, dst)
    if str(src).endswith("m.model"):
        open("started", "w").close()
        time.sleep(600)
io.os.replace = slow_replace
io.write_model("m.model", {"kind": "test", "n": 2}, {"x": np.zeros(3)}, overwrite=True)
"""


def test_half_written_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    (tmp_path / "out.txt").write_text("old\n")
    _killed_midway("""
        import time
        from psilearn.data.outputs import atomic_write
        with atomic_write("out.txt") as tmp:
            open(tmp, "w").write("half of the new")
            open("started", "w").close()
            time.sleep(600)
    """, tmp_path, "started")
    left = stale_temporaries(tmp_path / "out.txt")
    assert len(left) == 1 and left[0].read_text() == "half of the new"
    assert (tmp_path / "out.txt").read_text() == "old\n"
    with open_atomic(tmp_path / "out.txt") as fh:
        fh.write("new\n")
    assert (tmp_path / "out.txt").read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "started"]


def test_model_replaced_by_a_killed_writer_is_restored(tmp_path):
    write_model(tmp_path / "m.model", {"kind": "test", "n": 1}, {"x": np.arange(3.0)})
    _killed_midway(KILLED_WHILE_REPLACING, tmp_path, "started")
    assert not (tmp_path / "m.model").exists()  # the old model is aside, the new one unfinished
    with pytest.raises(ModelFileError, match="interrupted write left the previous one in"):
        read_model(tmp_path / "m.model")
    write_model(tmp_path / "other.model", {"kind": "test"}, {"x": np.ones(1)})  # another path: untouched
    assert not (tmp_path / "m.model").exists()
    write_model(tmp_path / "m.model", {"kind": "test", "n": 3}, {"x": np.ones(3)}, overwrite=True)
    meta, arrays = read_model(tmp_path / "m.model")
    assert meta["n"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.model", "other.model", "started"]


def test_restored_model_is_not_replaced_without_overwrite(tmp_path):
    write_model(tmp_path / "m.model", {"kind": "test", "n": 1}, {"x": np.arange(3.0)})
    _killed_midway(KILLED_WHILE_REPLACING, tmp_path, "started")
    with pytest.raises(ModelFileError, match="already exists"):
        write_model(tmp_path / "m.model", {"kind": "test", "n": 3}, {"x": np.ones(3)})
    meta, _ = read_model(tmp_path / "m.model")
    assert meta["n"] == 1  # the previous model, back in place
