"""Δ-learning for per-pair targets (issue 14): the baseline is a per-pair label with the target's
pair list; zero baseline = the plain model; exchange symmetry; one-line errors for pair mismatches."""

from __future__ import annotations

import numpy as np
import pytest

from psilearn.cli.main import main
from psilearn.data import DataError, load_dataset, write_structures
from psilearn.data.pairs import read_frame_pairs
from psilearn.models.factory import fit_model
from psilearn.models.fidelity import DeltaModel, delta_kind

from .conftest import tiny_model
from .test_pair_targets import KEY, TARGET, labelled

BKEY = f"{KEY}_b"


def with_baseline(frames, scale: float = 0.0, reverse: bool = False):
    """Copies carrying a baseline BKEY = scale x the label on the same pairs (``reverse``: each pair
    listed as (j, i) with the transposed value, the same baseline in another layout)."""
    out = []
    for a in frames:
        b = a.copy()
        pairs = a.info[f"{KEY}_pairs"].reshape(-1, 2)
        vals = scale * a.info[KEY].reshape(-1, 3, 3)
        if reverse:
            pairs, vals = pairs[:, ::-1], vals.transpose(0, 2, 1)
        b.info[f"{BKEY}_pairs"] = np.ascontiguousarray(pairs).ravel()
        b.info[BKEY] = np.ascontiguousarray(vals).ravel()
        out.append(b)
    return out


def test_zero_baseline_equals_the_plain_model():
    frames = with_baseline(labelled(12))
    data = load_dataset(frames, TARGET)
    test = with_baseline(labelled(4, seed=5))
    for make in (lambda: tiny_model(TARGET, train={"dtype": "float64"}), None):
        if make is None:  # the baseline kind (element-pair means)
            plain = fit_model("baseline", TARGET, data, {}, seed=0)
            delta = fit_model(delta_kind(BKEY, "baseline"), TARGET, data, {}, seed=0)
        else:
            plain = make().fit(data)
            delta = DeltaModel(TARGET, make(), BKEY).fit(data)
        p, d = plain.predict(test), delta.predict(test)
        assert all(np.array_equal(x, y) for x, y in zip(p.pairs, d.pairs))
        np.testing.assert_allclose(d.values, p.values, atol=1e-10, rtol=0)
        np.testing.assert_allclose(d.std, p.std, atol=1e-10, rtol=0)
        assert np.abs(p.values).max() > 0.1  # a real prediction, not zeros on both sides


def _swap_atoms(a, i: int, j: int):
    """``a`` with atoms i and j exchanged, every pair list and label renumbered (values unchanged:
    the reader transposes the pairs whose order flips)."""
    perm = np.arange(len(a))
    perm[[i, j]] = perm[[j, i]]
    b = a[perm]
    inv = np.argsort(perm)
    for key in (f"{KEY}_pairs", f"{BKEY}_pairs"):
        b.info[key] = inv[np.asarray(a.info[key]).reshape(-1, 2)].ravel()
    return b, inv


def test_exchange_symmetry_of_the_sum():
    """Exchanging two atoms (renumbering them) transposes each predicted pair tensor whose atom order
    flips, baseline and correction alike; a baseline written with reversed pairs is the same baseline."""
    frames = with_baseline(labelled(12), scale=0.7)
    model = fit_model(delta_kind(BKEY, "baseline"), TARGET, load_dataset(frames, TARGET), {}, seed=0)
    rev = fit_model(delta_kind(BKEY, "baseline"), TARGET, load_dataset(with_baseline(labelled(12), 0.7, reverse=True), TARGET), {}, seed=0)
    a = with_baseline(labelled(3, seed=7), scale=0.7)[0]  # methanol
    ref = model.predict([a])
    np.testing.assert_array_equal(rev.predict([a]).values, ref.values)
    np.testing.assert_allclose(model.predict(with_baseline([a], 0.7, reverse=True)).values, ref.values, atol=1e-12)
    b, inv = _swap_atoms(a, 0, 1)  # C and O of methanol: the C-O pair keeps its atoms, its order flips
    got = model.predict([b])
    canon = {tuple(sorted(inv[p])): k for k, p in enumerate(ref.pairs[0])}
    for k, p in enumerate(got.pairs[0]):
        old = canon[tuple(p)]
        flipped = inv[ref.pairs[0][old][0]] > inv[ref.pairs[0][old][1]]
        want = ref.values[old].reshape(3, 3)
        np.testing.assert_allclose(got.values[k].reshape(3, 3), want.T if flipped else want, atol=1e-12)
    assert any(inv[p[0]] > inv[p[1]] for p in ref.pairs[0])  # some pair did flip
    assert np.abs(ref.values - ref.values.reshape(-1, 3, 3).transpose(0, 2, 1).reshape(-1, 9)).max() > 1e-3  # not symmetric


def test_the_correction_is_learned_and_round_trips(tmp_path):
    frames = with_baseline(labelled(12), scale=0.8)
    data = load_dataset(frames, TARGET)
    test = with_baseline(labelled(6, seed=3), scale=0.8)
    truth = load_dataset(test, TARGET).values
    delta = fit_model(delta_kind(BKEY, "baseline"), TARGET, data, {}, seed=0)
    plain = fit_model("baseline", TARGET, data, {}, seed=0)
    err_d = np.sqrt(np.mean((delta.predict(test).values - truth) ** 2))
    err_p = np.sqrt(np.mean((plain.predict(test).values - truth) ** 2))
    assert err_d < 0.5 * err_p
    delta.save(tmp_path / "d.model")
    from psilearn.models import load

    np.testing.assert_array_equal(load(tmp_path / "d.model").predict(test).values, delta.predict(test).values)


def test_pair_mismatch_is_one_line():
    frames = with_baseline(labelled(6))
    bad = frames[4]
    pairs = bad.info[f"{BKEY}_pairs"].reshape(-1, 2)[:-1]
    bad.info[f"{BKEY}_pairs"] = pairs.ravel()
    bad.info[BKEY] = bad.info[BKEY][: 9 * len(pairs)]
    with pytest.raises(DataError) as err:
        fit_model(delta_kind(BKEY, "baseline"), TARGET, load_dataset(frames, TARGET), {}, seed=0)
    msg = str(err.value)
    assert "frame 4" in msg and f"{BKEY}_pairs" in msg and f"{KEY}_pairs" in msg and "\n" not in msg
    good = fit_model(delta_kind(BKEY, "baseline"), TARGET, load_dataset(with_baseline(labelled(6)), TARGET), {}, seed=0)
    with pytest.raises(DataError, match="frame 0.*exactly the target's pairs"):
        good.predict([bad])  # the frame lists target pairs that the baseline lacks
    no_target = bad.copy()
    del no_target.info[f"{KEY}_pairs"], no_target.info[KEY]
    pred = good.predict([no_target])  # without its own list the baseline's pairs are predicted
    assert np.array_equal(pred.pairs[0], read_frame_pairs(bad, 0, TARGET.__class__(BKEY, per="pair", tensor="ij"), with_values=False)[0])
    with pytest.raises(DataError, match=f"the baseline {BKEY}_pairs lists 0 pairs"):
        good.predict(labelled(1))  # no baseline at all in a structure that lists target pairs


def test_cli_fit_and_predict_with_a_pair_baseline(tmp_path, capsys):
    train, new = tmp_path / "train.xyz", tmp_path / "new.xyz"
    write_structures(str(train), with_baseline(labelled(10), scale=0.8), format="extxyz")
    write_structures(str(new), with_baseline(labelled(3, seed=9), scale=0.8), format="extxyz")
    out = tmp_path / "d.model"
    args = ["fit", str(train), "--target", KEY, "--per", "pair", "--tensor", "ij", "--model", "baseline", "--baseline", BKEY, "-o", str(out)]
    assert main(args) == 0
    assert main(["predict", str(out), str(new), "-o", str(tmp_path / "p.xyz")]) == 0
    from psilearn.data import read_structures

    got = read_structures(str(tmp_path / "p.xyz"))[0]
    total = got.info[KEY]
    np.testing.assert_allclose(total, got.info[f"{KEY}_baseline"] + got.info[f"{KEY}_correction"], atol=1e-10)
    assert main(["fit", str(train), "--target", KEY, "--per", "pair", "--tensor", "ij", "--baseline", BKEY, "-o",
                 str(tmp_path / "s.model")]) == 2  # sagpr cannot fit pairs: one line
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("psilearn")]
    assert len(err) == 1 and "per-pair target" in err[0]
