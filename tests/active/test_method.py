"""`psilearn active --method gfn2`: labels computed through the resumable label store."""

from __future__ import annotations

import numpy as np
import pytest

from psilearn.active import run_active
from psilearn.label.store import LabelStore

from ._common import MOLECULES, options, selected

pytest.importorskip("tblite")


def test_gfn2_labels_through_the_store(tmp_path):
    db = tmp_path / "labels.db"
    opts = options(pool=f"{MOLECULES}@0:300:25", oracle=None, method="gfn2", db=str(db), init=4, batch=3, budget=10)
    model, log = run_active(opts, output=str(tmp_path / "m.model"))
    sel = selected(log)
    assert len(sel) == 10 and len(set(sel)) == 10
    store = LabelStore(db)
    rows = list(store.rows(label_status="ok"))
    assert len(rows) == 10  # every selected structure labelled once, nothing else
    # the model learned the GFN2 dipoles (not the pool's PBE0 ones): its training labels are the stored ones
    from psilearn.data import read_structures

    pool = read_structures(opts.pool)
    gfn2 = {r.key_value_pairs["structure_hash"]: store.to_atoms(r).info["dipole_moment"] for r in rows}
    from psilearn.label.hashing import structure_hash

    frames = [pool[i] for i in sel]
    stored = np.array([gfn2[structure_hash(a)] for a in frames])
    pbe0 = np.array([a.info["dipole_moment"] for a in frames])
    pred = model.predict(frames).values
    assert np.abs(pred - stored).max() < 0.5 * np.abs(pbe0 - stored).max()
    # a rerun reads every label back from the store and labels nothing again
    _, again = run_active(opts, state_dir=str(tmp_path / "m.model.active"))
    assert selected(again) == sel and len(list(LabelStore(db).rows())) == 10


def test_killed_mid_campaign_resumes_without_relabelling(tmp_path, monkeypatch):
    """The campaign dies after storing part of round 1's batch: the resumed run labels only the rest,
    every selected structure ends with one label, and the picks equal an uninterrupted run's."""
    from psilearn.label import campaign

    real = campaign.run_campaign
    calls = {"n": 0}

    def dying(frames, labeler, db, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # round 1: store two of its structures, then die
            real(frames[:2], labeler, db, **kw)
            raise KeyboardInterrupt
        return real(frames, labeler, db, **kw)

    opts = options(pool=f"{MOLECULES}@0:300:25", oracle=None, method="gfn2", db=str(tmp_path / "a.db"), init=4, batch=3,
                   budget=10)
    monkeypatch.setattr(campaign, "run_campaign", dying)
    with pytest.raises(KeyboardInterrupt):
        run_active(opts, state_dir=str(tmp_path / "s"))
    assert len(list(LabelStore(tmp_path / "a.db").rows())) == 6
    monkeypatch.setattr(campaign, "run_campaign", real)
    _, log = run_active(opts, state_dir=str(tmp_path / "s"))
    store = LabelStore(tmp_path / "a.db")
    rows = list(store.rows())
    assert len(rows) == 10 and len({r.key_value_pairs["label_key"] for r in rows}) == 10
    ref = options(pool=opts.pool, oracle=None, method="gfn2", db=str(tmp_path / "b.db"), init=4, batch=3, budget=10)
    _, uninterrupted = run_active(ref, state_dir=str(tmp_path / "ref"))
    assert selected(log) == selected(uninterrupted)


def test_two_methods_cost_measured_and_resume(tmp_path, monkeypatch):
    """--method gfn1 --method gfn2: both levels labelled through one store, the costs are the stored
    label_seconds, and a campaign killed mid-round resumes without relabelling anything."""
    from psilearn.data import read_structures
    from psilearn.label import campaign

    real = campaign.run_campaign
    calls = {"n": 0}

    def dying(frames, labeler, db, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # round 0 labels gfn1 then gfn2: die after storing one gfn2 label
            real(frames[:1], labeler, db, **kw)
            raise KeyboardInterrupt
        return real(frames, labeler, db, **kw)

    opts = options(pool=f"{MOLECULES}@0:300:25", oracle=None, method=["gfn1", "gfn2"], db=str(tmp_path / "a.db"), init=3,
                   batch=2, budget=6)
    monkeypatch.setattr(campaign, "run_campaign", dying)
    with pytest.raises(KeyboardInterrupt):
        run_active(opts, state_dir=str(tmp_path / "s"))
    monkeypatch.setattr(campaign, "run_campaign", real)
    model, log = run_active(opts, state_dir=str(tmp_path / "s"))
    got = [tuple(p) for r in log["rounds"] for p in r["pairs"]]
    assert len(got) == len(set(got)) and {lv for _, lv in got} == {"gfn1", "gfn2"}
    rows = list(LabelStore(tmp_path / "a.db").rows())
    assert len(rows) == len(got) and len({r.key_value_pairs["label_key"] for r in rows}) == len(got)  # each label once
    # each label charged its stored time; the log rounds each round's charge to 1e-6 s, which for GFN labels of a few
    # ms in all exceeds rel=1e-4 of the total (it failed once so: 0.004094 against 0.0040945)
    assert sum(r["charged_seconds"] for r in log["rounds"]) == pytest.approx(sum(r.key_value_pairs["label_seconds"] for r in rows),
                                                                             rel=1e-4, abs=5e-7 * len(log["rounds"]))
    if len(log["rounds"]) > 1:  # (label times are measured: how many rounds the budget allows varies from run to run)
        from psilearn.label.hashing import structure_hash

        pool = read_structures(opts.pool)
        stored = {(r.key_value_pairs["structure_hash"], r.key_value_pairs["label_method"]): r.key_value_pairs["label_seconds"] for r in rows}
        first = [[stored[(structure_hash(pool[i]), lv)] for i, lv in log["rounds"][0]["pairs"] if lv == name] for name in ("gfn1", "gfn2")]
        assert log["rounds"][1]["costs"] == pytest.approx([sum(v) / len(v) for v in first], abs=2e-6)  # the mean seconds so far
    assert model.levels == ["gfn1", "gfn2"]
