import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms

from psilearn.label.campaign import run_campaign
from psilearn.label.hashing import structure_hash
from psilearn.label.registry import make_labeler
from psilearn.label.store import KEY_TABLE, LabelStore

from .conftest import ammonia, h2, hf_molecule, water


def _mixed_inputs() -> list[Atoms]:
    overlap = h2(0.05)
    odd = h2(0.97)
    odd.set_chemical_symbols(["O", "H"])
    odd.info["multiplicity"] = 1
    gold = Atoms("Au", positions=[[0, 0, 0]])
    return [water(), overlap, hf_molecule(), odd, ammonia(), gold, h2()]


def _check_unique(db: Path) -> list[str]:
    with sqlite3.connect(db) as con:
        keys = [k for (k,) in con.execute(
            "SELECT value FROM text_key_values WHERE key='label_key'")]
        n_rows = con.execute("SELECT COUNT(*) FROM systems").fetchone()[0]
        n_keys = con.execute(f"SELECT COUNT(*) FROM {KEY_TABLE}").fetchone()[0]
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(keys) == len(set(keys)) == n_rows == n_keys
    return keys


@pytest.mark.parametrize("workers", [0, 2])
def test_bad_inputs_fail_per_structure_rest_completes(tmp_path, workers):
    db = tmp_path / "l.db"
    lab = make_labeler("hf/6-31g", "energy,dipole")
    frames = _mixed_inputs()
    s = run_campaign(frames, lab, db, workers=workers, progress=False)
    assert (s.done, s.failed, s.skipped) == (4, 3, 0)
    reasons = {i: r for i, _, _, r in s.failures}
    assert set(reasons) == {1, 3, 5}
    assert "overlapping" in reasons[1] and "odd electron count" in reasons[3] and "Au" in reasons[5]
    assert "FAILED structure 5" in s.report()
    store = LabelStore(db)
    assert store.count(label_status="ok") == 4 and store.count(label_status="failed") == 3
    again = run_campaign(frames, lab, db, workers=0, progress=False)
    assert (again.done, again.failed, again.skipped, len(again.failures)) == (0, 0, 7, 3)
    out = tmp_path / "o.xyz"
    assert store.export(out, keys=s.keys) == 4
    back = ase.io.read(out, ":")
    assert back[0].info["total_energy"] == pytest.approx(-75.98, abs=0.01)
    assert "atomic units" in back[0].info["label_units"]
    assert "units" in store.db.metadata and lab.method_hash() in store.db.metadata["methods"]
    _check_unique(db)


def test_store_refuses_duplicates_and_retry_failed(tmp_path):
    db = tmp_path / "l.db"
    store = LabelStore(db)
    a = water()
    sh = structure_hash(a)
    assert store.write(a, sh, "m1", "x", {"status": "failed", "reason": "boom", "stage": "scf"})
    assert not store.write(a, sh, "m1", "x", {"status": "failed", "reason": "boom", "stage": "scf"})
    assert store.count() == 1
    lab = make_labeler("hf/sto-3g", "energy")
    store.write(a, sh, lab.method_hash(), lab.name, {"status": "failed", "reason": "boom", "stage": "scf"})
    s = run_campaign([a], lab, db, workers=0, progress=False)
    assert s.skipped == 1 and s.failures[0][3] == "boom"
    s = run_campaign([a], lab, db, workers=0, progress=False, retry_failed=True)
    assert s.done == 1 and not s.failures
    _check_unique(db)


def test_duplicate_inputs_labelled_once(tmp_path):
    db = tmp_path / "l.db"
    s = run_campaign([water(), water(), h2()], make_labeler("gfn2", "energy"), db, workers=0, progress=False)
    assert s.n_unique == 2 and s.done == 2
    assert LabelStore(db).count() == 2


def _rattled_waters(n: int) -> list[Atoms]:
    rng = np.random.default_rng(7)
    out = []
    for _ in range(n):
        a = water()
        a.positions += rng.normal(0, 0.03, a.positions.shape)
        out.append(a)
    return out


def _count_rows(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute(f"SELECT COUNT(*) FROM {KEY_TABLE}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_resume_after_sigkill_no_lost_no_duplicates(tmp_path):
    n = 40
    frames = _rattled_waters(n)
    inp = tmp_path / "in.xyz"
    ase.io.write(inp, frames)
    db = tmp_path / "l.db"
    cmd = [sys.executable, "-m", "psilearn.cli.main", "label", str(inp), "--method", "hf/6-31g",
           "--observables", "energy,dipole", "--db", str(db), "--workers", "1", "--no-progress"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    killed_at = []
    for threshold in (3, 15):  # two kills at different points of the campaign
        proc = subprocess.Popen(cmd, start_new_session=True, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 90
        while _count_rows(db) < threshold and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, f"campaign exited (code {proc.returncode}) before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # the campaign and its Dask workers, mid-flight
        proc.wait()
        killed_at.append(_count_rows(db))
    assert killed_at[0] >= 3 and killed_at[-1] < n, killed_at  # really killed mid-campaign
    lab = make_labeler("hf/6-31g", "energy,dipole")
    s = run_campaign(frames, lab, db, workers=1, progress=False)
    assert s.skipped == killed_at[-1]
    assert s.done == n - killed_at[-1] and not s.failures and s.duplicates == 0
    keys = _check_unique(db)
    assert len(keys) == n
    store = LabelStore(db)
    energies = [store.get(structure_hash(a), lab.method_hash()).data["info"]["total_energy"] for a in frames]
    ref = lab.label(frames[-1]).info["total_energy"]
    assert energies[-1] == pytest.approx(ref, abs=1e-8)
    assert all(e < -75.9 for e in energies)
