"""The active-learning loop in oracle mode: budget, batches, diversity, reproducibility, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from psilearn.active import run_active
from psilearn.active.selection import diverse_batch, random_batch, structure_variance, targeted_batch
from psilearn.models import load

from ._common import POOL, TEST, options, selected


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run (seed 3): the model and its log."""
    tmp = tmp_path_factory.mktemp("active")
    model, log = run_active(options(test=TEST), output=str(tmp / "m.model"))
    return tmp, model, log


def test_respects_budget_and_logs_every_round(reference):
    tmp, model, log = reference
    sel = selected(log)
    assert len(sel) == 21 and len(set(sel)) == 21
    assert [len(r["selected"]) for r in log["rounds"]] == [6, 5, 5, 5]
    assert [r["n_labelled"] for r in log["rounds"]] == [6, 11, 16, 21]
    assert log["complete"] and all(r["status"] == "done" for r in log["rounds"])
    for r in log["rounds"]:
        assert r["validation"]["heldout"]["rmse"] > 0 and r["validation"]["test"]["rmse"] > 0
        assert {"select", "label", "fit", "test"} <= set(r["seconds"])
    assert json.loads((tmp / "m.model.active" / "log.json").read_text()) == log
    saved = load(tmp / "m.model")
    assert saved.metadata["n_train_structures"] == 21
    assert saved.metadata["active_learning"]["rounds"] == log["rounds"]
    # more labels, better test error (the first and the last round)
    assert log["rounds"][-1]["validation"]["test"]["rmse"] < log["rounds"][0]["validation"]["test"]["rmse"]


def test_reproducible_with_the_seed(reference, tmp_path):
    _, _, log = reference
    _, again = run_active(options(test=TEST), state_dir=str(tmp_path / "s"))
    assert selected(again) == selected(log)
    _, other = run_active(options(seed=4), state_dir=str(tmp_path / "s4"))
    assert selected(other) != selected(log)


def test_variance_picks_differ_from_random(reference, tmp_path):
    _, _, log = reference
    _, rnd = run_active(options(strategy="random", init_strategy="fps", test=TEST), state_dir=str(tmp_path / "r"))
    assert selected(rnd)[:6] == selected(log)[:6]  # the same initial set
    assert set(selected(rnd)[6:]) != set(selected(log)[6:])
    assert len(set(selected(rnd))) == 21


def test_batch_is_diverse():
    """Exact duplicates of the most uncertain structure: only one of them enters the batch."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5))
    x[[1, 2, 3]] = x[0]
    var = np.linspace(1.0, 0.5, 30)
    var[[0, 1, 2, 3]] = 10.0
    picks = diverse_batch(var[1:], x, np.arange(1, 30), np.array([29]), 4)
    assert len(set(picks)) == 4 and len({1, 2, 3} & set(picks)) == 1
    assert picks[0] == 1  # the largest variance first (ties: lowest index)
    # equidistant candidates: the diversity term shrinks all alike, the order is that of the variance
    far = np.eye(30) * 100
    assert diverse_batch(var[4:], far, np.arange(4, 30), np.array([0]), 3) == [4, 5, 6]
    assert len(set(diverse_batch(var[1:], x, np.arange(1, 30), np.array([], int), 5))) == 5  # nothing labelled yet
    assert sorted(random_batch(np.arange(10), 4, 0, 1)) == sorted(random_batch(np.arange(10), 4, 0, 1))


def test_targeted_batch_goes_where_the_focus_is():
    """Two tight clusters of candidates: the first pick comes from the one holding the focus structures,
    though the other is more uncertain; once it is labelled the rest of its cluster says little more
    about the focus (the cluster is narrower than the kernel), and no duplicate is picked."""
    rng = np.random.default_rng(1)
    near = rng.normal(scale=0.05, size=(10, 3))
    far = 5.0 + rng.normal(scale=0.05, size=(10, 3))
    x = np.vstack([near, far, [[2.5, 2.5, 2.5]]])  # the last: labelled, between the clusters
    x[1] = x[0]
    var = np.r_[np.ones(10), 3 * np.ones(10)]
    focus = rng.normal(scale=0.05, size=(5, 3))
    picks = targeted_batch(var, np.ones(5), x, focus, np.arange(20), np.array([20]), 4)
    assert len(set(picks)) == 4 and picks[0] < 10 and not {0, 1} <= set(picks)
    assert diverse_batch(var, x, np.arange(20), np.array([20]), 4)[0] >= 10


def test_targeted_run_needs_focus(tmp_path):
    from psilearn.errors import ConfigError

    with pytest.raises(ConfigError, match="--strategy targeted needs --focus"):
        run_active(options(strategy="targeted"), state_dir=str(tmp_path / "s"))
    _, log = run_active(options(strategy="targeted", focus=TEST, budget=11), state_dir=str(tmp_path / "t"))
    assert len(set(selected(log))) == 11


def test_structure_variance_sums_components_and_atoms():
    std = np.array([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0]])
    assert structure_variance(std, None, 3).tolist() == [5.0, 1.0, 9.0]
    assert structure_variance(std, np.array([0, 0, 1]), 2).tolist() == [6.0, 9.0]


def test_resumes_after_a_crash_while_labelling(reference, tmp_path, monkeypatch):
    """A run that dies after logging round 2's batch (before labelling it) resumes with that batch."""
    _, _, log = reference
    from psilearn.active import labels

    calls = {"n": 0}
    real = labels.OracleLabels.label

    def dying(self, indices, progress=False):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, indices, progress)

    monkeypatch.setattr(labels.OracleLabels, "label", dying)
    with pytest.raises(KeyboardInterrupt):
        run_active(options(test=TEST), state_dir=str(tmp_path / "s"))
    partial = json.loads((tmp_path / "s" / "log.json").read_text())
    assert [r["status"] for r in partial["rounds"]] == ["done", "done", "selected"]
    monkeypatch.setattr(labels.OracleLabels, "label", real)
    _, resumed = run_active(options(test=TEST), state_dir=str(tmp_path / "s"))
    assert selected(resumed) == selected(log)
    assert [r["validation"] for r in resumed["rounds"]] == [r["validation"] for r in log["rounds"]]


def test_a_finished_run_rerun_changes_nothing(reference, tmp_path):
    tmp, _, log = reference
    _, again = run_active(options(test=TEST), state_dir=str(tmp / "m.model.active"))
    assert selected(again) == selected(log)


def test_initial_set_covers_every_element_of_the_pool():
    from psilearn.active.selection import initial_set

    elements = [{1, 6}] * 8 + [{1, 7}] + [{8}]
    desc = np.arange(10, dtype=float)[:, None] * np.array([[1.0, 0.0]])
    desc[8:] = desc[:2]  # the N and O structures sit on top of others: farthest-point alone would skip them
    for strategy in ("fps", "random"):
        for seed in range(5):
            chosen = initial_set(desc, 3, strategy, seed, elements)
            assert len(set(chosen)) == 3 and set().union(*(elements[i] for i in chosen)) == {1, 6, 7, 8}
    with pytest.raises(ValueError, match="cannot cover the pool's elements H, C, N, O"):
        initial_set(desc, 2, "fps", 0, elements)


def test_focus_with_elements_the_pool_lacks_is_refused_before_any_log(tmp_path):
    """A --focus structure with an element no pool structure has: one DataError naming the focus file, frame and
    element, before round 0 (no log, no label), so a corrected rerun is not refused as 'other options'."""
    from ase.build import molecule
    from ase.io import write

    from psilearn.errors import DataError

    focus = tmp_path / "focus.xyz"
    write(focus, [molecule("H2O"), molecule("CH3Cl")])
    with pytest.raises(DataError, match=r"focus\.xyz, frame 1.*element\(s\) Cl that no pool structure has"):
        run_active(options(strategy="targeted", focus=str(focus)), state_dir=str(tmp_path / "s"))
    assert not (tmp_path / "s").exists()
    _, log = run_active(options(strategy="targeted", focus=TEST, budget=11), state_dir=str(tmp_path / "s"))
    assert len(set(selected(log))) == 11


def test_focus_initial_set_starts_where_the_focus_is(tmp_path):
    """--init-strategy focus: before any model, the initial set is chosen for the focus structures (all NH3
    here): most of it is NH3, against about a quarter of a random initial set of this 4-molecule pool; the
    pool's other elements are still covered (C must occur). Without --focus it is refused in one line."""
    from ase.io import write

    from psilearn.data import read_structures
    from psilearn.errors import ConfigError

    focus = tmp_path / "nh3.xyz"
    write(focus, [a for a in read_structures(TEST) if a.get_chemical_formula() == "H3N"])
    pool = read_structures(POOL)
    _, log = run_active(options(strategy="targeted", focus=str(focus), init_strategy="focus", budget=11), state_dir=str(tmp_path / "f"))
    first = log["rounds"][0]["selected"]
    formulas = [pool[i].get_chemical_formula() for i in first]
    assert sum(f == "H3N" for f in formulas) >= 4, formulas  # of 6
    assert any("C" in pool[i].get_chemical_symbols() for i in first)  # every element of the pool covered
    assert len(set(selected(log))) == 11
    with pytest.raises(ConfigError, match="--init-strategy focus needs --focus"):
        run_active(options(init_strategy="focus"), state_dir=str(tmp_path / "g"))
