"""Δ-learning of spectra (fit-spectrum --baseline KEY, loss l2 only): a zero baseline gives the plain
model, a known correction is learned, file round trip, predict-spectrum writes the sum, baseline and
correction, and one-line refusals (shift/align losses, another grid, a missing baseline)."""

import ase.io
import numpy as np
import pytest
from tests.spectra._synthetic import GRID, labelled

from psilearn.cli.main import main
from psilearn.data.errors import DataError
from psilearn.data.spectra import load_spectrum_dataset, read_spectrum_table, spectrum_target
from psilearn.errors import ConfigError
from psilearn.models import load
from psilearn.models.factory import fit_model
from psilearn.models.fidelity import delta_kind

BASE = "dos_base"
CFG = {"soap": {"cutoff": 4.0, "max_radial": 4, "max_angular": 3}, "model": {"n_sparse": 40}}


def _with_baseline(frames, scale: float) -> list:
    """Copies with a baseline ``scale`` x dos on the same grid (the correction is (1 - scale) dos)."""
    out = []
    for a in frames:
        b = a.copy()
        b.info[BASE] = scale * np.asarray(a.info["dos"])
        b.info[BASE + "_grid"] = GRID
        out.append(b)
    return out


def _data(frames):
    target = spectrum_target(frames, "dos", grid_units="eV")
    return target, load_spectrum_dataset(frames, target)


@pytest.fixture(scope="module")
def frames():
    return labelled(30, seed=4)


def test_zero_baseline_equals_the_plain_model(frames):
    fr = _with_baseline(frames, 0.0)
    target, ds = _data(fr[:24])
    delta = fit_model(delta_kind(BASE, "spectrum"), target, ds, CFG)
    plain = fit_model("spectrum", target, ds, CFG)
    pd, pp = delta.predict(fr[24:]), plain.predict(fr[24:])
    assert np.abs(pd.values - pp.values).max() < 1e-10 * np.abs(pp.values).max()
    assert np.abs(pd.std - pp.std).max() < 1e-10 * np.abs(pp.std).max()


def test_a_known_correction_is_learned_and_saved(frames, tmp_path):
    fr = _with_baseline(frames, 0.9)
    target, ds = _data(fr[:24])
    delta = fit_model(delta_kind(BASE, "spectrum"), target, ds, CFG)
    plain = fit_model("spectrum", target, ds, CFG)
    ref = np.array([a.info["dos"] for a in fr[24:]])
    pd = delta.predict(fr[24:])
    e_delta, e_plain = np.sqrt(np.mean((pd.values - ref) ** 2)), np.sqrt(np.mean((plain.predict(fr[24:]).values - ref) ** 2))
    assert e_plain > 1e-3 and e_delta < 0.2 * e_plain
    assert np.array_equal(pd.values, pd.baseline + pd.correction)
    delta.save(tmp_path / "d.model")
    back = load(tmp_path / "d.model")
    assert back.kind == "delta" and back.inner.kind == "spectrum"
    assert np.array_equal(back.predict(fr[24:]).values, pd.values)


def test_refusals(frames):
    fr = _with_baseline(frames[:24], 0.9)
    target, ds = _data(fr)
    for loss in ("shift", "align"):
        with pytest.raises(ConfigError, match=f"--loss {loss}: the spectrum losses 'shift' and 'align' move each target"):
            fit_model(delta_kind(BASE, "spectrum"), target, ds, {**CFG, "model": {"n_sparse": 40, "loss": loss}})
    other = [a.copy() for a in fr]
    other[3].info[BASE + "_grid"] = np.linspace(-5, 5, 121)
    with pytest.raises(DataError, match="frame 3: the baseline spectrum 'dos_base' is on another grid") as e:
        fit_model(delta_kind(BASE, "spectrum"), target, load_spectrum_dataset(other, target), CFG)
    assert "\n" not in str(e.value)
    from psilearn.models.fidelity import delta_method_kind

    with pytest.raises(ConfigError, match="'dos' needs the Gaussian width of its broadening"):  # the synthetic set records none
        delta_method_kind("gfn2", "spectrum").resolve_method(target)


def test_cli_fit_predict_writes_sum_baseline_correction(frames, tmp_path, capsys):
    fr = _with_baseline(frames, 0.9)
    train, test = tmp_path / "train.xyz", tmp_path / "test.xyz"
    ase.io.write(train, fr[:24], format="extxyz")
    ase.io.write(test, fr[24:], format="extxyz")
    cfg = tmp_path / "o.yaml"
    cfg.write_text("soap: {cutoff: 4.0, max_radial: 4, max_angular: 3}\nmodel: {n_sparse: 40}\n")
    model = tmp_path / "m"
    assert main(["fit-spectrum", str(train), "--target", "dos", "--baseline", BASE, "--config", str(cfg), "-o", str(model)]) == 0
    assert "learns dos - dos_base (loss l2)" in capsys.readouterr().err
    out = tmp_path / "p.xyz"
    assert main(["predict-spectrum", str(model), str(test), "-o", str(out)]) == 0
    for a, r in zip(ase.io.read(out, ":"), fr[24:]):
        assert np.allclose(a.info["dos_baseline"], r.info[BASE]) and np.allclose(a.info["dos"], a.info["dos_baseline"] + a.info["dos_correction"])
    assert main(["predict-spectrum", str(model), str(test), "-o", str(tmp_path / "p.csv")]) == 0
    grid, y, _ = read_spectrum_table(tmp_path / "p.csv")
    assert y.shape == (6, len(GRID)) and np.allclose(y, [a.info["dos"] for a in ase.io.read(out, ":")])
    capsys.readouterr()
    assert main(["fit-spectrum", str(train), "--target", "dos", "--baseline", BASE, "--loss", "shift", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Δ-learning of spectra takes the plain loss 'l2' only" in err
    bare = [a.copy() for a in fr[24:]]
    for a in bare:
        del a.info[BASE]
    ase.io.write(tmp_path / "bare.xyz", bare, format="extxyz")
    assert main(["predict-spectrum", str(model), str(tmp_path / "bare.xyz"), "-o", str(tmp_path / "q.xyz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "frame 0: no label 'dos_base'" in err
