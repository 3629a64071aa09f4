"""Cost-aware active learning across fidelities: several --oracle / --method levels, a multifidelity
model, each pick a (structure, level) pair by target-variance reduction per second."""

from __future__ import annotations

import json

import numpy as np
import pytest

from psilearn.active import run_active
from psilearn.active.fidelity import FIDELITY_KEY, cost_aware_batch
from psilearn.active.selection import diverse_batch
from psilearn.errors import ConfigError
from psilearn.models.fidelity.multifidelity import MultiFidelityModel

from ._common import CFG_YAML, COSTS, mf_options, options, pairs, two_level_pool


def test_one_level_is_the_diverse_batch():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 4))
    x[5] = x[3]
    var = rng.uniform(0.5, 2.0, 40)
    cand = np.setdiff1d(np.arange(40), [0, 7])
    avail = np.zeros((1, 40), bool)
    avail[0, cand] = True
    picks = cost_aware_batch(var[None, :], [1.0], x, avail, [np.array([0, 7])], 6, np.inf)
    assert [j for j, _ in picks] == diverse_batch(var[cand], x, cand, np.array([0, 7]), 6)
    assert {k for _, k in picks} == {0}


def test_cost_weighs_the_levels_and_the_budget_holds():
    """Equal own variances: the cheap level goes first (10x the reduction per second); with the cheap
    level's term negligible the target level is chosen despite its cost; the seconds never exceed the budget."""
    x = np.eye(20) * 10  # far apart: no conditioning between structures
    avail = np.ones((2, 20), bool)
    var = np.ones((2, 20))
    picks = cost_aware_batch(var, [0.1, 1.0], x, avail, [np.array([], int)] * 2, 100, 3.05)
    assert [k for _, k in picks[:20]] == [0] * 20
    assert len(picks) == 21 and picks[-1][1] == 1  # 20 x 0.1 s, then one target label fits in the 1.05 s left
    var[0] = 1e-4
    picks = cost_aware_batch(var, [0.1, 1.0], x, avail, [np.array([], int)] * 2, 3, 10.0)
    assert [k for _, k in picks] == [1, 1, 1]
    assert cost_aware_batch(var, [0.1, 1.0], x, avail, [np.array([], int)] * 2, 3, 0.05) == []  # nothing affordable


def test_variance_terms_sum_to_the_target_variance(mf_run):
    _, pool, model, _ = mf_run
    from psilearn.data import read_structures

    frames = read_structures(pool)[:10]
    terms = model.variance_terms(frames)
    pred = model.predict(frames, return_std=True)
    assert terms.shape == (2, 10, pred.irreps_std.shape[1]) and np.all(terms >= 0)
    np.testing.assert_allclose(terms.sum(axis=0), pred.irreps_std**2, rtol=1e-8, atol=1e-14)
    rho = model.rho[0]
    own = model.models[0].predict(frames, return_std=True).irreps_std ** 2
    np.testing.assert_allclose(terms[0], rho[0] ** 2 * own, rtol=1e-8)  # the cheap term propagated through rho


def test_two_level_run_logs_pairs_and_spends_the_budget(mf_run):
    tmp, _, model, log = mf_run
    got = pairs(log)
    assert len(got) == len(set(got))
    assert got[:8] == [(i, lv) for lv in ("mu_low", "dipole_moment") for i in log["rounds"][0]["selected"][:4]]
    charged = sum(r["charged_seconds"] for r in log["rounds"])
    expected = sum(COSTS[lv] for _, lv in got)
    assert charged == pytest.approx(expected) and expected <= 10 * COSTS["dipole_moment"] + 1e-9
    assert expected > 10 - 1.0  # stopped only when not even one more target label fitted
    for r in log["rounds"][1:]:
        assert r["charged_seconds"] <= 2 * COSTS["dipole_moment"] + 1e-9  # --batch 2 target labels' worth per round
        assert r["costs"] == [COSTS["mu_low"], COSTS["dipole_moment"]]
    levels = {lv for _, lv in got[8:]}
    assert "mu_low" in levels  # the cheap level is used after the initial set
    assert isinstance(model, MultiFidelityModel) and model.levels == ["mu_low", "dipole_moment"]
    assert model.rho[0][0] == pytest.approx(1 / 0.8, rel=0.03)  # the known relation (target = low / 0.8) recovered
    from psilearn.models import load

    saved = load(tmp / "m.model")
    assert saved.metadata["active_learning"]["rounds"] == log["rounds"]
    assert saved.metadata["multifidelity"]["fidelity_key"] == FIDELITY_KEY


def test_two_level_resume_after_a_crash_while_labelling(mf_run, tmp_path, monkeypatch):
    _, pool, _, log = mf_run
    from psilearn.active import labels

    calls = {"n": 0}
    real = labels.OracleLabels.label

    def dying(self, indices, progress=False):
        calls["n"] += 1
        if calls["n"] == 5:  # round 0 labels both levels (2 calls); die during round 1 or 2
            raise KeyboardInterrupt
        return real(self, indices, progress)

    monkeypatch.setattr(labels.OracleLabels, "label", dying)
    with pytest.raises(KeyboardInterrupt):
        run_active(mf_options(pool), state_dir=str(tmp_path / "s"))
    partial = json.loads((tmp_path / "s" / "log.json").read_text())
    assert partial["rounds"][-1]["status"] == "selected" and not partial["complete"]
    monkeypatch.setattr(labels.OracleLabels, "label", real)
    _, resumed = run_active(mf_options(pool), state_dir=str(tmp_path / "s"))
    assert pairs(resumed) == pairs(log)
    assert [r["validation"] for r in resumed["rounds"]] == [r["validation"] for r in log["rounds"]]


@pytest.mark.parametrize("change, fragment", [
    ({"costs": {"mu_low": 0.2}}, "--cost KEY=SECONDS for each --oracle level (mu_low, dipole_moment): missing dipole_moment"),
    ({"costs": {**COSTS, "x": 1.0}}, "unknown x"),
    ({"costs": {**COSTS, "mu_low": 0.0}}, "positive and finite (mu_low)"),
    ({"strategy": "random"}, "--strategy random with several levels"),
    ({"oracle": ["dipole_moment", "mu_low"]}, "the last --oracle (the target level) must be the --target key"),
    ({"oracle": ["mu_low", "mu_low"]}, "each level once"),
])
def test_two_level_errors(tmp_path, change, fragment):
    pool = two_level_pool(tmp_path / "pool.xyz")
    opts = mf_options(pool)
    for k, v in change.items():
        setattr(opts, k, v)
    with pytest.raises(ConfigError) as err:
        run_active(opts, state_dir=str(tmp_path / "s"))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_cost_with_one_level_or_methods_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="--cost goes with several --oracle levels"):
        run_active(options(costs={"dipole_moment": 1.0}), state_dir=str(tmp_path / "a"))
    with pytest.raises(ConfigError, match="measured from the label store"):
        run_active(options(oracle=None, method=["gfn1", "gfn2"], db=str(tmp_path / "x.db"), costs={"gfn1": 1.0, "gfn2": 2.0}),
                   state_dir=str(tmp_path / "b"))


def test_cli_two_oracles_and_bad_cost(tmp_path, capsys):
    from psilearn.cli.main import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(CFG_YAML)
    pool = two_level_pool(tmp_path / "pool.xyz")
    base = ["active", pool, "--target", "dipole_moment", "--tensor", "i", "--oracle", "mu_low", "--oracle", "dipole_moment",
            "--init", "3", "--batch", "2", "--budget", "6", "--config", str(cfg), "-o", str(tmp_path / "m.model")]
    assert main([*base, "--cost", "mu_low=0.2", "--cost", "dipole_moment=1"]) == 0
    assert "labels from levels mu_low" in capsys.readouterr().err
    log = json.loads((tmp_path / "m.model.active" / "log.json").read_text())
    assert log["options"]["costs"] == COSTS and log["options"]["oracle"] == ["mu_low", "dipole_moment"]
    assert main([*base, "--cost", "mu_low:0.2", "--overwrite"]) == 2
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("psilearn")]
    assert len(err) == 1 and "expected KEY=SECONDS" in err[0]
