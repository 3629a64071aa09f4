"""Reading structures and labels, validation errors, DeePMD sets, splits and subsets."""

import os
import re
import warnings

import ase.io
import numpy as np
import pytest
from ase import Atoms

from psilearn.data import (
    DataError,
    Dataset,
    farthest_point_split,
    group_split,
    load_dataset,
    random_split,
    read_structures,
)
from psilearn.targets import Target

from ._synth import molecules


def _frames(n=6, seed=0):
    frames = molecules(seed, n, n_min=3, n_max=5)
    rng = np.random.default_rng(seed)
    for i, a in enumerate(frames):
        a.info["idx"] = i
        a.info["mu"] = rng.normal(size=3)
        m = rng.normal(size=(3, 3))
        a.info["alpha"] = (m + m.T).ravel()
        a.info["e"] = float(rng.normal())
        a.arrays["q"] = rng.normal(size=len(a))
    return frames


def _write(path, frames):
    ase.io.write(str(path), frames, format="extxyz")
    return str(path)


# ---- reading -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sel, expect",
    [("", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), ("@2:5", [2, 3, 4]), ("@-1", [9]), ("@::4", [0, 4, 8]), ("@7:", [7, 8, 9]), ("@3", [3])],
)
def test_path_at_slice(tmp_path, sel, expect):
    path = _write(tmp_path / "many.xyz", _frames(10))
    frames = read_structures(path + sel)
    assert [a.info["idx"] for a in frames] == expect
    ds = load_dataset(path + sel, Target("mu", tensor="i"))
    assert len(ds) == len(expect) and ds.values.shape == (len(expect), 3)


def test_at_sign_in_directory_name(tmp_path):
    """Like ase.io.read, only an '@' in the file name itself starts a frame selection."""
    d = tmp_path / "user@host"
    d.mkdir()
    path = _write(d / "data.xyz", _frames(4))
    assert [a.info["idx"] for a in read_structures(path + "@1:3")] == [1, 2]
    assert len(read_structures(path)) == 4


def test_zero_lattice_is_a_molecule(tmp_path):
    path = tmp_path / "zero.xyz"
    path.write_text(
        "3\n"
        'Lattice="0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0" Properties=species:S:1:pos:R:3 e=1.5 pbc="T T T"\n'
        "O 0.0 0.0 0.0\nH 0.96 0.0 0.0\nH -0.24 0.93 0.0\n"
    )
    (a,) = read_structures(str(path))
    assert not a.pbc.any()
    ds = load_dataset(str(path), Target("e"))
    assert ds.values[0, 0] == pytest.approx(1.5)


def test_real_lattice_stays_periodic(tmp_path):
    a = Atoms("H2", positions=[[0, 0, 0], [0.7, 0, 0]], cell=4 * np.eye(3), pbc=True)
    a.info["e"] = 1.0
    (b,) = read_structures(_write(tmp_path / "p.xyz", [a]))
    assert b.pbc.all()
    np.testing.assert_allclose(b.cell[:], 4 * np.eye(3))


# ---- clear errors --------------------------------------------------------------------------------
def _assert_names(msg: str, *parts: str) -> None:
    for p in parts:
        assert p in msg, f"{p!r} not in error message {msg!r}"


def test_missing_key(tmp_path):
    frames = _frames()
    del frames[3].info["mu"]
    path = _write(tmp_path / "miss.xyz", frames)
    with pytest.raises(DataError) as exc:
        load_dataset(path, Target("mu", tensor="i"))
    _assert_names(str(exc.value), "miss.xyz", "frame 3", "'mu'")


def test_wrong_length(tmp_path):
    frames = _frames()
    frames[2].info["alpha"] = np.arange(6.0)
    path = _write(tmp_path / "short.xyz", frames)
    with pytest.raises(DataError) as exc:
        load_dataset(path, Target("alpha", tensor="ij=ji"))
    msg = str(exc.value)
    _assert_names(msg, "short.xyz", "frame 2", "'alpha'", "6", "9")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite(tmp_path, bad):
    frames = _frames()
    frames[4].info["mu"] = np.array([1.0, bad, 2.0])
    path = _write(tmp_path / "nonfinite.xyz", frames)
    with pytest.raises(DataError) as exc:
        load_dataset(path, Target("mu", tensor="i"))
    _assert_names(str(exc.value), "nonfinite.xyz", "frame 4", "'mu'")


def test_non_finite_per_atom(tmp_path):
    frames = _frames()
    frames[1].arrays["q"][0] = np.nan
    path = _write(tmp_path / "nanq.xyz", frames)
    with pytest.raises(DataError) as exc:
        load_dataset(path, Target("q", per="atom"))
    _assert_names(str(exc.value), "nanq.xyz", "frame 1", "'q'")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.xyz"
    path.write_text("")
    with pytest.raises(DataError, match="empty.xyz"):
        load_dataset(str(path), Target("e"))


def test_nonexistent_file(tmp_path):
    path = str(tmp_path / "nowhere.xyz")
    with pytest.raises(DataError, match="nowhere.xyz"):
        load_dataset(path, Target("e"))
    with pytest.raises(DataError, match="nowhere.xyz"):
        read_structures(path + "@:3")


def test_empty_selection(tmp_path):
    path = _write(tmp_path / "few.xyz", _frames(3))
    with pytest.raises(DataError, match="few.xyz"):
        read_structures(path + "@5:")


def test_per_atom_key_used_per_structure(tmp_path):
    path = _write(tmp_path / "peratom.xyz", _frames())
    with pytest.raises(DataError) as exc:
        load_dataset(path, Target("q"))
    _assert_names(str(exc.value), "peratom.xyz", "frame 0", "'q'", "atom")
    # and the converse
    with pytest.raises(DataError) as exc:
        load_dataset(path, Target("e", per="atom"))
    _assert_names(str(exc.value), "peratom.xyz", "frame 0", "'e'", "structure")


def test_per_atom_wrong_width(tmp_path):
    frames = _frames()
    path = _write(tmp_path / "qwidth.xyz", frames)
    with pytest.raises(DataError) as exc:
        load_dataset(path, Target("q", per="atom", tensor="i"))
    _assert_names(str(exc.value), "qwidth.xyz", "frame 0", "'q'")


def test_directory_without_type_raw(tmp_path):
    with pytest.raises(DataError, match="DeePMD"):
        read_structures(str(tmp_path))


# ---- symmetry of labels --------------------------------------------------------------------------
def test_asymmetric_tensor_refused_then_symmetrized(tmp_path):
    frames = _frames()
    base = np.diag([2.0, 3.0, 4.0])
    for a in frames:
        a.info["alpha"] = base.ravel()
    small = base.copy()
    small[0, 1] += 0.02  # violation 0.01 (half the difference from the symmetric part)
    big = base.copy()
    big[1, 2] += 0.6  # violation 0.3
    frames[1].info["alpha"] = small.ravel()
    frames[4].info["alpha"] = big.ravel()
    path = _write(tmp_path / "asym.xyz", frames)
    target = Target("alpha", tensor="ij=ji")
    with pytest.raises(DataError) as exc:
        load_dataset(path, target)
    msg = str(exc.value)
    _assert_names(msg, "asym.xyz", "frame 4", "'alpha'", "0.3", "2 of 6")
    assert re.search(r"largest violation 0\.3\b", msg), msg

    ds = load_dataset(path, target, symmetrize=True)
    t = ds.values.reshape(-1, 3, 3)
    np.testing.assert_allclose(t, t.transpose(0, 2, 1), atol=1e-14)
    np.testing.assert_allclose(t[4], 0.5 * (big + big.T), atol=1e-12)
    np.testing.assert_allclose(t[0], base, atol=1e-12)


def test_asymmetric_per_atom_names_frame(tmp_path):
    frames = _frames()
    for a in frames:
        a.arrays["sigma"] = np.tile(np.diag([1.0, 2.0, 3.0]).ravel(), (len(a), 1))
    frames[3].arrays["sigma"][1, 5] += 0.8  # yz entry of atom 1 of frame 3
    path = _write(tmp_path / "atoms_asym.xyz", frames)
    with pytest.raises(DataError) as exc:
        load_dataset(path, Target("sigma", per="atom", tensor="ij=ji"))
    _assert_names(str(exc.value), "atoms_asym.xyz", "frame 3", "'sigma'", "0.4")
    ds = load_dataset(path, Target("sigma", per="atom", tensor="ij=ji"), symmetrize=True)
    row = sum(len(a) for a in frames[:3]) + 1
    np.testing.assert_allclose(ds.values[row].reshape(3, 3)[1, 2], 0.4)


def test_traceless_violation_refused(tmp_path):
    frames = _frames()
    path = _write(tmp_path / "trace.xyz", frames)  # 'alpha' is symmetric with a trace
    target = Target("alpha", tensor="ij=ji", traceless=True)
    with pytest.raises(DataError, match="traceless"):
        load_dataset(path, target)
    ds = load_dataset(path, target, symmetrize=True)
    np.testing.assert_allclose(np.einsum("naa->n", ds.values.reshape(-1, 3, 3)), 0.0, atol=1e-12)


def test_symmetric_labels_pass_unchanged():
    frames = _frames()
    ds = load_dataset(frames, Target("alpha", tensor="ij=ji"))
    np.testing.assert_allclose(ds.values, np.array([a.info["alpha"] for a in frames]), atol=1e-14)


# ---- DeePMD ----------------------------------------------------------------------------------------
def _deepmd(path, nopbc=False):
    rng = np.random.default_rng(7)
    os.makedirs(path / "set.000")
    os.makedirs(path / "set.001")
    (path / "type.raw").write_text("0 1 1\n")
    (path / "type_map.raw").write_text("O\nH\n")
    if nopbc:
        (path / "nopbc").write_text("")
    data = {}
    for s, n in (("set.000", 2), ("set.001", 1)):
        coord = rng.uniform(0, 3, size=(n, 9))
        box = np.tile((8.0 * np.eye(3)).ravel(), (n, 1))
        dip = rng.normal(size=(n, 3))
        adip = rng.normal(size=(n, 9))
        for name, arr in (("coord", coord), ("box", box), ("dipole", dip), ("atomic_dipole", adip)):
            np.save(path / s / f"{name}.npy", arr)
        data[s] = (coord, dip, adip)
    return data


def test_deepmd_reader(tmp_path):
    sysdir = tmp_path / "water_sys"
    data = _deepmd(sysdir)
    frames = read_structures(str(sysdir))
    assert len(frames) == 3
    expected = [(s, i) for s in ("set.000", "set.001") for i in range(len(data[s][0]))]
    for a, (s, i) in zip(frames, expected):
        coord, dip, adip = data[s]
        assert a.get_chemical_symbols() == ["O", "H", "H"]
        assert a.pbc.all()
        np.testing.assert_allclose(a.cell[:], 8.0 * np.eye(3))
        np.testing.assert_allclose(a.positions, coord[i].reshape(3, 3))
        np.testing.assert_allclose(a.info["dipole"], dip[i])
        assert a.arrays["atomic_dipole"].shape == (3, 3)
        np.testing.assert_allclose(a.arrays["atomic_dipole"], adip[i].reshape(3, 3))
    ds = load_dataset(str(sysdir), Target("atomic_dipole", per="atom", tensor="i"))
    np.testing.assert_allclose(ds.values, np.concatenate([data[s][2].reshape(-1, 3) for s in ("set.000", "set.001")]))
    ds = load_dataset(str(sysdir) + "@1:", Target("dipole", tensor="i"))
    np.testing.assert_allclose(ds.values, np.concatenate([data["set.000"][1][1:], data["set.001"][1]]))


def test_deepmd_nopbc(tmp_path):
    sysdir = tmp_path / "mol_sys"
    _deepmd(sysdir, nopbc=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a molecule in a large box: no warning
        frames = read_structures(str(sysdir))
    assert not any(a.pbc.any() for a in frames)


def test_deepmd_nopbc_bulk_box_warns(tmp_path):
    """A nopbc set whose atoms fill their 3D box (bulk liquid with whole molecules) is read as
    marked, non-periodic, with a warning saying how to read it as periodic."""
    sysdir = tmp_path / "bulk_sys"
    _deepmd(sysdir, nopbc=True)
    for s in ("set.000", "set.001"):
        coord = np.load(sysdir / s / "coord.npy")
        coord[:, :3] = 0.2
        coord[:, 3:6] = 7.6  # spans 0.2..7.6 of an 8 A box along x, y and z
        np.save(sysdir / s / "coord.npy", coord)
    with pytest.warns(UserWarning, match="marked nopbc.*fill a 3D box"):
        frames = read_structures(str(sysdir))
    assert not any(a.pbc.any() for a in frames)


def test_deepmd_missing_type_map(tmp_path):
    sysdir = tmp_path / "nomap"
    _deepmd(sysdir)
    os.remove(sysdir / "type_map.raw")
    with pytest.raises(DataError, match="type_map.raw"):
        read_structures(str(sysdir))


# ---- splits --------------------------------------------------------------------------------------
def _check_partition(train, test, n):
    assert len(np.intersect1d(train, test)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(n))


def test_random_split():
    tr, te = random_split(40, 0.25, seed=3)
    tr2, te2 = random_split(40, 0.25, seed=3)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(te, te2)
    _check_partition(tr, te, 40)
    assert len(te) == 10
    tr3, te3 = random_split(40, 0.25, seed=4)
    assert not np.array_equal(te, te3)
    with pytest.raises(ValueError):
        random_split(10, 1.5)


def test_farthest_point_split():
    x = np.random.default_rng(0).normal(size=(30, 5))
    tr, te = farthest_point_split(x, 12)
    tr2, te2 = farthest_point_split(x.copy(), 12)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(te, te2)
    assert len(tr) == 12
    _check_partition(tr, te, 30)
    # an outlier is always picked
    x[17] = 100.0
    tr, _ = farthest_point_split(x, 3)
    assert 17 in tr


def test_group_split():
    frames = _frames(24)
    for i, a in enumerate(frames):
        a.info["mol"] = f"m{i % 7}"
    tr, te = group_split(frames, "mol", 0.3, seed=1)
    tr2, te2 = group_split(frames, "mol", 0.3, seed=1)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(te, te2)
    _check_partition(tr, te, 24)
    g_tr = {frames[i].info["mol"] for i in tr}
    g_te = {frames[i].info["mol"] for i in te}
    assert g_tr and g_te and not (g_tr & g_te)
    del frames[5].info["mol"]
    with pytest.raises(ValueError, match="mol"):
        group_split(frames, "mol")


# ---- Dataset -------------------------------------------------------------------------------------
def test_subset_per_atom_rows():
    frames = _frames(6)
    for i, a in enumerate(frames):
        a.arrays["tag"] = 100.0 * i + np.arange(len(a))  # value identifies (frame, atom)
    ds = load_dataset(frames, Target("tag", per="atom"))
    assert ds.values.shape == (sum(len(a) for a in frames), 1)
    np.testing.assert_array_equal(ds.atom_structure, np.repeat(np.arange(6), [len(a) for a in frames]))
    sub = ds.subset([4, 1, 2])
    expect = np.concatenate([100.0 * i + np.arange(len(frames[i])) for i in (4, 1, 2)])
    np.testing.assert_array_equal(sub.values[:, 0], expect)
    assert [a.info["idx"] for a in sub.frames] == [4, 1, 2]
    assert sub.subset([]).values.shape == (0, 1)


def test_subset_per_structure():
    frames = _frames(6)
    ds = load_dataset(frames, Target("mu", tensor="i"))
    sub = ds.subset([5, 0])
    np.testing.assert_array_equal(sub.values, np.array([frames[5].info["mu"], frames[0].info["mu"]]))
    assert isinstance(sub, Dataset) and len(sub) == 2


def test_fingerprint_sensitive_to_labels():
    frames = _frames(4)
    fp = load_dataset(frames, Target("mu", tensor="i")).fingerprint()
    assert fp == load_dataset([x.copy() for x in frames], Target("mu", tensor="i")).fingerprint()
    frames[2].info["mu"] = frames[2].info["mu"] + 1e-6
    assert load_dataset(frames, Target("mu", tensor="i")).fingerprint() != fp
