"""`fit-spectrum --baseline-method gfn1` (issue 14): psilearn's labeler computes a DOS baseline (GFN1-xTB orbital
energies, Gaussian-broadened on the target's grid with the target's width and reference) at fit and at predict
time through the label store; it equals the DOS the labeler or dos_from_orbitals writes, the model equals the
same fit on pre-labelled frames (--baseline KEY), the store is reused, the hash is checked, the sum is
rotation invariant, and spectra the labelers cannot produce are one-line refusals before any labelling (per-atom,
projected DOS: test_delta_method_pdos.py)."""

from __future__ import annotations

import dataclasses
import json

import ase.io
import numpy as np
import pytest
from ase import units
from scipy.spatial.transform import Rotation
from tests.spectra._shared import two_level_orbitals

from psilearn.cli.main import main
from psilearn.data.errors import DataError
from psilearn.data.spectra import dos_from_orbitals, load_spectrum_dataset, spectrum_target
from psilearn.errors import ConfigError
from psilearn.label.store import LabelStore
from psilearn.models.factory import fit_model
from psilearn.models.fidelity import delta_kind, delta_method_kind
from psilearn.targets import Target

METHOD = "gfn1"
CFG = {"soap": {"cutoff": 4.0, "max_radial": 4, "max_angular": 3}, "model": {"n_sparse": 20}}
GRID = np.linspace(-1.0, 0.3, 66)  # Hartree
SIGMA = 0.03


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def labelled():
    """Perturbed H2O, CH4, NH3 labelled with GFN2 (the target level) and GFN1 (the baseline), orbitals."""
    return two_level_orbitals(12, 5, low=METHOD)


def _bare(frames):
    out = []
    for a in frames:
        b = a.copy()
        b.info = {}
        out.append(b)
    return out


def _in_ev(frames):
    """Copies whose orbital energies and HOMO are in eV (to build an eV target with dos_from_orbitals)."""
    out = []
    for a in frames:
        b = a.copy()
        b.info["orbital_energies"] = np.asarray(a.info["orbital_energies"]) * units.Hartree
        b.info["homo"] = float(a.info["homo"]) * units.Hartree
        out.append(b)
    return out


def test_baseline_is_the_dos_of_the_method_and_the_store_is_reused(labelled, tmp_path):
    high, low = labelled
    frames = dos_from_orbitals(high, GRID, SIGMA, key="dos_gfn2")
    base = dos_from_orbitals(low, GRID, SIGMA, key="dos_b")
    target = spectrum_target(frames, "dos_gfn2", grid_units="Hartree")
    ds = load_spectrum_dataset(frames[:9], target)
    db = tmp_path / "b.db"
    model = fit_model(delta_method_kind(METHOD, "spectrum", db=db, sigma=SIGMA), target, ds, CFG)
    assert model.metadata["delta"]["baseline_method"]["derived"]["sigma"] == repr(SIGMA)
    pred = model.predict(_bare(frames[9:]), return_std=True)
    ref = np.array([b.info["dos_b"] for b in base[9:]])
    np.testing.assert_allclose(pred.baseline, ref, atol=1e-10 * ref.max())  # the GFN1 DOS, computed at predict time
    np.testing.assert_allclose(pred.values, pred.baseline + pred.correction, atol=1e-12)
    assert pred.std.shape == pred.values.shape and pred.std.min() > 0
    pre = [a.copy() for a in frames]
    for a, b in zip(pre, base):
        a.info["dos_b"], a.info["dos_b_grid"] = b.info["dos_b"], GRID
    key_model = fit_model(delta_kind("dos_b", "spectrum"), target, load_spectrum_dataset(pre[:9], target), CFG)
    np.testing.assert_allclose(pred.values, key_model.predict(pre[9:]).values, atol=1e-8 * ref.max())
    assert LabelStore(db).count(label_status="ok") == 12
    model.predict(_bare(frames[9:]))
    assert model.last_baseline_summary.done == 0 and model.last_baseline_summary.skipped == 3
    model.baseline_method = dataclasses.replace(model.baseline_method, method_hash="0" * 32)  # as after a tblite upgrade
    model.baseline_db = tmp_path / "fresh.db"
    with pytest.raises(ConfigError, match="now hashes to .* refit the model"):
        model.predict(_bare(frames[9:10]))
    assert not (tmp_path / "fresh.db").exists()


def test_ev_grid_and_homo_reference(labelled, tmp_path):
    high, low = labelled
    grid = np.linspace(-20.0, 8.0, 57)
    frames = dos_from_orbitals(_in_ev(high), grid, 0.6, key="dos", reference="homo")
    base = dos_from_orbitals(_in_ev(low), grid, 0.6, key="dos", reference="homo")
    target = spectrum_target(frames, "dos", grid_units="eV", units="states/eV")
    model = fit_model(delta_method_kind(METHOD, "spectrum", db=tmp_path / "b.db", sigma=0.6, reference="homo"), target,
                      load_spectrum_dataset(frames[:9], target), CFG)
    pred = model.predict(_bare(frames[9:]))
    ref = np.array([b.info["dos"] for b in base[9:]])
    np.testing.assert_allclose(pred.baseline, ref, atol=1e-9 * ref.max())
    other = frames[9].copy()  # an input recording another broadening of the target is refused
    other.info["dos_sigma"] = 0.3
    with pytest.raises(DataError, match="'dos' is broadened with dos_sigma=0.3 .* the model's baseline with 0.6 \\(homo\\)"):
        model.predict([other])


GRID_T = tuple(GRID)


@pytest.mark.parametrize("target, sigma, message", [
    (Target("xanes", grid=GRID_T, grid_units="eV", absorber="Fe", pool="mean"), SIGMA, "belongs to the Fe absorber \\(an X-ray spectrum\\)"),
    (Target("absorbance", per="atom", grid=GRID_T, grid_units="Hartree"), SIGMA, "is not named as a density of states"),
    (Target("absorbance", grid=GRID_T, grid_units="Hartree"), SIGMA, "is not named as a density of states"),
    (Target("dos", grid=GRID_T), SIGMA, "has the grid units 'none': a DOS baseline from orbital energies needs an energy grid"),
    (Target("dos", grid=GRID_T, grid_units="cm^-1"), SIGMA, "has the grid units 'cm\\^-1'"),
    (Target("dos", grid=GRID_T, grid_units="eV", units="states/Hartree"), SIGMA, "is in 'states/Hartree': .* states/eV; values are never converted"),
    (Target("dos", grid=GRID_T, grid_units="Hartree"), None, "needs the Gaussian width of its broadening"),
])
def test_refusals_name_the_reason(target, sigma, message):
    with pytest.raises(ConfigError, match=message) as e:
        delta_method_kind(METHOD, "spectrum", sigma=sigma).resolve_method(target)
    assert "\n" not in str(e.value)


def test_cli_labeler_dos_fit_predict_rotation(labelled, tmp_path, capsys):
    """The labeler's own 'dos' (its grid dos_emin..dos_emax, width dos_sigma) as the target: the baseline is
    exactly the GFN1 labeler's 'dos'; predict-spectrum and predict write the sum, baseline and correction."""
    high, low = labelled
    train, test, model = tmp_path / "train.xyz", tmp_path / "test.xyz", tmp_path / "ddos.model"
    ase.io.write(train, high[:9])
    ase.io.write(test, _bare(high[9:]))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("soap: {cutoff: 4.0, max_radial: 4, max_angular: 3}\nmodel: {n_sparse: 20}\n")
    assert main(["fit-spectrum", str(train), "--target", "dos", "--grid-units", "Hartree", "--baseline-method", METHOD,
                 "--config", str(cfg), "-o", str(model)]) == 0
    assert "sigma 0.01 Hartree, reference none) from gfn1" in capsys.readouterr().err
    assert json.loads((model / "model.json").read_text())["baseline_method"]["method"] == METHOD
    out = tmp_path / "p.xyz"
    assert main(["predict-spectrum", str(model), str(test), "-o", str(out)]) == 0
    assert "3 labelled now, 0 already in the database" in capsys.readouterr().err
    pred = ase.io.read(out, ":")
    for a, lo in zip(pred, low[9:]):
        # the GFN1 labeler's dos; to 1e-4: test.xyz rounds positions to 1e-8 A, and the DOS is steep (sigma 0.01 Ha)
        np.testing.assert_allclose(a.info["dos_baseline"], lo.info["dos"], atol=1e-4 * np.max(lo.info["dos"]))
        np.testing.assert_allclose(a.info["dos"], a.info["dos_baseline"] + a.info["dos_correction"], atol=1e-9)
    rot = Rotation.random(random_state=4).as_matrix()
    turned = _bare(high[9:])
    for a in turned:
        a.positions = a.positions @ rot.T
    ase.io.write(tmp_path / "rot.xyz", turned)
    assert main(["predict", str(model), str(tmp_path / "rot.xyz"), "-o", str(tmp_path / "r.xyz")]) == 0
    assert "3 labelled now" in capsys.readouterr().err  # rotated structures are new structures for the store
    for a, r in zip(pred, ase.io.read(tmp_path / "r.xyz", ":")):
        np.testing.assert_allclose(r.info["dos"], a.info["dos"], atol=1e-4 * np.max(a.info["dos"]))
    assert main(["predict-spectrum", str(model), str(test), "-o", str(tmp_path / "p.csv")]) == 0
    assert "0 labelled now, 3 already in the database" in capsys.readouterr().err
    for flags, message in ((["--loss", "shift"], "Δ-learning of spectra takes the plain loss 'l2' only"),
                           (["--baseline", "dos"], "not both")):
        assert main(["fit-spectrum", str(train), "--target", "dos", "--grid-units", "Hartree", "--baseline-method", METHOD, *flags,
                     "-o", str(tmp_path / "x.model")]) == 2
        assert message in _error_line(capsys)
    assert main(["fit-spectrum", str(train), "--target", "dos", "--baseline-method", METHOD, "-o", str(tmp_path / "x.model")]) == 2
    assert "declare --grid-units Hartree" in _error_line(capsys)
    assert not (tmp_path / "x.model.baseline.db").exists()
