"""`psilearn.evaluate`, `psilearn.learning_curve` and `psilearn.models.factory.fit_model` as Python
API: the same numbers the CLI prints, from Models/Datasets, paths or lists of Atoms."""

import json

import numpy as np
import pytest

import psilearn
from psilearn.cli.main import main
from psilearn.data import load_dataset, write_structures
from psilearn.metrics.regression import calibration, regression_metrics
from psilearn.models.factory import build_model, fit_model
from psilearn.targets import Target

from ._synth import SMALL_MODEL, SMALL_SOAP, label_frames, molecules

CONFIG = {"soap": dict(SMALL_SOAP), "model": dict(SMALL_MODEL)}
TARGET = Target("alpha", tensor="ij=ji", units="au")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("evalapi")
    frames = label_frames(molecules(7, 22), "alpha", "sym2", "structure")
    write_structures(d / "train.xyz", frames[:14])
    write_structures(d / "test.xyz", frames[14:])
    train = load_dataset(str(d / "train.xyz"), TARGET)
    model = fit_model("sagpr", TARGET, train, CONFIG, seed=0)
    model.save(d / "alpha.model")
    return {"dir": d, "train": train, "test": load_dataset(str(d / "test.xyz"), TARGET), "model": model}


def test_exported_lazily_from_top_level_and_evaluation():
    import psilearn.evaluation as ev

    assert psilearn.evaluate is ev.evaluate and psilearn.learning_curve is ev.learning_curve
    assert callable(ev.evaluate) and callable(ev.learning_curve)
    assert {"evaluate", "learning_curve"} <= set(psilearn.__all__)


def test_fit_model_is_build_then_fit(data):
    again = build_model("sagpr", TARGET, CONFIG, seed=0).fit(data["train"])
    frames = data["test"].frames
    np.testing.assert_allclose(again.predict(frames).values, data["model"].predict(frames).values, rtol=1e-10)
    with pytest.raises(ValueError, match="iterative"):
        build_model("sagpr", TARGET, CONFIG, run_options={"resume": True})
    with pytest.raises(ValueError, match="unknown run options"):
        build_model("sagpr", TARGET, CONFIG, run_options={"gpu": True})
    with pytest.raises(ValueError, match="unknown model"):
        build_model("svm", TARGET, CONFIG)


def test_evaluate_model_and_dataset(data):
    model, test = data["model"], data["test"]
    m = psilearn.evaluate(model, test)
    pred = model.predict(test.frames)
    expected = regression_metrics(TARGET, TARGET.to_irreps(test.values), pred.irreps)
    assert m["cartesian"] == pytest.approx(expected["cartesian"])
    assert set(m["channels"]) == {"0e", "2e"}
    assert m["calibration"] == pytest.approx(calibration(test.values, pred.values, pred.std))
    assert m["n_samples"] == m["n_structures"] == len(test) == 8
    assert m["target"] == TARGET.to_dict() and m["model"] == "sagpr"
    json.dumps(m)  # JSON-able


def test_evaluate_paths_match_the_cli(data, capsys):
    d = data["dir"]
    png = d / "parity.png"
    m = psilearn.evaluate(str(d / "alpha.model"), str(d / "test.xyz"), plot=png)
    assert png.stat().st_size > 1000
    assert m["model"] == str(d / "alpha.model") and m["test"] == str(d / "test.xyz")
    capsys.readouterr()
    assert main(["evaluate", str(d / "alpha.model"), str(d / "test.xyz"), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert cli["cartesian"] == pytest.approx(m["cartesian"]) and cli["channels"].keys() == m["channels"].keys()
    # a list of Atoms works too
    assert psilearn.evaluate(data["model"], data["test"].frames)["cartesian"] == pytest.approx(m["cartesian"])


def test_evaluate_refuses_a_dataset_of_another_target(data):
    other = Target("alpha", tensor="ij")
    with pytest.raises(ValueError, match="not the model"):
        psilearn.evaluate(data["model"], load_dataset(data["test"].frames, other))


def test_learning_curve(data):
    rows = []
    lc = psilearn.learning_curve(data["train"], str(data["dir"] / "test.xyz"), TARGET, [14, 5, 14], config=CONFIG,
                                 seed=1, progress=rows.append)
    assert lc["sizes"] == [5, 14] and [r["n_train"] for r in rows] == [5, 14]
    assert set(lc["pct_rmse"]) == {"Cartesian", "0e", "2e"}
    assert all(len(v) == 2 and np.all(np.isfinite(v)) for v in lc["pct_rmse"].values())
    assert len(lc["fit_seconds"]) == 2 and lc["n_train"] == 14 and lc["n_test"] == 8
    # the largest subset is the whole training set: the same model as fit_model with that seed
    full = fit_model("sagpr", TARGET, data["train"], CONFIG, seed=1)
    ref = psilearn.evaluate(full, data["test"])["cartesian"]["pct_rmse"]
    assert lc["pct_rmse"]["Cartesian"][-1] == pytest.approx(ref, rel=1e-6)
    json.dumps({k: v for k, v in lc.items()})


@pytest.mark.parametrize("sizes", [[1, 5], [5, 15], []])
def test_learning_curve_bad_sizes(data, sizes):
    with pytest.raises(ValueError, match="sizes must"):
        psilearn.learning_curve(data["train"], data["test"], TARGET, sizes, config=CONFIG)


def test_evaluate_reports_errors_relative_to_the_composition_baseline(data, capsys):
    """The composition baseline recorded at fit time is re-predicted on the test set: its errors are
    those of the baseline kind fitted on the same data, and the ratio is the model's RMSE over it."""
    from psilearn.models.baseline import fit_baseline

    model, train, test = data["model"], data["train"], data["test"]
    m = psilearn.evaluate(model, test)
    base = psilearn.evaluate(fit_baseline(TARGET, train), test)
    assert m["baseline"]["cartesian"]["rmse"] == pytest.approx(base["cartesian"]["rmse"], rel=1e-6)
    assert m["baseline"]["channels"]["2e"]["rmse"] == pytest.approx(base["channels"]["2e"]["rmse"], rel=1e-6)
    ratio = m["baseline"]["rmse_ratio"]
    assert ratio["Cartesian"] == pytest.approx(m["cartesian"]["rmse"] / base["cartesian"]["rmse"], rel=1e-6)
    assert ratio["Cartesian"] < 1 and ratio["2e"] < 1  # the model learns the anisotropy, the baseline cannot
    # the baseline kind against its own recorded baseline: ratio 1
    assert base["baseline"]["rmse_ratio"]["0e"] == pytest.approx(1.0, rel=1e-6)
    assert main(["evaluate", str(data["dir"] / "alpha.model"), str(data["dir"] / "test.xyz")]) == 0
    out = capsys.readouterr().out
    assert "RMSE/base" in out and "composition baseline" in out


def test_evaluate_a_legacy_model_file_says_the_baseline_is_not_recorded():
    from pathlib import Path

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_models"
    model = psilearn.load(fixtures / "sagpr_alpha.model")
    import ase.io

    frames = ase.io.read(fixtures / "inputs_sagpr_alpha.xyz", ":")
    pred = model.predict(frames)
    for a, v in zip(frames, pred.values):
        a.info["alpha"] = v + 0.01
    m = psilearn.evaluate(model, frames)
    assert m["baseline"]["rmse_ratio"] is None and "no composition baseline recorded" in m["baseline"]["note"]
