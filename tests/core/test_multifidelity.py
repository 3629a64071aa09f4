"""Multi-fidelity (recursive co-kriging): one level is the plain model, a known linear relation between
synthetic levels is recovered and beats the high level alone, equivariance, files, errors."""

from __future__ import annotations

import numpy as np
import pytest

from psilearn.data import load_dataset
from psilearn.errors import ConfigError, DataError
from psilearn.models import load
from psilearn.models.factory import fit_model
from psilearn.models.fidelity import multifidelity_kind
from psilearn.targets import Target

from ._synth import SMALL_MODEL, SMALL_SOAP, cartesian_operator, label_frames, level_frames, molecules, random_rotation

TARGET = Target("alpha", tensor="ij=ji")
CONFIG = {"soap": SMALL_SOAP, "model": {**SMALL_MODEL, "n_sparse": 40}}


def _levels(frames, lo: list[int], hi: list[int], extra: float = 0.0):
    """Low level: the synthetic label; high level: 1.7 x (low), plus ``extra`` x a traceless synthetic
    tensor (a learnable correction, not orthogonal to the low level's 2e part)."""
    base = label_frames(frames, "alpha", "sym2", "structure")
    more = label_frames(frames, "x", "sym2_traceless", "structure")
    return level_frames(base, "alpha", lo, hi, lambda i, a: 1.7 * np.asarray(base[i].info["alpha"]) + extra * np.asarray(more[i].info["x"]))


@pytest.fixture(scope="module")
def frames():
    return molecules(5, 70)


@pytest.fixture(scope="module")
def fitted(frames):
    data = load_dataset(_levels(frames, list(range(50)), list(range(0, 50, 6))), TARGET)  # nested: hi on 9 of the lo structures
    kind = multifidelity_kind("level", None, "pbe0")
    return fit_model(kind, TARGET, data, CONFIG, seed=0)


def test_one_level_is_the_plain_model(frames):
    train = label_frames(frames[:20], "alpha", "sym2", "structure")
    for a in train:
        a.info["level"] = "dft"
    data = load_dataset(train, TARGET)
    mf = fit_model(multifidelity_kind("level", None, "dft"), TARGET, data, CONFIG, seed=0)
    plain = fit_model("sagpr", TARGET, data, CONFIG, seed=0)
    a, b = mf.predict(frames[50:]), plain.predict(frames[50:])
    np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-10, atol=1e-14)
    assert mf.levels == ["dft"] and mf.rho == []


def test_known_linear_relation_is_recovered_and_beats_the_high_level_alone(fitted, frames):
    assert fitted.levels == ["gfn2", "pbe0"]  # more structures first, the target level last
    np.testing.assert_allclose(fitted.rho[0], 1.7, rtol=0.01)
    rec = fitted.metadata["multifidelity"]["per_level"]
    assert [r["n_structures"] for r in rec] == [50, 9]
    test = _levels(frames, [], list(range(50, 70)))
    truth = np.array([a.info["alpha"] for a in test])
    hi_only = fit_model("sagpr", TARGET, load_dataset(_levels(frames, [], list(range(0, 50, 6))), TARGET), CONFIG, seed=0)
    rmse = lambda p: float(np.sqrt(np.mean((p.values - truth) ** 2)))  # noqa: E731
    mf, alone = rmse(fitted.predict(test)), rmse(hi_only.predict(test))
    assert mf < 0.6 * alone, (mf, alone)
    # and close to the ideal: the scaled error of the cheap level's own model (50 structures)
    lo_truth = np.array([1.7 * np.asarray(a.info["alpha"]) for a in label_frames(frames[50:70], "alpha", "sym2", "structure")])
    ideal = float(np.sqrt(np.mean((1.7 * fitted.models[0].predict(test).values - lo_truth) ** 2)))
    assert mf < 1.1 * ideal, (mf, ideal)
    # the cheap level is still available, and its prediction is the level-0 model's
    lo = fitted.predict(test, fidelity="gfn2")
    np.testing.assert_allclose(lo.values, fitted.models[0].predict(test).values)
    # the target level's variance adds the scaled lower level's to the correction's
    assert np.all(fitted.predict(test).std >= fitted.models[1].predict(test).std - 1e-12)


def test_a_correction_on_top_of_the_scaled_level(frames):
    """High level = 1.7 x low + a learnable extra term: still far better than the high level alone."""
    hi_idx = list(range(0, 50, 5))
    data = load_dataset(_levels(frames, list(range(50)), hi_idx, extra=0.1), TARGET)
    model = fit_model(multifidelity_kind("level", ["gfn2", "pbe0"], "pbe0"), TARGET, data, CONFIG, seed=0)
    test = _levels(frames, [], list(range(50, 70)), extra=0.1)
    truth = np.array([a.info["alpha"] for a in test])
    alone = fit_model("sagpr", TARGET, load_dataset(_levels(frames, [], hi_idx, extra=0.1), TARGET), CONFIG, seed=0)
    rmse = lambda p: float(np.sqrt(np.mean((p.values - truth) ** 2)))  # noqa: E731
    assert rmse(model.predict(test)) < 0.8 * rmse(alone.predict(test)), (rmse(model.predict(test)), rmse(alone.predict(test)))


def test_equivariant_under_rotations_and_reflections(fitted, frames):
    rng = np.random.default_rng(3)
    a = frames[60]
    for q in (random_rotation(rng), -random_rotation(rng)):
        b = a.copy()
        b.positions = a.positions @ q.T
        pa, pb = fitted.predict([a], return_cov=True), fitted.predict([b], return_cov=True)
        op = cartesian_operator(q, 2)
        np.testing.assert_allclose(pb.values[0], op @ pa.values[0], atol=1e-9)
        np.testing.assert_allclose(pb.cov[0], op @ pa.cov[0] @ op.T, atol=1e-9)


def test_file_round_trip(fitted, frames, tmp_path):
    fitted.save(tmp_path / "mf.model")
    back = load(tmp_path / "mf.model")
    assert back.kind == "multifidelity" and back.levels == fitted.levels
    for fid in (None, "gfn2"):
        a, b = fitted.predict(frames[55:60], fidelity=fid), back.predict(frames[55:60], fidelity=fid)
        np.testing.assert_allclose(b.values, a.values, atol=1e-12)
        np.testing.assert_allclose(b.std, a.std, rtol=1e-4)


def test_per_atom_target(frames):
    target = Target("q", per="atom")
    lo = label_frames(frames[:30], "q", "scalar", "atom")
    hi = [a.copy() for a in lo[::3]]
    for a in lo:
        a.info["level"] = "lo"
    for a in hi:
        a.arrays["q"] = 0.5 * a.arrays["q"] + 0.1
        a.info["level"] = "hi"
    model = fit_model(multifidelity_kind("level", ["lo", "hi"], "hi"), target, load_dataset(lo + hi, target), CONFIG, seed=0)
    test = label_frames(frames[60:], "q", "scalar", "atom")
    truth = np.concatenate([0.5 * a.arrays["q"] + 0.1 for a in test])
    pred = model.predict(test)
    assert pred.values.shape == (len(truth), 1)
    # the high level is half the low one plus an offset: rho ~ 0.5 (the offset, which least squares without
    # intercept partly folds into rho, is the correction's), and the error is the scaled low level's
    np.testing.assert_allclose(model.rho[0], 0.5, rtol=0.1)
    lo_err = np.sqrt(np.mean((model.predict(test, fidelity="lo").values[:, 0] - np.concatenate([a.arrays["q"] for a in test])) ** 2))
    assert np.sqrt(np.mean((pred.values[:, 0] - truth) ** 2)) < 1.15 * 0.5 * lo_err


def test_clear_errors(fitted, frames):
    with pytest.raises(ConfigError, match="fidelity 'ccsd' is not a level of this model"):
        fitted.predict(frames[:2], fidelity="ccsd")
    data = load_dataset(_levels(frames, list(range(10)), []), TARGET)
    with pytest.raises(DataError, match="no training structure has level=pbe0"):
        fit_model(multifidelity_kind("level", None, "pbe0"), TARGET, data, CONFIG, seed=0)
    unlabelled = label_frames(frames[:5], "alpha", "sym2", "structure")
    with pytest.raises(DataError, match="frame 0.*no fidelity 'level'"):
        fit_model(multifidelity_kind("level", None, "pbe0"), TARGET, load_dataset(unlabelled, TARGET), CONFIG, seed=0)
    with pytest.raises(ConfigError, match="target level 'pbe0' among them"):
        multifidelity_kind("level", ["gfn2", "b3lyp"], "pbe0")
    with pytest.raises(ConfigError, match="cannot be a level"):
        multifidelity_kind("level", None, "pbe0", inner="qeq")
    data = load_dataset(_levels(frames, list(range(10)), [1, 2]), TARGET)
    with pytest.raises(DataError, match="not among the levels"):
        fit_model(multifidelity_kind("level", ["xtb", "pbe0"], "pbe0"), TARGET, data, CONFIG, seed=0)
    with pytest.raises(DataError, match="level 'pbe' \\(--fidelities\\) has no training structure"):  # a misspelt level, not dropped
        fit_model(multifidelity_kind("level", ["gfn2", "pbe", "pbe0"], "pbe0"), TARGET, data, CONFIG, seed=0)


def cli_fit_inputs(tmp_path, data, new) -> list[str]:
    """Writes the two levels of ``data`` (lo.xyz, hi.xyz), ``new`` structures (new.xyz) and a small options
    file to ``tmp_path``; returns the `psilearn fit` arguments that read them (no output, no fidelity options)."""
    from psilearn.data import write_structures

    write_structures(tmp_path / "lo.xyz", [a for a in data if a.info["level"] == "gfn2"])
    write_structures(tmp_path / "hi.xyz", [a for a in data if a.info["level"] == "pbe0"])
    write_structures(tmp_path / "new.xyz", new)
    soap = ", ".join(f"{k}: {v}" for k, v in SMALL_SOAP.items())
    (tmp_path / "c.yaml").write_text(f"soap: {{{soap}}}\nmodel: {{n_sparse: 40}}\n")
    return ["fit", str(tmp_path / "lo.xyz"), str(tmp_path / "hi.xyz"), "--target", "alpha", "--tensor", "ij=ji",
            "--config", str(tmp_path / "c.yaml")]


def test_cli_several_files_and_predict_fidelity(frames, tmp_path, capsys):
    from psilearn.cli.main import main
    from psilearn.data import read_structures

    data = _levels(frames, list(range(40)), list(range(0, 40, 5)))
    fit = cli_fit_inputs(tmp_path, data, frames[60:64]) + ["-o", str(tmp_path / "mf.model")]
    assert main(fit + ["--fidelity-key", "level", "--target-fidelity", "pbe0"]) == 0
    err = capsys.readouterr().err
    assert "48 structures from" in err and "multi-fidelity: levels by level, predicting pbe0" in err
    model = load(tmp_path / "mf.model")
    assert model.levels == ["gfn2", "pbe0"]
    for extra, level in (([], "pbe0"), (["--fidelity", "gfn2"], "gfn2")):
        out = tmp_path / f"p_{level}.xyz"
        assert main(["predict", str(tmp_path / "mf.model"), str(tmp_path / "new.xyz"), "-o", str(out), *extra]) == 0
        got = np.array([a.info["alpha"] for a in read_structures(str(out))])
        np.testing.assert_allclose(got, model.predict(frames[60:64], fidelity=level).values, atol=1e-10)
    capsys.readouterr()
    # clear one-line errors
    assert main(["predict", str(tmp_path / "mf.model"), str(tmp_path / "new.xyz"), "-o", str(tmp_path / "x.xyz"), "--fidelity", "ccsd"]) == 2
    assert "fidelity 'ccsd' is not a level of this model" in capsys.readouterr().err
    assert main(fit[:-1] + [str(tmp_path / "b.model"), "--target-fidelity", "pbe0"]) == 2
    assert "go with --fidelity-key" in capsys.readouterr().err
    assert main(fit[:-1] + [str(tmp_path / "a.model"), "--fidelity-key", "level", "--target-fidelity", "pbe0",
                            "--affine-fidelities", "pbe0"]) == 0
    assert load(tmp_path / "a.model").affine == ["pbe0"] and load(tmp_path / "a.model").models[1] is None
    assert main(fit[:-1] + [str(tmp_path / "b.model"), "--fidelity-key", "level", "--target-fidelity", "pbe0", "--val-fraction", "0.2"]) == 2
    assert "would mix levels" in capsys.readouterr().err
    assert main(fit[:-1] + [str(tmp_path / "b.model"), "--fidelity-key", "level", "--target-fidelity", "pbe0",
                            "--baseline", "alpha"]) == 2
    assert "cannot be combined" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "lo.xyz"), "--target", "alpha", "--tensor", "ij=ji", "--config", str(tmp_path / "c.yaml"),
                 "-o", str(tmp_path / "plain.model")]) == 0
    assert main(["predict", str(tmp_path / "plain.model"), str(tmp_path / "new.xyz"), "-o", str(tmp_path / "x.xyz"), "--fidelity", "gfn2"]) == 2
    assert "not a multi-fidelity one" in capsys.readouterr().err


def test_experiment_like_source_affine_calibration_is_recovered(frames, tmp_path):
    """A synthetic 'experiment': 1.3 x the computed level + 0.5 on the isotropic part + noise (0.05 per
    component), measured on structures also computed (nested) - the scale, offset and noise are recovered,
    and predictions of that source carry its noise."""
    rng = np.random.default_rng(7)
    calc = label_frames(frames[:50], "alpha", "sym2", "structure")
    for a in calc:
        a.info["level"] = "dft"
    exp = []
    for a in calc[:40]:
        b = a.copy()
        b.info["alpha"] = 1.3 * np.asarray(a.info["alpha"]) + 0.5 * np.eye(3).ravel() + rng.normal(0, 0.05, 9)
        b.info["alpha"] = (b.info["alpha"].reshape(3, 3) + b.info["alpha"].reshape(3, 3).T).ravel() / 2
        b.info["level"] = "exp"
        exp.append(b)
    data = load_dataset(calc + exp, TARGET)
    model = fit_model(multifidelity_kind("level", ["dft", "exp"], "exp", affine=["exp"]), TARGET, data, CONFIG, seed=0)
    cal = model.metadata["multifidelity"]["per_level"][1]["affine_calibration"]
    assert abs(cal["rho"]["0e"] - 1.3) < 0.02 and abs(cal["rho"]["2e"] - 1.3) < 0.02
    np.testing.assert_allclose(cal["offset_cartesian"], 0.5 * np.eye(3).ravel(), atol=0.05)
    assert 0.02 < cal["noise_std"]["2e"] < 0.08  # symmetrised noise: per component of 2e ~0.05/sqrt(2)..0.05
    assert model.models[1] is None
    # the held-out errors are the dft level's (the affine level has no correction model), and say so
    held = model.metadata["heldout_metrics"]["method"]
    assert "level-dft correction" in held and "target level exp is an affine calibration" in held, held
    test = frames[55:60]
    p_exp, p_dft = model.predict(test, return_cov=True), model.predict(test, fidelity="dft", return_cov=True)
    np.testing.assert_allclose(p_exp.values, p_dft.values @ model._cartesian_map(model.rho[0]).T + 0.5 * np.eye(3).ravel(),
                               atol=0.06)
    a = model._cartesian_map(model.rho[0])  # the source's own noise is added to the scaled level's covariance
    noise = np.einsum("ij,njk,lk->nil", a, p_dft.cov, a) - p_exp.cov
    np.testing.assert_allclose(-noise, np.broadcast_to(model.calibrations[1].noise_covariance(TARGET), noise.shape), atol=1e-10)
    assert np.all(np.linalg.eigvalsh(-noise[0]) > -1e-12) and np.trace(-noise[0]) > 0
    model.save(tmp_path / "exp.model")
    back = load(tmp_path / "exp.model")
    np.testing.assert_allclose(back.predict(test).values, p_exp.values, atol=1e-12)
    np.testing.assert_allclose(back.predict(test).std, p_exp.std, rtol=1e-4)
    with pytest.raises(DataError, match="affine levels dft"):
        fit_model(multifidelity_kind("level", ["dft", "exp"], "exp", affine=["dft"]), TARGET, data, CONFIG, seed=0)


def test_rho_scales_the_variations_not_the_mean(frames):
    """hi = lo + a composition-dependent isotropic shift (levels whose means differ, as GFN2 and DFT
    polarizabilities do, by ~3x): the invariant block's rho is the ratio of the variations (1), not of the
    means; a scale through the origin would give ~3 here and amplify the cheap level's variations."""
    lo = _levels(frames, list(range(50)), [])
    shift = {1: 5.0, 6: 20.0, 7: 18.0, 8: 15.0}
    hi = []
    for i in range(0, 50, 3):
        a = lo[i].copy()
        iso = sum(shift.get(int(z), 10.0) for z in a.numbers)
        a.info["alpha"] = np.asarray(lo[i].info["alpha"]) + iso * np.eye(3).ravel()
        a.info["level"] = "pbe0"
        hi.append(a)
    mean_ratio = np.mean([np.trace(np.reshape(a.info["alpha"], (3, 3))) for a in hi]) / np.mean(
        [np.trace(np.reshape(lo[i].info["alpha"], (3, 3))) for i in range(0, 50, 3)])
    assert mean_ratio > 2.0  # the set-up: a scale through the origin would be far from 1
    model = fit_model(multifidelity_kind("level", None, "pbe0"), TARGET, load_dataset(lo + hi, TARGET), CONFIG, seed=0)
    np.testing.assert_allclose(model.rho[0], 1.0, rtol=0.02)
