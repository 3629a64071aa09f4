"""Δ-learning of densities (fit --density --baseline KEY): a zero baseline gives the plain model, a
known correction is learned, the sum holds exactly N electrons, equivariance, file round trip, CLI,
and one-line refusals. Fixture: the 24 HF/STO-3G molecules of conftest.py (def2-universal-jkfit)."""

import ase.io
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from psilearn.data import load_density_dataset
from psilearn.data.errors import DataError
from psilearn.models import load
from psilearn.models.density.constraint import structure_metric
from psilearn.models.factory import fit_model
from psilearn.models.fidelity import delta_kind
from psilearn.targets.ao_basis import e3nn_rotation

from ._shared import SOAP

BASE = "density_coefficients_base"
FIXED = {"soap": SOAP, "density": {"regularization": 1e-6}}


def _with_baseline(data, scale: float) -> list:
    """The structures with a baseline ``scale`` x the target's coefficients (the correction is (1 - scale) c)."""
    out = []
    for i, a in enumerate(data.frames):
        b = a.copy()
        b.info[BASE] = scale * data.coefficients(i)
        out.append(b)
    return out


def _metric_error(target, frames, predicted, reference) -> float:
    err = ref = 0.0
    for a, p, c in zip(frames, predicted, reference):
        s, _ = structure_metric(target, a)
        err += (p - c) @ s @ (p - c)
        ref += c @ s @ c
    return float(np.sqrt(err / ref))


@pytest.fixture(scope="module")
def scaled(data):
    frames = _with_baseline(data, 0.9)
    ds = load_density_dataset(frames[:20])
    return frames, fit_model(delta_kind(BASE, "density"), ds.target, ds, FIXED), fit_model("density", ds.target, ds, FIXED)


def test_zero_baseline_equals_the_plain_model(data):
    frames = _with_baseline(data, 0.0)
    ds = load_density_dataset(frames[:20])
    delta = fit_model(delta_kind(BASE, "density"), ds.target, ds, FIXED)
    plain = fit_model("density", ds.target, ds, FIXED)
    for conserve in (True, False):
        pd, pp = delta.predict(frames[20:], conserve=conserve), plain.predict(frames[20:], conserve=conserve)
        for x, y in zip(pd.coefficients, pp.coefficients):
            assert np.abs(x - y).max() < 1e-10 * np.abs(y).max()
        assert np.allclose(pd.electrons, pp.electrons, atol=1e-10)


def test_a_known_correction_is_learned(scaled, data):
    """Baseline 0.9 c: the model learns 0.1 c; with a fixed lambda the fit is linear in the labels, so
    the free (unconstrained) error of the sum is exactly 0.1 x the plain model's."""
    frames, delta, plain = scaled
    test, ref = frames[20:], [data.coefficients(i) for i in range(20, 24)]
    e_delta = _metric_error(data.target, test, delta.predict(test, conserve=False).coefficients, ref)
    e_plain = _metric_error(data.target, test, plain.predict(test, conserve=False).coefficients, ref)
    assert e_plain > 1e-4
    assert e_delta == pytest.approx(0.1 * e_plain, rel=1e-6)
    pred = delta.predict(test, conserve=False)
    for p, b, c in zip(pred.coefficients, pred.baseline, pred.correction):
        assert np.array_equal(p, b + c)


def test_the_sum_holds_exactly_n_electrons(scaled, data):
    frames, delta, _ = scaled
    test = [a.copy() for a in frames[20:]]
    test[0].info.update(charge=1, multiplicity=2)  # a cation: N - 1 electrons from the same baseline
    pred = delta.predict(test)
    for a, c, b, d in zip(test, pred.coefficients, pred.baseline, pred.correction):
        _, q = structure_metric(data.target, a)
        n = a.numbers.sum() - a.info.get("charge", 0)
        assert abs(q @ c - n) < 1e-10
        assert abs(q @ (b + d) - n) < 1e-10
    free = delta.predict(test, conserve=False)
    _, q = structure_metric(data.target, test[1])
    assert abs(q @ free.coefficients[1] - test[1].numbers.sum()) > 1e-6  # the constraint does something


@pytest.mark.parametrize("proper", [True, False], ids=["rotation", "rotation+inversion"])
def test_equivariance(scaled, data, proper):
    frames, delta, _ = scaled
    a = frames[22].copy()
    t = data.target
    rot = Rotation.random(random_state=5).as_matrix() * (1 if proper else -1)

    def rotate(c):
        e = t.to_irreps(a, c)
        for l, idx in t.index_by_l(a).items():
            e[idx] = e[idx] @ e3nn_rotation(l, rot).T
        return t.from_irreps(a, e)

    b = a.copy()
    b.positions = a.positions @ rot.T
    b.info[BASE] = rotate(a.info[BASE])
    c0, c1 = delta.predict([a, b]).coefficients
    assert np.abs(c1 - rotate(c0)).max() < 1e-8 * np.abs(c0).max()
    assert np.abs(c1 - c0).max() > 1e-3 * np.abs(c0).max()


def test_save_load_identical(scaled, tmp_path):
    frames, delta, _ = scaled
    delta.save(tmp_path / "d.model")
    back = load(tmp_path / "d.model")
    assert back.kind == "delta" and back.inner.kind == "density" and back.baseline == BASE
    for x, y in zip(delta.predict(frames[20:]).coefficients, back.predict(frames[20:]).coefficients):
        assert np.array_equal(x, y)


def test_refusals_are_one_line(scaled, data):
    frames, delta, _ = scaled
    a = frames[21].copy()
    del a.info[BASE]
    with pytest.raises(DataError, match=f"no baseline label '{BASE}'") as e:
        delta.predict([a])
    assert "\n" not in str(e.value)
    for name, value, what in ((f"{BASE}_aux_basis", "cc-pvdz-jkfit", "auxiliary basis 'cc-pvdz-jkfit'"),
                              ("density_metric_base", "overlap", "metric 'overlap'")):
        b = frames[21].copy()
        b.info[name] = value
        with pytest.raises(DataError, match=what) as e:
            delta.predict([b])
        assert BASE in str(e.value) and "\n" not in str(e.value)
    c = frames[21].copy()
    c.info[BASE] = c.info[BASE][:-3]
    with pytest.raises(DataError, match="same auxiliary basis and metric") as e:
        delta.predict([c])
    assert BASE in str(e.value) and "\n" not in str(e.value)


def test_cli_fit_predict_writes_sum_baseline_correction(data, tmp_path, capsys):
    from psilearn.cli.main import main as cli_main

    path = tmp_path / "train.xyz"
    ase.io.write(path, _with_baseline(data, 0.9))
    cfg = tmp_path / "o.yaml"
    cfg.write_text("soap: {cutoff: 4.0, max_radial: 3, max_angular: 2}\ndensity: {n_sparse: 10}\n")
    model, out = tmp_path / "m", tmp_path / "p.xyz"
    assert cli_main(["fit", f"{path}@:12", "--target", "density_coefficients", "--density", "--baseline", BASE,
                     "--config", str(cfg), "-o", str(model)]) == 0
    assert "learns density_coefficients - density_coefficients_base" in capsys.readouterr().err
    assert cli_main(["predict", str(model), f"{path}@20:", "-o", str(out)]) == 0
    ds = load_density_dataset(str(out))
    for a in ds.frames:
        c, b, d = (np.asarray(a.info[k]) for k in ("density_coefficients", "density_coefficients_baseline", "density_coefficients_correction"))
        assert np.allclose(b, a.info[BASE]) and np.allclose(c, b + d, atol=1e-12)
        assert abs(a.info["density_electrons"] - a.numbers.sum()) < 1e-10
    capsys.readouterr()
    assert cli_main(["fit", str(path), "--target", "density_coefficients", "--density", "--baseline", "nope", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no baseline label 'nope'" in err and "frame 0" in err
    assert cli_main(["fit", str(path), "--target", "density_coefficients", "--density", "--baseline-method", "gfn2",
                     "-o", str(tmp_path / "y")]) == 2
    assert "xTB methods compute no density labels" in capsys.readouterr().err  # XC/BASIS works: test_delta_method_density.py


def test_evaluate_uses_the_sum(scaled, data):
    from psilearn.evaluation import evaluate

    frames, delta, _ = scaled
    m = evaluate(delta, frames[20:])
    assert m["n_structures"] == 4 and m["max_electron_error"] < 1e-10 and 0 < m["l2_percent"] < 100


def test_learning_curve_with_a_baseline(data, tmp_path, capsys):
    from psilearn.cli.main import main as cli_main

    path = tmp_path / "all.xyz"
    ase.io.write(path, _with_baseline(data, 0.9))
    cfg = tmp_path / "o.yaml"
    cfg.write_text("soap: {cutoff: 4.0, max_radial: 3, max_angular: 2}\ndensity: {n_sparse: 10}\n")
    assert cli_main(["learning-curve", f"{path}@:16", f"{path}@20:", "--target", "density_coefficients", "--density",
                     "--baseline", BASE, "--sizes", "8,16", "--config", str(cfg), "--json"]) == 0
    import json

    lc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert lc["model"] == "delta[density]" and len(lc["metrics"]["l2_percent"]) == 2
