"""The small world the bad-input corpus runs in (built once per session, copied for each case)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
FILES = HERE / "files"


def build_world(d: Path) -> Path:
    """good.xyz, e.model, labels.db, spec.csv and afile in ``d`` (see cases.py)."""
    import ase.io
    from ase.build import molecule

    from psilearn.cli.demo_cmd import demo_data_path
    from psilearn.cli.main import main
    from psilearn.label.store import LabelStore

    d.mkdir(parents=True, exist_ok=True)
    frames = ase.io.read(demo_data_path(), "::50")
    ase.io.write(d / "good.xyz", frames, format="extxyz")
    assert main(["fit", str(d / "good.xyz"), "--target", "total_energy", "--model", "baseline", "-o", str(d / "e.model")]) == 0
    store = LabelStore(d / "labels.db")
    for i, name in enumerate(["H2O", "NH3"]):
        atoms = molecule(name)
        labelled = atoms.copy()
        labelled.info["energy"] = -1.0 - i
        store.write(atoms, f"s{i}", "m0", "test", {"status": "ok", "atoms": labelled})
    del store
    grid = np.linspace(0.0, 1.0, 11)
    rows = "\n".join(f"{x:g},{np.exp(-((x - 0.5) / 0.2) ** 2):.6f},{np.exp(-((x - 0.4) / 0.2) ** 2):.6f}" for x in grid)
    (d / "spec.csv").write_text("energy,a,b\n" + rows + "\n")
    (d / "afile").write_text("a plain file, not a directory\n")
    return d


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    return build_world(tmp_path_factory.mktemp("world") / "w")


@pytest.fixture
def case_dir(world, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the world and of files/, as the current directory."""
    d = tmp_path / "case"
    shutil.copytree(world, d)
    for f in FILES.iterdir():
        shutil.copy2(f, d / f.name)
    monkeypatch.chdir(d)
    return d


def snapshot(d: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``d`` (directories as '<dir>')."""
    out = {}
    for p in sorted(d.rglob("*")):
        rel = str(p.relative_to(d))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out
