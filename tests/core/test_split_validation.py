"""`psilearn split` (random, by group, farthest-point), `fit --val-fraction`, and the warning for an
unrepresentative @slice of an ordered file (the bundled molecules.xyz is ordered by molecule)."""

import json
from pathlib import Path

import ase.io
import numpy as np
import pytest

from psilearn.cli.main import main
from psilearn.data import load_dataset, read_structures, write_structures
from psilearn.data.representative import representativeness, slice_warning
from psilearn.data.splits import (
    check_fractions,
    fraction_counts,
    group_fraction_split,
    random_fraction_split,
    random_split,
)
from psilearn.evaluation.splitting import split_structures
from psilearn.targets import Target

from ._synth import label_frames, molecules

DEMO = Path(__file__).resolve().parents[2] / "src" / "psilearn" / "demo_data" / "molecules.xyz"


def _assert_partition(parts, n):
    allidx = np.concatenate(parts)
    assert len(allidx) == n and len(np.unique(allidx)) == n  # disjoint and complete
    assert all(len(p) > 0 and np.all(np.diff(p) > 0) for p in parts)  # non-empty, sorted


@pytest.mark.parametrize("n", [3, 10, 97, 300])
def test_random_fraction_split_sizes_disjoint_deterministic(n):
    parts = random_fraction_split(n, [0.8, 0.1, 0.1], seed=4)
    _assert_partition(parts, n)
    counts = [len(p) for p in parts]
    assert counts == list(fraction_counts(n, [0.8, 0.1, 0.1]))
    if n >= 10:
        assert all(abs(c - f * n) <= 1 for c, f in zip(counts, [0.8, 0.1, 0.1]))
    else:  # every part gets one structure
        assert min(counts) >= 1
    again = random_fraction_split(n, [0.8, 0.1, 0.1], seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    if n > 10:
        other = random_fraction_split(n, [0.8, 0.1, 0.1], seed=5)
        assert not np.array_equal(parts[2], other[2])


@pytest.mark.parametrize("bad", [[0.8, 0.3], [1.0], [0.5, 0.5, 0.0], ["a", "b"], [0.9, 0.2, -0.1]])
def test_bad_fractions(bad):
    with pytest.raises(ValueError, match="fractions must"):
        check_fractions(bad)


def test_group_split_keeps_groups_together():
    rng = np.random.default_rng(0)
    groups = [f"mol{g}" for g in rng.integers(0, 12, size=200)]
    parts = group_fraction_split(groups, [0.7, 0.15, 0.15], seed=2)
    _assert_partition(parts, 200)
    sets = [{groups[i] for i in p} for p in parts]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert len(parts[0]) > len(parts[1]) and len(parts[0]) > len(parts[2])
    # as many groups as parts: one each, even when the shares ask for more
    parts = group_fraction_split(["a"] * 5 + ["b"] * 5 + ["c"] * 5, [0.9, 0.05, 0.05], seed=0)
    assert sorted(len(p) for p in parts) == [5, 5, 5]
    with pytest.raises(ValueError, match="at least 3 groups"):
        group_fraction_split(["a", "b", "a"], [0.5, 0.25, 0.25])


def test_fps_split_spans_the_molecules_and_is_deterministic():
    frames = read_structures(DEMO)
    parts = split_structures(frames, [0.1, 0.45, 0.45], fps=True, seed=3)
    _assert_partition(list(parts.values()), len(frames))
    assert list(parts) == ["train", "val", "test"] and len(parts["train"]) == 30
    smiles = {frames[i].info["smiles"] for i in parts["train"]}
    assert smiles == {"O", "N", "CO", "C=O"}  # 30 farthest points cover every molecule
    again = split_structures(frames, [0.1, 0.45, 0.45], fps=True, seed=3)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    with pytest.raises(ValueError, match="choose one"):
        split_structures(frames, [0.5, 0.5], fps=True, by="smiles")


def test_split_cli_by_group(tmp_path, capsys):
    prefix = tmp_path / "mols"
    assert main(["split", str(DEMO), "--fractions", "0.5,0.25,0.25", "--by", "smiles", "--seed", "1", "-o", str(prefix)]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "groups" in out
    parts = {k: ase.io.read(f"{prefix}_{k}.xyz", ":") for k in ("train", "val", "test")}
    assert sum(len(v) for v in parts.values()) == 300
    smiles = {k: {a.info["smiles"] for a in v} for k, v in parts.items()}
    assert len(smiles["train"]) == 2 and not (smiles["train"] & smiles["val"] or smiles["train"] & smiles["test"]
                                              or smiles["val"] & smiles["test"])
    # labels survive
    assert np.asarray(parts["test"][0].info["alpha"]).shape == (9,)


def test_split_cli_random_two_parts_and_errors(tmp_path, capsys):
    for run in ("a", "b"):
        assert main(["split", f"{DEMO}@::3", "--fractions", "0.75,0.25", "--seed", "7", "-o", str(tmp_path / run)]) == 0
    a, b = ase.io.read(tmp_path / "a_test.xyz", ":"), ase.io.read(tmp_path / "b_test.xyz", ":")
    assert len(a) == 25 and not (tmp_path / "a_val.xyz").exists()
    assert [x.positions.tobytes() for x in a] == [x.positions.tobytes() for x in b]
    capsys.readouterr()
    assert main(["split", str(DEMO), "--fractions", "0.8,0.3", "-o", str(tmp_path / "c")]) == 2
    assert "--fractions" in capsys.readouterr().err
    assert main(["split", str(DEMO), "--by", "nokey", "-o", str(tmp_path / "c")]) == 2
    assert "nokey" in capsys.readouterr().err


# ---- the ordered-slice warning -----------------------------------------------------------------------
def test_slice_warning_fires_on_an_ordered_slice():
    msg = slice_warning(f"{DEMO}@:200")
    assert msg is not None and "\n" not in msg
    assert "3 of the file's 4" in msg and "psilearn split" in msg and "@::" in msg


@pytest.mark.parametrize("index", ["::5", "::2", ":", "7", "1:299"])
def test_slice_warning_quiet_on_fair_samples(index):
    assert slice_warning(f"{DEMO}@{index}") is None


def test_random_subset_is_representative():
    labels = [a.info["smiles"] for a in read_structures(DEMO)]
    for seed in range(5):
        idx = np.sort(np.random.default_rng(seed).choice(300, size=200, replace=False))
        assert not representativeness(labels, idx)["unrepresentative"]
    assert representativeness(labels, np.arange(200))["unrepresentative"]


def test_slice_warning_by_composition_without_group_key(tmp_path):
    frames = molecules(1, 40, elements=("H", "C")) + molecules(2, 40, elements=("H", "O"))
    write_structures(tmp_path / "ordered.xyz", frames)
    assert "compositions" in slice_warning(f"{tmp_path / 'ordered.xyz'}@:40")
    shuffled = [frames[i] for i in np.random.default_rng(0).permutation(80)]
    write_structures(tmp_path / "shuffled.xyz", shuffled)
    assert slice_warning(f"{tmp_path / 'shuffled.xyz'}@:40") is None


def test_fit_prints_the_warning(tmp_path, capsys):
    assert main(["fit", f"{DEMO}@:200", "--target", "alpha", "--tensor", "ij=ji", "--model", "baseline", "-o",
                 str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "psilearn split" in err
    assert main(["fit", f"{DEMO}@::4", "--target", "alpha", "--tensor", "ij=ji", "--model", "baseline", "-o",
                 str(tmp_path / "m2")]) == 0
    assert "warning" not in capsys.readouterr().err


# ---- fit --val-fraction ------------------------------------------------------------------------------
def test_val_fraction_kernel_kind_holds_out_and_evaluates(tmp_path, capsys):
    import psilearn
    from psilearn.evaluation.validation import fit_with_validation

    target = Target("alpha", tensor="ij=ji", units="au")
    frames = label_frames(molecules(3, 20), "alpha", "sym2", "structure")
    ds = load_dataset(frames, target)
    config = {"soap": {"cutoff": 4.0, "max_radial": 4, "max_angular": 3}, "model": {"n_sparse": 20}}
    model, report = fit_with_validation("sagpr", target, ds, config, val_fraction=0.25, seed=2)
    train_idx, val_idx = random_split(20, 0.25, 2)
    assert report["n_validation_structures"] == len(val_idx) == 5
    assert model.metadata["n_train_structures"] == 15  # fitted on the rest only
    expected = psilearn.evaluate(model, ds.subset(val_idx))
    assert report["cartesian"] == pytest.approx(expected["cartesian"])
    assert model.metadata["validation"]["channels"]["2e"] == pytest.approx(expected["channels"]["2e"])

    write_structures(tmp_path / "train.xyz", frames)
    (tmp_path / "small.yaml").write_text("soap: {cutoff: 4.0, max_radial: 4, max_angular: 3}\nmodel: {n_sparse: 20}\n")
    capsys.readouterr()
    assert main(["fit", str(tmp_path / "train.xyz"), "--target", "alpha", "--tensor", "ij=ji", "--units", "au", "--config",
                 str(tmp_path / "small.yaml"), "--val-fraction", "0.25", "--seed", "2", "-o", str(tmp_path / "a.model")]) == 0
    out = capsys.readouterr().out
    assert "validation (random hold-out of 5 of 20 structures" in out and "0e isotropic" in out and "trace/3" in out
    meta = json.loads((tmp_path / "a.model" / "model.json").read_text())
    assert meta["training"]["validation"]["cartesian"]["rmse"] == pytest.approx(report["cartesian"]["rmse"])
    assert main(["fit", str(tmp_path / "train.xyz"), "--target", "alpha", "--tensor", "ij=ji", "--val-fraction", "1.5",
                 "-o", str(tmp_path / "b.model")]) == 2
    assert "--val-fraction" in capsys.readouterr().err


def test_val_fraction_maps_onto_nn_train(monkeypatch):
    """For the nn kinds the flag sets nn_train.val_fraction (overriding the file) and the report is the
    model's own validation split."""
    import psilearn.models.factory as factory
    from psilearn.evaluation.validation import fit_with_validation, reads_nn_train

    assert reads_nn_train("nn") and reads_nn_train("qeq-nn") and not reads_nn_train("sagpr")
    seen = {}

    class Fitted:
        metadata = {"heldout_metrics": {"method": "validation split (3 structures)", "cartesian": {"rmse": 1.0}},
                    "n_validation_structures": 3}

    def fake_fit(kind, target, data, config, **kw):
        seen.update(kind=kind, config=config, n=len(data))
        return Fitted()

    monkeypatch.setattr(factory, "fit_model", fake_fit)
    target = Target("alpha", tensor="ij=ji")
    ds = load_dataset(label_frames(molecules(3, 12), "alpha", "sym2", "structure"), target)
    given = {"nn_train": {"val_fraction": 0.5, "epochs": 3}}
    _, report = fit_with_validation("nn", target, ds, given, val_fraction=0.25, seed=0)
    assert seen["config"]["nn_train"] == {"val_fraction": 0.25, "epochs": 3} and seen["n"] == 12
    assert given["nn_train"]["val_fraction"] == 0.5  # the caller's dict is not modified
    assert report["n_validation_structures"] == 3 and "nn_train.val_fraction = 0.25" in report["method"]
