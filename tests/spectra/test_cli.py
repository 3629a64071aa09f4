"""`psilearn fit-spectrum | predict-spectrum | compare | pca | md | spectrum ir|raman` end to end."""

import json

import ase.io
import numpy as np
import pytest
from ase import Atoms
from tests.spectra._shared import require
from tests.spectra._synthetic import GRID, labelled

from psilearn.cli.main import main
from psilearn.data.spectra import read_spectrum_table, write_spectrum_table
from psilearn.observe.correlation import C_CM_PER_FS


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("spectra_cli")
    frames = labelled(30, seed=4)
    ase.io.write(d / "train.xyz", frames[:24], format="extxyz")
    ase.io.write(d / "test.xyz", frames[24:], format="extxyz")
    (d / "small.yaml").write_text("soap: {cutoff: 4.0, max_radial: 4, max_angular: 3}\nmodel: {n_sparse: 40}\n")
    return d


@pytest.fixture(scope="module")
def dos_model(files):
    out = files / "dos.model"
    assert main(["fit-spectrum", str(files / "train.xyz"), "--target", "dos", "--grid-units", "eV", "--elements", "N",
                 "--config", str(files / "small.yaml"), "--pca", "0.9999", "-o", str(out)]) == 0
    return out


def test_fit_predict_compare_pca(files, dos_model, capsys):
    pred_csv = files / "pred.csv"
    assert main(["predict-spectrum", str(dos_model), str(files / "test.xyz"), "-o", str(pred_csv)]) == 0
    grid, y, names = read_spectrum_table(pred_csv)
    assert grid == pytest.approx(GRID) and y.shape == (6, len(GRID))
    pred_xyz = files / "pred.xyz"
    assert main(["predict-spectrum", str(dos_model), str(files / "test.xyz"), "-o", str(pred_xyz)]) == 0
    capsys.readouterr()
    assert main(["compare", str(pred_xyz), str(pred_xyz), "--key", "dos_reference", "--key-b", "dos", "--json",
                 "--max-shift", "1.0", "--plot", str(files / "cmp.png"), "--csv", str(files / "cmp.csv")]) == 0
    res = json.loads(capsys.readouterr().out.splitlines()[0])
    assert res["n_spectra"] == 6 and res["mean"]["pearson"] > 0.9 and 0 < res["mean"]["tanimoto"] <= 1
    assert (files / "cmp.png").exists() and (files / "cmp.csv").read_text().count("\n") == 7
    # a table against the same table: perfect
    assert main(["compare", str(pred_csv), str(pred_csv)]) == 0
    assert "Pearson r" in capsys.readouterr().out
    assert main(["pca", str(pred_csv), "--clusters", "2", "--csv", str(files / "pca.csv"), "-o", str(files / "pca.png")]) == 0
    out = capsys.readouterr().out
    assert "PC1" in out and (files / "pca.png").exists()


def test_compare_errors_are_one_line(files, capsys, tmp_path):
    a = tmp_path / "a.csv"
    write_spectrum_table(a, GRID, np.ones((1, len(GRID))), ["a"])
    b = tmp_path / "b.csv"
    write_spectrum_table(b, np.linspace(-6, 6, 61), np.ones((1, 61)), ["b"])
    assert main(["compare", str(a), str(b), "--on-grid-mismatch", "refuse"]) == 2
    assert "different grid" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="interpolating"):
        assert main(["compare", str(a), str(b)]) == 0
    nan = tmp_path / "nan.csv"
    nan.write_text("x,y\n0,1\n1,nan\n2,3\n")
    assert main(["compare", str(a), str(nan)]) == 2
    assert "NaN" in capsys.readouterr().err


def test_fit_spectrum_refuses_mismatched_grid(files, capsys, tmp_path):
    frames = ase.io.read(files / "train.xyz", ":")
    frames[3].info["dos_grid"] = GRID + 0.05
    path = tmp_path / "mixed.xyz"
    ase.io.write(path, frames, format="extxyz")
    assert main(["fit-spectrum", str(path), "--target", "dos", "--on-grid-mismatch", "refuse", "-o", str(tmp_path / "m")]) == 2
    assert "different grid" in capsys.readouterr().err


def _omega(nu):
    return 2 * np.pi * C_CM_PER_FS * nu


def test_spectrum_ir_and_raman_from_stored_labels(tmp_path, capsys):
    t = np.arange(2000) * 0.5
    frames = []
    for i, ti in enumerate(t):
        a = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
        a.info["mu"] = np.array([np.cos(_omega(1650) * ti), 0.2, 0.5 * np.cos(_omega(3750) * ti)])
        alpha = np.diag([9.0, 9.5, 8.0]) + 0.1 * np.cos(_omega(3650) * ti) * np.eye(3)
        a.info["alpha"] = alpha.ravel()
        a.info.update(md_step=i, md_timestep_fs=0.5)
        frames.append(a)
    traj = tmp_path / "traj.xyz"
    ase.io.write(traj, frames, format="extxyz")
    assert main(["spectrum", "ir", str(traj), "--key", "mu", "-o", str(tmp_path / "ir.csv")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "ir.png").exists()
    data = np.loadtxt(tmp_path / "ir.csv", delimiter=",", comments="#", skiprows=1 + sum(
        l.startswith("#") for l in (tmp_path / "ir.csv").read_text().splitlines()))
    nu, y = data[:, 0], data[:, 1]
    assert nu[np.argmax(y * (nu > 2500))] == pytest.approx(3750, abs=5)
    assert "1650" in out and "3750" in out
    assert main(["spectrum", "raman", str(traj), "--key", "alpha", "--timestep", "0.5", "-o", str(tmp_path / "raman.csv")]) == 0
    assert "3650" in capsys.readouterr().out
    header = [l for l in (tmp_path / "raman.csv").read_text().splitlines() if not l.startswith("#")][0]
    assert header == "wavenumber_cm-1,isotropic,anisotropic,parallel,perpendicular"
    # neither a model nor a key
    assert main(["spectrum", "ir", str(traj), "-o", str(tmp_path / "x.csv")]) == 2
    assert "--model" in capsys.readouterr().err


def test_md_then_ir_from_a_dipole_model(tmp_path, capsys):
    """GFN2-xTB MD of water, then IR from an SA-GPR dipole model fitted on the shared water set."""
    pytest.importorskip("tblite")
    from tests.spectra._shared import DATA

    water_set = f"{DATA}/water_tensors/water_monomer"
    require(water_set)
    import glob

    xyz = sorted(glob.glob(f"{water_set}/*.xyz"))[0]
    start = tmp_path / "water.xyz"
    ase.io.write(start, Atoms("OH2", positions=[[0, 0, 0.117], [0, 0.757, -0.467], [0, -0.757, -0.467]]))
    traj = tmp_path / "traj.xyz"
    assert main(["md", str(start), "--steps", "60", "--temperature", "300", "-o", str(traj)]) == 0
    frames = ase.io.read(traj, ":")
    assert len(frames) == 60 and frames[1].info["md_timestep_fs"] == 0.5
    (tmp_path / "s.yaml").write_text("soap: {cutoff: 3.0, max_radial: 4, max_angular: 2}\nmodel: {n_sparse: 30}\n")
    model = tmp_path / "mu.model"
    assert main(["fit", f"{xyz}@:40", "--target", "mu", "--tensor", "i", "--units", "au",
                 "--config", str(tmp_path / "s.yaml"), "-o", str(model)]) == 0
    assert main(["spectrum", "ir", str(traj), "--model", str(model), "-o", str(tmp_path / "ir.csv")]) == 0
    assert (tmp_path / "ir.png").exists()
    # a polarizability model is refused for IR
    assert main(["md", str(start), "--calculator", "dftb", "--steps", "2", "-o", str(tmp_path / "t.xyz")]) == 2
    assert "unknown calculator" in capsys.readouterr().err


def test_fit_spectrum_from_orbital_energies(tmp_path, capsys):
    frames = labelled(12, seed=9)
    rng = np.random.default_rng(0)
    for a in frames:  # fake restricted orbital energies (Hartree), one level per atom
        a.info["orbital_energies"] = np.sort(-0.8 + 0.1 * a.numbers / 8 + 0.02 * rng.normal(size=len(a)))
        a.info["homo"] = float(a.info["orbital_energies"][-1])
    path = tmp_path / "orb.xyz"
    ase.io.write(path, frames, format="extxyz")
    (tmp_path / "s.yaml").write_text("soap: {cutoff: 4.0, max_radial: 3, max_angular: 2}\nmodel: {n_sparse: 20}\n")
    assert main(["fit-spectrum", str(path), "--target", "odos", "--from-orbitals", "0.02", "--grid=-1.2:0.2:71",
                 "--grid-units", "Hartree", "--dos-reference", "homo", "--config", str(tmp_path / "s.yaml"),
                 "-o", str(tmp_path / "odos.model")]) == 0
    assert "71 points from -1.2 to 0.2 Hartree" in capsys.readouterr().err
    assert main(["fit-spectrum", str(path), "--target", "odos", "--from-orbitals", "0.02", "-o", str(tmp_path / "x")]) == 2
    assert "--grid" in capsys.readouterr().err


def test_spectrum_reads_the_frame_interval_that_md_records(tmp_path, capsys):
    """`md --stride 2` records md_step every 2 steps; `spectrum ir` reads the interval (1 fs) from the
    file, and refuses a --timestep that disagrees. Before, `--timestep 0.5` (the README's usage)
    silently won and every wavenumber came out halved: 1650 cm^-1 reported at 825."""
    pytest.importorskip("tblite")
    from psilearn.observe.trajectory import recorded_interval

    start = tmp_path / "water.xyz"
    ase.io.write(start, Atoms("OH2", positions=[[0, 0, 0.117], [0, 0.757, -0.467], [0, -0.757, -0.467]]))
    assert main(["md", str(start), "--steps", "6", "--stride", "2", "-o", str(tmp_path / "md.xyz")]) == 0
    md = ase.io.read(tmp_path / "md.xyz", ":")
    assert [a.info["md_step"] for a in md] == [2, 4, 6] and recorded_interval(md) == 1.0
    frames = []
    for i in range(2000):  # what `md --stride 2 --timestep 0.5` writes, with a stored 1650 cm^-1 dipole
        a = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
        a.info["mu"] = np.array([np.cos(_omega(1650) * (i + 1) * 1.0), 0.1, 0.0])
        a.info.update(md_step=2 * (i + 1), md_timestep_fs=0.5)
        frames.append(a)
    traj = tmp_path / "traj.xyz"
    ase.io.write(traj, frames, format="extxyz")
    capsys.readouterr()
    assert main(["spectrum", "ir", str(traj), "--key", "mu", "--timestep", "0.5", "-o", str(tmp_path / "ir.csv")]) == 2
    err = capsys.readouterr().err
    assert "--timestep 0.5 fs disagrees" in err and "1 fs" in err and len(err.strip().splitlines()) == 1
    assert main(["spectrum", "ir", str(traj), "--key", "mu", "-o", str(tmp_path / "ir.csv")]) == 0
    assert "1650" in capsys.readouterr().out


def _csv_spectrum(path):
    lines = [l for l in path.read_text().splitlines() if not l.startswith("#")]
    data = np.loadtxt(lines[1:], delimiter=",")
    return data[:, 0], data[:, 1]


def test_strongest_bands_are_the_maxima_of_the_written_spectrum(tmp_path, capsys):
    """The printed 'strongest bands' are the highest local maxima of the written CSV above the stated
    cut, highest first. Before, they were ordered by prominence and the cut was not stated: a band at
    1640 cm^-1 (intensity 0.80) on the shoulder of one at 1600 was listed after a weaker, isolated one
    at 3000 cm^-1 (0.35)."""
    import re

    t = np.arange(4000) * 0.5
    frames = []
    for i, ti in enumerate(t):
        a = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
        a.info["mu"] = np.array([np.cos(_omega(1600) * ti) / 1600 + 0.9 * np.cos(_omega(1640) * ti) / 1640,
                                 0.6 * np.cos(_omega(3000) * ti) / 3000 + 1.5 * np.cos(_omega(100) * ti) / 100, 0.0])
        a.info.update(md_step=i, md_timestep_fs=0.5)
        frames.append(a)
    ase.io.write(tmp_path / "traj.xyz", frames, format="extxyz")
    csv = tmp_path / "ir.csv"
    assert main(["spectrum", "ir", str(tmp_path / "traj.xyz"), "--key", "mu", "-o", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "below 200 cm^-1 not listed" in out
    bands = [(float(p), float(h)) for p, h in re.findall(r"(\d+) \((\d\.\d\d)\)", out.split("not listed):")[1])]
    nu, y = _csv_spectrum(csv)
    step = nu[1] - nu[0]
    above = np.flatnonzero(nu >= 200)
    assert y.max() == 1.0 and nu[np.argmax(y)] < 200  # the strongest feature is below the cut (left out)
    maxima = [i for i in above[1:-1] if y[i] >= y[i - 1] and y[i] >= y[i + 1] and y[i] > 0.05 * y[above].max()]
    assert [round(p, -1) for p, _ in bands[:3]] == [1600, 1640, 3000]
    for p, h in bands:
        i = int(np.argmin(np.abs(nu - p)))
        assert abs(nu[i] - p) <= step / 2 + 0.5 and i in maxima and p >= 200  # a maximum of the CSV above the cut
        assert h == pytest.approx(y[i], abs=0.005)
    heights = [h for _, h in bands]
    assert heights == sorted(heights, reverse=True)
    assert bands[0][1] == pytest.approx(max(y[i] for i in maxima), abs=0.005)


def test_evaluate_a_spectrum_model_reports_spectral_metrics_and_plots_examples(files, dos_model, capsys, tmp_path):
    """Before: the per-grid-point 'channels' (121 here) were reported, NaN (or thousands of %) where
    the test spectra do not vary, in the --json output as bare NaN (not JSON); --plot wrote a
    parity plot (one panel per grid point at the time of the issue: 120 480 pixels wide)."""
    import matplotlib.image

    frames = ase.io.read(files / "test.xyz", ":")
    for a in frames:  # the test spectra are exactly zero at the low end of the grid
        a.info["dos"] = np.where(GRID < -5.5, 0.0, a.info["dos"])
    test = tmp_path / "test0.xyz"
    ase.io.write(test, frames, format="extxyz")
    png = tmp_path / "ev.png"
    assert main(["evaluate", str(dos_model), str(test), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.lower() and "0e#" not in out
    assert all(float(p) < 1000 for p in __import__("re").findall(r"([\d.]+)%", out))
    for words in ("RMSE", "rel. integrated error", "peak-position error", "Pearson r", "example spectra"):
        assert words in out
    h, w = matplotlib.image.imread(png).shape[:2]
    assert 300 <= h <= 1500 and 600 <= w <= 2500 and w > h  # a 2 x 3 grid of spectra
    assert main(["evaluate", str(dos_model), str(test), "--json", "--plot", str(png)]) == 0

    def no_nan(token):
        raise AssertionError(f"{token} in JSON output")

    m = json.loads(capsys.readouterr().out, parse_constant=no_nan)
    assert m["channels"] == {} and m["spectral"]["rmse"] > 0 and m["plots"]["spectra"] is not None
    assert len(m["plots"]["examples"]) == 6


def test_fit_spectrum_tune(files, capsys):
    """`fit-spectrum --tune`: an Optuna study stored in the model; a loss that cannot be tuned is one line, before any data."""
    from psilearn.models import load

    out = files / "tuned.model"
    assert main(["fit-spectrum", str(files / "train.xyz"), "--target", "dos", "--config", str(files / "small.yaml"),
                 "--tune", "5", "--seed", "2", "-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert "tuning spectrum for 5 s (Optuna TPE, seed 2)" in printed.err and "held-out estimate" in printed.out
    tuning = load(out).metadata["tuning"]
    assert tuning["history"] and np.isfinite(tuning["best_cv_rmse"])
    assert main(["fit-spectrum", str(files / "train.xyz"), "--target", "dos", "--loss", "shift", "--tune", "30", "-o", str(files / "x.model")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "loss 'shift' cannot be tuned" in err
