"""`fit --tune`: an Optuna study inside a time budget, stored in the model; data-scaled and
per-element sparse points; per-element regularisation (tiny data, a few seconds each)."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

import psilearn
from psilearn import Target, load_dataset
from psilearn.cli.main import main
from psilearn.errors import ConfigError, MemoryBudgetError
from psilearn.models import load
from psilearn.models._kernel.sparse import auto_sparse_size, sparse_sizes
from psilearn.models.factory import fit_model
from psilearn.tune import study as study_module
from psilearn.tune import tune_model

DEMO = Path(psilearn.__file__).parent / "demo_data"
ALPHA = Target("alpha", tensor="ij=ji", units="a.u.")
CHARGES = Target("mulliken_charges", per="atom", units="e")
SMALL = {"soap": {"max_radial": 4, "max_angular": 2, "cutoff": 4.0}}


@pytest.fixture(scope="module")
def alpha_data():
    return load_dataset(f"{DEMO / 'molecules.xyz'}@0:300:15", ALPHA)  # 20 structures, 4 molecules


@pytest.fixture(scope="module")
def charge_data():
    return load_dataset(f"{DEMO / 'md_molecules.xyz'}@0:510:34", CHARGES)  # 15 structures


def test_study_respects_budget_and_is_stored(alpha_data, tmp_path):
    budget = 4.0
    rows = []
    t0 = time.perf_counter()
    model = tune_model("sagpr", ALPHA, alpha_data, {"soap": {"max_radial": 4}}, seconds=budget, seed=0, progress=rows.append)
    elapsed = time.perf_counter() - t0
    rec = model.metadata["tuning"]
    assert elapsed < budget + max(r["seconds"] for r in rows) + 1.0
    assert rec["n_trials"] == len(rows) == len(rec["history"]) >= 1
    scores = [r["cv_rmse"] for r in rec["history"] if r["cv_rmse"] is not None]
    assert scores and all(np.isfinite(scores)) and rec["best_cv_rmse"] == min(scores)
    assert rec["best_cv_rmse"] == pytest.approx(model.metadata["heldout_metrics"]["cartesian"]["rmse"])
    assert "soap.max_radial" in rec["fixed"] and model.soap.max_radial == 4  # stated options stay fixed
    assert rec["history"][0]["params"]["cutoff"] == 5.0  # the first trial is the untuned configuration
    model.save(tmp_path / "m")
    again = load(tmp_path / "m")
    assert again.metadata["tuning"] == json.loads(json.dumps(rec))
    assert np.allclose(again.predict(alpha_data.frames[:3], return_std=False).values,
                       model.predict(alpha_data.frames[:3], return_std=False).values)


def test_same_seed_same_study(alpha_data):
    runs = [tune_model("sagpr", ALPHA, alpha_data, SMALL, seconds=120, n_trials=3, seed=5).metadata["tuning"] for _ in range(2)]
    strip = [[(r["params"], r["cv_rmse"]) for r in run["history"]] for run in runs]
    assert strip[0] == strip[1] and len(strip[0]) == 3
    assert runs[0]["best_params"] == runs[1]["best_params"]


def test_memory_refusal_prunes_a_trial(alpha_data, monkeypatch):
    real = study_module._fit

    def guarded(kind, target, data, config, seed):
        if config["model"]["zeta"] != 2:
            raise MemoryBudgetError("SA-GPR fit needs about 85 GB of memory but 24 GB is available")
        return real(kind, target, data, config, seed)

    monkeypatch.setattr(study_module, "_fit", guarded)
    model = tune_model("sagpr", ALPHA, alpha_data, SMALL, seconds=120, n_trials=4, seed=0)
    states = [r["state"] for r in model.metadata["tuning"]["history"]]
    assert states[0] == "complete" and "pruned" in states
    assert model.config.zeta == 2


def test_untuned_trial_keeps_the_data_scaled_sparse_default(alpha_data, monkeypatch):
    """The first trial is the plain fit: n_sparse unset (a stated size could not shrink to fit memory)."""
    seen = []
    real = study_module._fit
    monkeypatch.setattr(study_module, "_fit", lambda kind, target, data, config, seed: seen.append(config) or real(kind, target, data, config, seed))
    tune_model("sagpr", ALPHA, alpha_data, SMALL, seconds=120, n_trials=2, seed=0)
    assert "n_sparse" not in seen[0]["model"] and "n_sparse" in seen[1]["model"]


def test_unscored_untuned_fit_is_kept(alpha_data, monkeypatch, caplog):
    """When the untuned fit has no k-fold score (streamed beyond memory for its fold sums), no trial can be
    shown better: the untuned model is returned, with a warning, not the best of the others."""
    real = study_module._fit

    def unscored_first(kind, target, data, config, seed):
        model = real(kind, target, data, config, seed)
        if "n_sparse" not in config["model"]:  # the untuned trial
            model.metadata["heldout_metrics"] = {"method": "streamed fit without the k-fold estimate"}
        return model

    monkeypatch.setattr(study_module, "_fit", unscored_first)
    with caplog.at_level("WARNING", logger="psilearn"):
        model = tune_model("sagpr", ALPHA, alpha_data, SMALL, seconds=120, n_trials=3, seed=0)
    rec = model.metadata["tuning"]
    assert rec["history"][0]["state"] == "pruned" and any(r["cv_rmse"] is not None for r in rec["history"][1:])
    assert rec["best_cv_rmse"] is None and "n_sparse" not in rec["best_params"]["model"]
    assert model.config.zeta == 2 and "untuned model is kept" in caplog.text
    assert "untuned settings kept" in study_module.describe_tuning(rec)


@pytest.mark.parametrize("kind", ["nn", "qeq-nn", "baseline"])
def test_untunable_kinds_are_refused(alpha_data, kind):
    with pytest.raises(ConfigError, match=rf"^--tune: model kind '{kind}' cannot be tuned yet \(.*\); tunable kinds: sagpr, qeq, spectrum$"):
        tune_model(kind, ALPHA, alpha_data, seconds=5)


def test_qeq_and_spectrum_kinds_tune(charge_data):
    from tests.spectra._synthetic import GRID, labelled

    from psilearn.data.spectra import load_spectrum_dataset

    qeq = tune_model("qeq", CHARGES, charge_data, SMALL, seconds=60, n_trials=2, seed=0)
    assert qeq.kind == "qeq" and len(qeq.metadata["tuning"]["history"]) == 2
    dos = Target("dos", grid=GRID, grid_units="eV")
    spectra = load_spectrum_dataset(labelled(20), dos)
    spec = tune_model("spectrum", dos, spectra, SMALL, seconds=60, n_trials=2, seed=0)
    assert spec.kind == "spectrum" and np.isfinite(spec.metadata["tuning"]["best_cv_rmse"])
    with pytest.raises(ConfigError, match=r"^--tune: spectrum models with loss 'shift' cannot be tuned yet"):
        tune_model("spectrum", dos, spectra, {"model": {"loss": "shift"}}, seconds=5)


def test_cli_tune(tmp_path, capsys):
    data = f"{DEMO / 'molecules.xyz'}@0:300:20"
    out = tmp_path / "t.model"
    rc = main(["fit", data, "--target", "alpha", "--tensor", "ij=ji", "--tune", "2", "-o", str(out)])
    assert rc == 0
    captured = capsys.readouterr()
    assert "tuning:" in captured.out and "best k-fold CV RMSE" in captured.out and "trial   0:" in captured.err
    assert json.loads((out / "model.json").read_text())["training"]["tuning"]["budget_seconds"] == 2.0
    rc = main(["fit", data, "--target", "alpha", "--tensor", "ij=ji", "--model", "nn", "--tune", "2", "-o", str(tmp_path / "n")])
    err = capsys.readouterr().err
    assert rc == 2 and "model kind 'nn' cannot be tuned yet" in err and "Traceback" not in err


# ---- data-scaled and per-element sparse points ------------------------------------------------
def test_data_scaled_default_grows_with_data_and_yields_to_explicit(alpha_data):
    sizes = [auto_sparse_size(n) for n in (10, 400, 1600, 10_000, 100_000)]
    assert sizes == sorted(sizes) and sizes[0] == 10 and sizes[-1] > sizes[-2] > sizes[-3]
    assert sparse_sizes(None, {1: 50_000, 8: 100}) == {1: auto_sparse_size(50_000), 8: 100}
    assert sparse_sizes(300, {1: 50_000, 8: 100}) == {1: 300, 8: 100}
    few = fit_model("sagpr", ALPHA, alpha_data.subset(np.arange(8)), SMALL)
    more = fit_model("sagpr", ALPHA, alpha_data, SMALL)
    assert sum(more.metadata["n_sparse"].values()) > sum(few.metadata["n_sparse"].values())
    assert more.metadata["n_sparse_rule"].startswith("min(n_Z")
    stated = fit_model("sagpr", ALPHA, alpha_data, {**SMALL, "model": {"n_sparse": 5}})
    assert set(stated.metadata["n_sparse"].values()) == {5} and stated.metadata["n_sparse_rule"] == "stated"


def test_per_element_n_sparse(alpha_data):
    model = fit_model("sagpr", ALPHA, alpha_data, {**SMALL, "model": {"n_sparse": {"H": 7, "C": 2}}})
    auto = fit_model("sagpr", ALPHA, alpha_data, SMALL).metadata["n_sparse"]
    assert model.metadata["n_sparse"] == {**auto, "H": 7, "C": 2}
    with pytest.raises(ConfigError, match=r"^model\.n_sparse: unknown element 'Xx' \(keys are element symbols"):
        fit_model("sagpr", ALPHA, alpha_data, {"model": {"n_sparse": {"Xx": 3}}})
    with pytest.raises(ConfigError, match=r"^model\.n_sparse: element 'Si' is not in the training data \(elements: H, C, N, O\)$"):
        fit_model("sagpr", ALPHA, alpha_data, {**SMALL, "model": {"n_sparse": {"Si": 3}}})
    with pytest.raises(ConfigError, match=r"^model\.n_sparse: needs a number >= 1"):
        fit_model("sagpr", ALPHA, alpha_data, {"model": {"n_sparse": {"H": 0}}})


def test_per_element_regularization(charge_data):
    symbols = ("H", "C", "N", "O")
    same = fit_model("sagpr", CHARGES, charge_data, {**SMALL, "model": {"regularization": {s: 1e-3 for s in symbols}}})
    scalar = fit_model("sagpr", CHARGES, charge_data, {**SMALL, "model": {"regularization": 1e-3}})
    frames = charge_data.frames[:4]
    a, b = same.predict(frames), scalar.predict(frames)  # the same noise for every element: the scalar option exactly
    assert np.allclose(a.values, b.values, rtol=1e-6, atol=1e-9) and np.allclose(a.std, b.std, rtol=1e-5, atol=1e-9)
    mixed = fit_model("sagpr", CHARGES, charge_data, {**SMALL, "model": {"regularization": {"H": 1e-5, "C": 1e-2, "N": 1e-2, "O": 1e-2}}})
    pred = mixed.predict(frames)
    assert np.all(np.isfinite(pred.values)) and np.all(pred.std > 0)
    with pytest.raises(ConfigError, match=r"^model\.regularization: no value for element 'C'"):
        fit_model("sagpr", CHARGES, charge_data, {**SMALL, "model": {"regularization": {"H": 1e-3}}})
    with pytest.raises(ConfigError, match=r"^model\.regularization: a value per element needs a per-atom target"):
        fit_model("sagpr", ALPHA, load_dataset(f"{DEMO / 'molecules.xyz'}@0:40:4", ALPHA),
                  {**SMALL, "model": {"regularization": {"H": 1e-3}}})
    with pytest.raises(ConfigError, match=r"^model\.regularization: a value per element is supported by sagpr only"):
        fit_model("spectrum", Target("dos", grid=[0.0, 1.0, 2.0]), charge_data, {"model": {"regularization": {"H": 1e-3}}})


def test_default_sizes_shrink_to_fit_memory_stated_ones_do_not(alpha_data, monkeypatch):
    from psilearn.models.sagpr.model import SAGPR

    def budget(self, frames, numbers, counts, m):  # a fit "fits" with at most 30 sparse points in all
        if sum(m.values()) > 30:
            raise MemoryBudgetError("SA-GPR fit needs about 9 GB of memory but 1 GB is available; reduce model.n_sparse")

    monkeypatch.setattr(SAGPR, "_check_fit_bytes", budget)
    streamed = fit_model("sagpr", ALPHA, alpha_data, SMALL)  # the streamed fit fits: default sizes kept, fitted in batches
    assert "stream" in streamed.metadata and sum(streamed.metadata["n_sparse"].values()) > 30
    from psilearn.models.sagpr import stream

    monkeypatch.setattr(stream, "_check_stream_bytes", lambda *a: budget(None, None, None, None, {0: 31}))  # nor does the streamed one
    model = fit_model("sagpr", ALPHA, alpha_data, SMALL)
    assert 4 <= sum(model.metadata["n_sparse"].values()) <= 30
    with pytest.raises(MemoryBudgetError, match="model.n_sparse"):
        fit_model("sagpr", ALPHA, alpha_data, {**SMALL, "model": {"n_sparse": 20}})


def test_delta_kinds_are_refused(alpha_data):
    from psilearn.models.fidelity.delta import delta_kind

    with pytest.raises(ConfigError, match=r"model kind 'delta' cannot be tuned yet"):
        tune_model(delta_kind("alpha_gfn2", "sagpr"), ALPHA, alpha_data, seconds=5)


def test_ctrl_c_keeps_the_best_trial(alpha_data, monkeypatch):
    real, calls = study_module._fit, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(study_module, "_fit", interrupted)
    rec = tune_model("sagpr", ALPHA, alpha_data, SMALL, seconds=120, n_trials=6, seed=0).metadata["tuning"]
    assert rec["interrupted"] and rec["n_trials"] == 2
