"""`psilearn active` killed with SIGKILL mid-loop resumes with no lost and no duplicated label, and
ends where an uninterrupted run with the same seed ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from psilearn.active import run_active

from ._common import CFG_YAML, POOL, options, selected

SRC = Path(__file__).resolve().parents[2] / "src"


def _command(cfg: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "psilearn.cli.main", "-q", "active", POOL, "--target", "dipole_moment", "--tensor", "i",
            "--oracle", "dipole_moment", "--init", "6", "--batch", "3", "--budget", "30", "--seed", "3",
            "--config", str(cfg), "-o", str(out)]


def _rounds_done(log: Path) -> int:
    try:
        return sum(r["status"] == "done" for r in json.loads(log.read_text())["rounds"])
    except (OSError, ValueError):
        return 0


def _kill_after_two_rounds(cmd: list[str], env: dict, log) -> None:
    """Run ``cmd`` and SIGKILL it once its log shows two finished rounds (it must still be running)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _rounds_done(log) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()[-500:]}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)


def test_sigkill_mid_loop_then_resume(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CFG_YAML)
    out, log = tmp_path / "m.model", tmp_path / "m.model.active" / "log.json"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    _kill_after_two_rounds(_command(cfg, out), env, log)
    partial = json.loads(log.read_text())
    assert not partial["complete"] and not out.exists()
    first = selected(partial)
    assert len(first) == len(set(first)) < 30
    done = subprocess.run(_command(cfg, out), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    final = json.loads(log.read_text())
    sel = selected(final)
    assert len(sel) == 30 and len(set(sel)) == 30
    assert sel[: len(first)] == first  # nothing selected before the kill was lost or picked again
    _, reference = run_active(options(batch=3, budget=30), state_dir=str(tmp_path / "ref"))
    assert sel == selected(reference)
    assert out.is_dir()


def test_sigkill_two_levels_then_resume(tmp_path):
    """The same with two --oracle levels and --cost: the (structure, level) labels after the resume
    equal an uninterrupted run's, none lost or repeated."""
    from .test_fidelity import COSTS, mf_options, pairs, two_level_pool

    cfg = tmp_path / "c.yaml"
    cfg.write_text(CFG_YAML)
    pool = two_level_pool(tmp_path / "pool.xyz")
    out, log = tmp_path / "m.model", tmp_path / "m.model.active" / "log.json"
    cmd = [sys.executable, "-m", "psilearn.cli.main", "-q", "active", pool, "--target", "dipole_moment", "--tensor", "i",
           "--oracle", "mu_low", "--oracle", "dipole_moment", "--cost", "mu_low=0.2", "--cost", "dipole_moment=1.0",
           "--init", "4", "--batch", "1", "--budget", "9", "--seed", "3", "--config", str(cfg), "-o", str(out)]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    _kill_after_two_rounds(cmd, env, log)
    partial = json.loads(log.read_text())
    assert not partial["complete"] and not out.exists()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    final = json.loads(log.read_text())
    got = pairs(final)
    assert len(got) == len(set(got)) and got[: len(pairs(partial))] == pairs(partial)
    assert sum(COSTS[lv] for _, lv in got) <= 9.0 + 1e-9
    _, reference = run_active(mf_options(pool, batch=1, budget=9), state_dir=str(tmp_path / "ref"))
    assert got == pairs(reference)
