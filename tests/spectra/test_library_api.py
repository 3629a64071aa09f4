"""The library behind `fit-spectrum | compare | pca | spectrum ir|raman`: spectrum targets from data,
pairing two sets of spectra on one grid, comparison tables, PCA, and spectra of trajectories."""

import warnings

import numpy as np
import pytest
from ase import Atoms
from tests.spectra._synthetic import GRID, labelled

from psilearn.data import DataError
from psilearn.data.grids import GridWarning, match_spectra
from psilearn.data.spectra import spectrum_target, write_spectrum_table
from psilearn.observe.correlation import C_CM_PER_FS
from psilearn.observe.spectrum_sets import compare_sources, comparison_summary, spectra_pca, write_comparison_csv, write_pca_csv
from psilearn.observe.trajectory import frame_interval, trajectory_spectrum


def test_spectrum_target_grid_from_argument_data_or_index():
    frames = labelled(3, seed=1)
    assert np.allclose(spectrum_target(frames, "dos").grid, GRID)
    t = spectrum_target(frames, "dos", grid="-6:6:121", grid_units="eV", absorber="C")
    assert t.grid_units == "eV" and t.pool == "mean" and t.absorber == "C"
    for a in frames:
        del a.info["dos_grid"]
    with pytest.warns(GridWarning, match="point index"):
        t = spectrum_target(frames, "dos")
    assert t.grid_units == "index" and t.grid == tuple(range(len(GRID)))
    with pytest.raises(DataError, match="no spectrum 'xanes'"):
        spectrum_target(frames, "xanes")


def test_match_spectra_interpolates_broadcasts_and_refuses():
    ga, gb = np.linspace(0, 1, 11), np.linspace(-0.5, 1.5, 21)
    ya = np.tile(ga, (3, 1))
    with pytest.warns(GridWarning, match="interpolating B onto the grid of A"):
        yb, nb = match_spectra(ga, ya, gb, gb[None], ["b"])
    assert yb.shape == (3, 11) and nb == ["b"] * 3 and np.allclose(yb, ya)
    with pytest.raises(DataError, match="different grid"):
        match_spectra(ga, ya, gb, gb[None], ["b"], on_mismatch="refuse")
    with pytest.raises(DataError, match="3 spectra but B has 2"):
        match_spectra(ga, ya, ga, ya[:2], ["x", "y"])


def test_compare_and_pca_of_tables(tmp_path):
    rng = np.random.default_rng(0)
    y = np.exp(-0.5 * ((GRID[None] - rng.uniform(-3, 3, (8, 1))) / 0.5) ** 2)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_spectrum_table(a, GRID, y, [f"s{i}" for i in range(8)])
    write_spectrum_table(b, GRID, y + 0.01, [f"t{i}" for i in range(8)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same grid: nothing interpolated
        res = compare_sources(str(a), str(b), max_shift=0.5)
    assert res["n_spectra"] == 8 and res["mean"]["pearson"] > 0.999 and res["names_b"][0] == "t0"
    assert comparison_summary(res)["per_spectrum"]["rmse"] == pytest.approx([0.01] * 8)
    write_comparison_csv(tmp_path / "cmp.csv", res)
    lines = (tmp_path / "cmp.csv").read_text().splitlines()
    assert lines[0].startswith("name_a,name_b,rmse") and lines[1].startswith("s0,t0,") and len(lines) == 9
    pca = spectra_pca(str(a), n_components=0.99, clusters=2, seed=0)
    assert pca["n_clusters"] == 2 and len(pca["labels"]) == 8 and np.sum(pca["pca"].explained) >= 0.99
    write_pca_csv(tmp_path / "pca.csv", pca)
    assert (tmp_path / "pca.csv").read_text().splitlines()[0].startswith("name,cluster,PC1")


def test_ir_of_a_trajectory_with_stored_dipoles():
    t = np.arange(1000) * 0.5
    frames = []
    for i, ti in enumerate(t):
        a = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
        a.info["mu"] = np.array([np.cos(2 * np.pi * C_CM_PER_FS * 1650 * ti), 0.0, 0.0])
        a.info.update(md_step=2 * i, md_timestep_fs=0.25)
        frames.append(a)
    assert frame_interval(frames) == 0.5 and frame_interval(frames, 0.5) == 0.5
    spec = trajectory_spectrum("ir", frames, key="mu")
    assert spec.peak_positions(n_peaks=1)[0] == pytest.approx(1650, abs=10)
    assert spec.meta["source"] == "info[mu]" and spec.meta["trajectory"] == "<memory>"
    with pytest.raises(ValueError, match="--model"):
        trajectory_spectrum("ir", frames)
    with pytest.raises(ValueError, match="unknown vibrational spectrum"):
        trajectory_spectrum("vcd", frames, key="mu")
    for a in frames:
        del a.info["md_step"]
    with pytest.raises(ValueError, match="--timestep"):
        trajectory_spectrum("ir", frames, key="mu")


def test_evaluate_dispatches_spectrum_models():
    """psilearn.evaluate on a spectrum model: test spectra put on the model's grid, spectral metrics added."""
    import psilearn
    from psilearn.data.spectra import load_spectrum_dataset
    from psilearn.models.factory import fit_model

    frames = labelled(16, seed=2)
    target = spectrum_target(frames, "dos", grid_units="eV")
    config = {"soap": {"cutoff": 4.0, "max_radial": 3, "max_angular": 2}, "model": {"n_sparse": 20}}
    model = fit_model("spectrum", target, load_spectrum_dataset(frames[:12], target), config)
    test = [a.copy() for a in frames[12:]]
    fine = np.linspace(-6.0, 6.0, 241)
    for a in test:  # the same spectra on a finer grid
        a.info["dos"] = np.interp(fine, GRID, a.info["dos"])
        a.info["dos_grid"] = fine
    with pytest.warns(GridWarning, match="interpolated"):
        m = psilearn.evaluate(model, test)
    assert m["n_structures"] == 4 and m["model"] == "spectrum" and m["target"]["grid"] == list(GRID)
    assert m["spectral"]["pearson"] > 0.5 and 0 <= m["calibration"]["within_2sigma"] <= 1


def _strided_trajectory(stride: int = 2, md_dt: float = 0.5, n: int = 1000, nu: float = 1650.0) -> list:
    """What `psilearn md --stride STRIDE --timestep MD_DT` writes: md_step every STRIDE steps."""
    frames = []
    for i in range(n):
        a = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
        a.info["mu"] = np.array([np.cos(2 * np.pi * C_CM_PER_FS * nu * i * stride * md_dt), 0.0, 0.0])
        a.info.update(md_step=stride * (i + 1), md_timestep_fs=md_dt)
        frames.append(a)
    return frames


def test_timestep_that_disagrees_with_the_recorded_interval_is_an_error():
    """Before: --timestep silently overrode the recorded interval; with --stride 2 and --timestep 0.5
    (the README's usage) every wavenumber came out halved (a 1650 cm^-1 band at 825 cm^-1)."""
    frames = _strided_trajectory()
    assert frame_interval(frames) == 1.0
    with pytest.raises(ValueError, match=r"--timestep 0\.5 fs disagrees .* 1 fs \(md_step every 2 steps x md_timestep_fs 0\.5 fs\)"):
        frame_interval(frames, 0.5)
    with pytest.raises(ValueError, match="disagrees"):
        trajectory_spectrum("ir", frames, key="mu", timestep_fs=0.5)
    assert trajectory_spectrum("ir", frames, key="mu").peak_positions(n_peaks=1)[0] == pytest.approx(1650, abs=10)
    assert trajectory_spectrum("ir", frames, key="mu", timestep_fs=1.0).meta["timestep_fs"] == 1.0  # agreeing: fine
    # a selection of every other frame doubles the interval (the md_step differences say so)
    assert frame_interval(frames[::2]) == 2.0


def test_recorded_interval_must_be_consistent():
    frames = _strided_trajectory(n=20)
    with pytest.raises(ValueError, match="not evenly spaced"):
        frame_interval(frames[:10] + frames[11:])
    with pytest.raises(ValueError, match="not evenly spaced"):
        frame_interval(frames + _strided_trajectory(n=20))  # two trajectories concatenated
    del frames[3].info["md_timestep_fs"]
    with pytest.raises(ValueError, match="some frames only"):
        frame_interval(frames)
