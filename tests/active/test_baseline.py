"""Δ-learning in the active loop (``--baseline KEY``): a zero baseline changes nothing, a real one is learned around, the
joint posterior is the correction's, labels from a store get the pool's baseline, and bad input is refused first."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from ase import Atoms

from psilearn.active import run_active
from psilearn.active.baseline import with_baseline
from psilearn.cli.main import main
from psilearn.data import DataError, read_structures, write_structures
from psilearn.errors import ConfigError
from psilearn.models import load
from psilearn.models.fidelity import DeltaModel

from ._common import CFG_YAML, POOL, TEST, options, selected, two_level_pool


def _pool_with(path, key: str, values) -> str:
    frames = read_structures(POOL)
    for a, v in zip(frames, values):
        a.info[key] = np.asarray(v, float)
    write_structures(str(path), frames, format="extxyz")
    return str(path)


def test_zero_baseline_selects_and_predicts_as_the_plain_model(tmp_path):
    pool = _pool_with(tmp_path / "pool.xyz", "mu_zero", np.zeros((50, 3)))
    plain, plain_log = run_active(options(pool=pool, strategy="targeted", focus=POOL), output=str(tmp_path / "p.model"))
    delta, delta_log = run_active(options(pool=pool, strategy="targeted", focus=POOL, baseline="mu_zero"),
                                  output=str(tmp_path / "d.model"))
    assert isinstance(delta, DeltaModel) and not isinstance(plain, DeltaModel)
    assert selected(delta_log) == selected(plain_log)
    assert [r["acquisition"] for r in delta_log["rounds"][1:]] == [r["acquisition"] for r in plain_log["rounds"][1:]]
    assert all(r["acquisition"] == "model posterior" for r in delta_log["rounds"][1:])  # the inner kind's, not the surrogate
    frames = read_structures(pool)
    p, d = plain.predict(frames), delta.predict(frames)
    np.testing.assert_allclose(d.values, p.values, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(d.std, p.std, rtol=1e-9, atol=1e-12)
    assert delta_log["options"]["baseline"] == "mu_zero" and "baseline" not in plain_log["options"]
    # the saved model is the delta model, and it needs the baseline to predict
    saved = load(str(tmp_path / "d.model"))
    assert isinstance(saved, DeltaModel) and saved.baseline == "mu_zero"


def test_a_baseline_is_learned_around_and_the_posterior_is_the_corrections(tmp_path):
    pool = two_level_pool(tmp_path / "pool.xyz")  # mu_low = 0.8 x dipole + noise 0.01
    model, log = run_active(options(pool=pool, baseline="mu_low"), output=str(tmp_path / "m.model"))
    frames = read_structures(pool)
    pred = model.predict(frames)
    low = np.array([a.info["mu_low"] for a in frames])
    np.testing.assert_allclose(pred.baseline, low)
    np.testing.assert_allclose(pred.values, pred.baseline + pred.correction)
    # the inner model learned the difference (~0.2 x dipole), not the dipole
    truth = np.array([a.info["dipole_moment"] for a in frames])
    labelled = selected(log)
    np.testing.assert_allclose(model.inner.predict([frames[i] for i in labelled]).values, (truth - low)[labelled], atol=0.05)
    # the joint posterior used for selection is the correction's, block for block
    mine, inner = model.posterior_factors(frames[:7]), model.inner.posterior_factors(frames[:7])
    assert len(mine) == len(inner) and model.posterior_blocks() == model.inner.posterior_blocks()
    for (r1, s1), (r2, s2) in zip(mine, inner):
        np.testing.assert_array_equal(r1, r2)
        assert s1 == s2


def test_labels_from_a_store_get_the_pools_baseline():
    pool_frame = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], info={"mu_low": np.array([0.1, 0.2, 0.3])})
    pool_frame.arrays["q_low"] = np.array([0.4, -0.4])
    stored = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], info={"dipole_moment": np.array([1.0, 2.0, 3.0])})
    out = with_baseline(stored, pool_frame, "mu_low")
    assert out is not stored and "mu_low" not in stored.info  # the store's object is not changed
    np.testing.assert_array_equal(out.info["mu_low"], pool_frame.info["mu_low"])
    np.testing.assert_array_equal(with_baseline(stored, pool_frame, "q_low").arrays["q_low"], [0.4, -0.4])
    assert with_baseline(pool_frame, pool_frame, "mu_low") is pool_frame  # oracle labels: the pool frame itself


def test_a_missing_baseline_is_refused_before_any_work(tmp_path):
    frames = read_structures(POOL)
    for i, a in enumerate(frames):
        if i != 17:
            a.info["mu_low"] = np.zeros(3)
    path = tmp_path / "pool.xyz"
    write_structures(str(path), frames, format="extxyz")
    state = tmp_path / "m.model.active"
    with pytest.raises(DataError) as exc:
        run_active(options(pool=str(path), baseline="mu_low"), output=str(tmp_path / "m.model"))
    msg = str(exc.value)
    assert "pool.xyz, frame 17" in msg and "mu_low" in msg and "--baseline" in msg
    assert not os.path.exists(state)
    good = _pool_with(tmp_path / "good.xyz", "mu_low", np.zeros((50, 3)))
    with pytest.raises(DataError, match="molecules.xyz, frame 3: no label 'mu_low'"):  # the --test file lacks it (its first frame is 3)
        run_active(options(pool=good, baseline="mu_low", test=TEST), output=str(tmp_path / "t.model"))
    with pytest.raises(ConfigError, match="is the --target key"):
        options(pool=str(path), baseline="dipole_moment").check()
    with pytest.raises(ConfigError, match="one level"):
        options(pool=str(path), baseline="mu_low", oracle=["mu_low", "dipole_moment"], costs={"mu_low": 1, "dipole_moment": 2}).check()


def test_baseline_on_the_command_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CFG_YAML)
    pool = two_level_pool(tmp_path / "pool.xyz")
    args = ["active", pool, "--target", "dipole_moment", "--tensor", "i", "--oracle", "dipole_moment", "--init", "4",
            "--batch", "3", "--budget", "10", "--config", str(cfg)]
    assert main([*args, "--baseline", "mu_low", "-o", str(tmp_path / "m.model")]) == 0
    log = json.loads((tmp_path / "m.model.active" / "log.json").read_text())
    assert log["options"]["baseline"] == "mu_low"
    assert isinstance(load(str(tmp_path / "m.model")), DeltaModel)
    capsys.readouterr()
    assert main([*args, "--baseline", "mu_missing", "-o", str(tmp_path / "x.model")]) != 0
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("psilearn")]
    assert len(err) == 1 and "mu_missing" in err[0] and "frame 0" in err[0], err


def test_method_labels_learn_around_the_pools_baseline(tmp_path):
    """--method with a label store filled earlier from a file without the baseline (a shared store): the stored
    structures lack the pool's baseline; the loop adds it, and the model predicts the method's labels."""
    pytest.importorskip("tblite")
    from psilearn.label.campaign import run_campaign
    from psilearn.label.registry import make_labeler

    from ._common import MOLECULES

    frames = read_structures(f"{MOLECULES}@0:300:25")
    run_campaign(frames, make_labeler("gfn2", "dipole"), str(tmp_path / "labels.db"), workers=0, progress=False)
    for a in frames:
        a.info["mu_pbe0"] = np.asarray(a.info["dipole_moment"], float)  # the file's PBE0 dipole as the cheap level
        del a.info["dipole_moment"]
    pool = tmp_path / "pool.xyz"
    write_structures(str(pool), frames, format="extxyz")
    opts = options(pool=str(pool), oracle=None, method="gfn2", db=str(tmp_path / "labels.db"), init=4, batch=3, budget=10,
                   baseline="mu_pbe0")
    model, log = run_active(opts, output=str(tmp_path / "m.model"))
    assert isinstance(model, DeltaModel)
    from psilearn.label.hashing import structure_hash
    from psilearn.label.store import LabelStore

    store = LabelStore(tmp_path / "labels.db")
    gfn2 = {r.key_value_pairs["structure_hash"]: store.to_atoms(r).info["dipole_moment"] for r in store.rows(label_status="ok")}
    chosen = [frames[i] for i in selected(log)]
    stored = np.array([gfn2[structure_hash(a)] for a in chosen])
    pbe0 = np.array([a.info["mu_pbe0"] for a in chosen])
    pred = model.predict(chosen)
    np.testing.assert_allclose(pred.baseline, pbe0)
    assert np.abs(pred.values - stored).max() < 0.5 * np.abs(pbe0 - stored).max()


def test_baseline_method_labels_only_what_is_fitted(tmp_path):
    """--baseline-method gfn2: the Δ model computes GFN2 dipoles through its store for the structures it fits (and
    predicts), not for the whole pool; the run's options record it, and bad combinations are one ConfigError."""
    pytest.importorskip("tblite")
    from psilearn.label.store import LabelStore

    db = tmp_path / "base.db"
    target = {"key": "dipole_moment", "tensor": "i", "units": "e*Bohr"}
    model, log = run_active(options(baseline_method="gfn2", baseline_db=str(db), budget=16, target=target), output=str(tmp_path / "m.model"))
    assert isinstance(model, DeltaModel) and model.baseline_method.name == "gfn2"
    assert log["options"]["baseline_method"] == "gfn2" and "baseline" not in log["options"]
    assert len(list(LabelStore(db).rows(label_status="ok"))) == 16  # the labelled structures only
    frames = read_structures(POOL)
    labelled = [frames[i] for i in selected(log)]
    pred = model.predict(labelled)
    np.testing.assert_allclose(pred.values, pred.baseline + pred.correction)
    assert len(list(LabelStore(db).rows(label_status="ok"))) == 16  # read back from the store, not recomputed
    for bad in (dict(baseline_method="gfn2"), dict(baseline_db=str(db)), dict(baseline_method="gfn2", baseline_db=str(db), baseline="mu_low")):
        with pytest.raises(ConfigError, match="--baseline-method|--baseline-db"):
            options(**bad).check()
