"""Spectrum targets, grid checks and the spectrum readers."""

import json
import warnings

import numpy as np
import pytest
from ase import Atoms
from tests.spectra._shared import XANES, require

from psilearn.data import DataError, load_dataset
from psilearn.data.spectra import (
    GridWarning,
    dos_from_orbitals,
    load_spectrum_dataset,
    parse_grid,
    read_spectrum_table,
    read_xanes,
    write_spectrum_table,
)
from psilearn.targets import Target

GRID = np.linspace(-5.0, 5.0, 51)


def frames_with(values, grid=None, per="structure", key="dos"):
    out = []
    for i, v in enumerate(values):
        a = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
        if per == "structure":
            a.info[key] = np.asarray(v)
        else:
            a.arrays[key] = np.asarray(v)
        if grid is not None:
            a.info[key + "_grid"] = np.asarray(grid)
        a.info["source"] = f"mem.xyz:{i}"
        out.append(a)
    return out


def test_target_grid_roundtrip_and_shape():
    t = Target("dos", grid=GRID, grid_units="eV", units="states/eV")
    assert t.is_spectrum and t.size == 51 and t.irreps == "51x0e"
    d = json.loads(json.dumps(t.to_dict()))
    assert Target.from_dict(d) == t
    x = Target("xanes", grid=[1.0, 2.0, 3.0], absorber="Fe", pool="mean")
    assert Target.from_dict(x.to_dict()) == x
    assert "absorber Fe" in x.describe()
    # non-spectrum targets serialise exactly as before
    assert set(Target("mu", tensor="i").to_dict()) == {"key", "per", "tensor", "parity", "traceless", "pool", "units"}
    y = np.random.default_rng(0).normal(size=(4, 51))
    assert t.to_cartesian(t.to_irreps(y)) == pytest.approx(y)


@pytest.mark.parametrize("kw, msg", [
    (dict(grid=[0.0, 0.0, 1.0]), "strictly increasing"),
    (dict(grid=[0.0, 1.0], tensor="i"), "scalar"),
    (dict(absorber="Fe"), "spectrum targets only"),
    (dict(grid=[0.0, 1.0], absorber="Qq"), "element symbol"),
])
def test_target_rejects_bad_spectrum_declarations(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Target("s", **kw)


def test_dataset_rejects_nan_and_wrong_length():
    t = Target("dos", grid=GRID)
    good = np.exp(-GRID**2)
    with pytest.raises(DataError, match="NaN"):
        load_dataset(frames_with([good, np.full(51, np.nan)]), t)
    with pytest.raises(DataError, match="has 50 numbers, expected 51"):
        load_dataset(frames_with([good, good[:50]]), t)
    with pytest.raises(DataError, match="per-atom label"):
        load_dataset(frames_with([np.ones((3, 50))], per="atom"), Target("dos", per="atom", grid=GRID))
    ds = load_dataset(frames_with([np.ones((3, 51))], per="atom"), Target("dos", per="atom", grid=GRID))
    assert ds.values.shape == (3, 51)


def test_grid_mismatch_interpolated_with_warning_or_refused():
    t = Target("dos", grid=GRID)
    fine = np.linspace(-6, 6, 241)
    frames = frames_with([np.exp(-fine**2), np.exp(-(fine - 1) ** 2)], grid=fine)
    with pytest.warns(GridWarning, match="interpolated spectrum 'dos' of 2 of 2"):
        ds = load_spectrum_dataset(frames, t)
    assert ds.values[1] == pytest.approx(np.exp(-(GRID - 1) ** 2), abs=2e-3)
    assert "dos_grid" not in frames[0].info or len(frames[0].info["dos_grid"]) == 241  # inputs untouched
    with pytest.raises(DataError, match="different grid"):
        load_spectrum_dataset(frames, t, on_mismatch="refuse")
    narrow = frames_with([np.ones(11)], grid=np.linspace(-1, 1, 11))
    with pytest.raises(DataError, match="cannot interpolate"):
        load_spectrum_dataset(narrow, t)
    # the same grid passes silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_spectrum_dataset(frames_with([np.ones(51)], grid=GRID), t)


def test_per_atom_spectra_interpolated_too():
    fine = np.linspace(-6, 6, 121)
    frames = frames_with([np.tile(np.exp(-fine**2), (3, 1))], grid=fine, per="atom")
    with pytest.warns(GridWarning):
        ds = load_spectrum_dataset(frames, Target("dos", per="atom", grid=GRID))
    assert ds.values.shape == (3, 51)


def test_absorber_must_be_present():
    t = Target("dos", grid=GRID, absorber="Fe")
    with pytest.raises(DataError, match="no Fe atom"):
        load_spectrum_dataset(frames_with([np.ones(51)]), t)


def test_spectrum_table_roundtrip(tmp_path):
    p = tmp_path / "s.csv"
    y = np.vstack([np.sin(GRID), np.cos(GRID)])
    write_spectrum_table(p, GRID, y, ["a", "b"], grid_name="energy_eV", comments={"units": "eV"})
    g, s, names = read_spectrum_table(p)
    assert g == pytest.approx(GRID) and s == pytest.approx(y, abs=1e-7) and names == ["a", "b"]
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2\n0 3\n")
    with pytest.raises(DataError, match="strictly increasing"):
        read_spectrum_table(bad)
    assert parse_grid("0:1:5") == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    assert parse_grid("1,2,4") == pytest.approx([1, 2, 4])


def test_dos_from_orbital_energies():
    a = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    a.info.update(orbital_energies=np.array([-0.6, 0.2]), homo=-0.6)
    grid = np.linspace(-1.5, 0.5, 401)
    (b,) = dos_from_orbitals([a], grid, sigma=0.02)
    assert np.trapezoid(b.info["dos"], grid) == pytest.approx(4.0, rel=1e-3)  # 2 levels x 2 electrons
    (c,) = dos_from_orbitals([a], grid, sigma=0.02, reference="homo")
    assert grid[np.argmax(c.info["dos"])] == pytest.approx(0.0, abs=0.006)
    with pytest.raises(DataError, match="orbital energies"):
        dos_from_orbitals([Atoms("H")], grid, 0.02)


def test_read_xanes_pairs(tmp_path):
    (tmp_path / "A_FeH2.xyz").write_text("3\nA\n26 0 0 0\n1 0 0 1.6\n1 0 1.6 0\n")
    (tmp_path / "A_FeH2.txt").write_text("    FDMNES\n    energy <xanes>\n 7100 0.1\n 7101 0.5\n 7102 1.0\n")
    (tmp_path / "B_orphan.txt").write_text("1 2\n2 3\n")
    with pytest.warns(GridWarning, match="without a partner: B_orphan"):
        frames = read_xanes(tmp_path)
    assert len(frames) == 1 and frames[0].get_chemical_symbols() == ["Fe", "H", "H"]
    assert frames[0].info["xanes_grid"] == pytest.approx([7100, 7101, 7102])
    assert frames[0].info["refcode"] == "A"


def test_real_xanes_and_deepmd_dos_sets():
    require(XANES)
    test = read_xanes(XANES, "test")
    assert len(test) == 10 and all(len(a.info["xanes"]) == 226 for a in test)
    t = Target("xanes", grid=test[0].info["xanes_grid"], grid_units="eV", absorber="Fe", pool="mean")
    assert load_spectrum_dataset(test, t).values.shape == (10, 226)


def test_deepmd_dos_grid_handling():
    from tests.spectra._shared import DEEPMD_DOS

    from psilearn.data.spectra import read_deepmd_dos

    require(DEEPMD_DOS)
    with pytest.warns(GridWarning, match="no energy grid"):
        frames = read_deepmd_dos(DEEPMD_DOS)
    assert frames[0].arrays["atom_dos"].shape == (32, 250) and "dos_grid" not in frames[0].info
    with pytest.raises(DataError, match="250 points but the given grid has 10"):
        read_deepmd_dos(DEEPMD_DOS, grid=np.arange(10.0))
    frames = read_deepmd_dos(DEEPMD_DOS, grid=np.linspace(-10, 5, 250))
    ds = load_spectrum_dataset(frames, Target("atom_dos", per="atom", grid=np.linspace(-10, 5, 250)))
    assert ds.values.shape == (11 * 32, 250)
