"""Large matrices go to an npz beside the extxyz and come back through read_structures."""

import numpy as np
import pytest
from ase import Atoms

from psilearn.data import DataError, read_structures, sidecar, write_structures


def frames(n_big: int = 2):
    rng = np.random.default_rng(0)
    out = []
    for k in range(3):
        a = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74 + 0.01 * k]])
        n = 8 if k == 1 else 4  # frame 1 above the (patched) inline limit
        a.info["hamiltonian"] = rng.normal(size=n * n)
        a.info["overlap"] = rng.normal(size=n * n)
        a.info["gap"] = 0.5
        out.append(a)
    return out


def test_round_trip_with_selection(tmp_path, monkeypatch):
    monkeypatch.setattr(sidecar, "INLINE_LIMIT", 20)
    fr = frames()
    path = tmp_path / "out.xyz"
    write_structures(path, fr)
    assert (tmp_path / "out.xyz.arrays.npz").exists()
    text = path.read_text()
    assert text.count("sidecar=") == 1 and len(text) < 20000
    back = read_structures(path)
    for a, b in zip(fr, back):
        assert np.array_equal(a.info["hamiltonian"], b.info["hamiltonian"]) and np.array_equal(a.info["overlap"], b.info["overlap"])
        assert "sidecar" not in b.info and "sidecar_frame" not in b.info
    (one,) = read_structures(f"{path}@1:2")
    assert np.array_equal(one.info["hamiltonian"], fr[1].info["hamiltonian"])
    assert not np.load(tmp_path / "out.xyz.arrays.npz", allow_pickle=False).files == []
    assert "gap" in one.info and fr[0].info["hamiltonian"].size == 16  # inputs untouched


def test_missing_or_foreign_npz(tmp_path, monkeypatch):
    monkeypatch.setattr(sidecar, "INLINE_LIMIT", 20)
    path = tmp_path / "out.xyz"
    write_structures(path, frames())
    npz = tmp_path / "out.xyz.arrays.npz"
    data = dict(np.load(npz))
    np.savez(tmp_path / "other.npz", **{"7/hamiltonian": data["1/hamiltonian"]})
    (tmp_path / "other.npz").replace(npz)
    with pytest.raises(DataError, match="frame 1: out.xyz.arrays.npz holds no arrays of frame 1"):
        read_structures(path)
    npz.unlink()
    with pytest.raises(DataError, match="out.xyz, frame 1: its large labels are in out.xyz.arrays.npz, which is missing"):
        read_structures(path)


def test_small_files_have_no_npz(tmp_path):
    path = tmp_path / "small.xyz"
    write_structures(path, frames())
    assert not (tmp_path / "small.xyz.arrays.npz").exists()
    assert all("sidecar" not in a.info for a in read_structures(path))
