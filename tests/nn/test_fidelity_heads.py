"""The nn-multifidelity kind (shared body, level embedding, one readout per level): every level's
output is exactly O(3)-equivariant and permutation/translation invariant; one level is the plain nn
fit (to round-off); a few accurate structures borrow the body trained on many cheap ones; model files; --fidelity;
errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core._synth import cartesian_operator, label_frames, level_frames, molecules, random_rotation, rel_dev, structure_vectors, transform_frames
from psilearn.data import load_dataset
from psilearn.errors import ConfigError, DataError
from psilearn.models import load
from psilearn.models._torch.graph import collate
from psilearn.models.nn import NetworkConfig, NNModel, TrainConfig
from psilearn.models.nn.multifidelity import NNHeadsModel, nn_heads_kind
from psilearn.targets import Target

from .conftest import TINY_NET, TINY_TRAIN, tiny_model

TOL = 1e-10
_rng = np.random.default_rng(3)
OPS = {"rotation": random_rotation(_rng), "reflection": np.diag([1.0, -1.0, 1.0]), "improper": -random_rotation(_rng)}


def heads(target, fidelity_key="level", levels=None, top="hi", seed=0, net=None, train=None) -> NNHeadsModel:
    return nn_heads_kind(fidelity_key, levels, top)(target, NetworkConfig(**{**TINY_NET, **(net or {})}),
                                                    TrainConfig(**{**TINY_TRAIN, **(train or {})}), seed=seed)


def _correction(a) -> np.ndarray:
    """A smooth polar vector, different from the synthetic 'vector' label: sum_i w2_i r_i (1 + |r_i|^2) / 10."""
    r, _, w2 = structure_vectors(a)
    return (w2[:, None] * r * (1 + (r**2).sum(1, keepdims=True))).sum(0) / 10


def two_levels(frames, key, kind, lo, hi, factor=2.0, extra=0.0):
    """Level 'lo' = the synthetic label; level 'hi' = factor x that + extra x a smooth correction (vectors only)."""
    base = label_frames(frames, key, kind, "structure")
    return level_frames(base, key, lo, hi, lambda i, a: factor * np.asarray(base[i].info[key]) + (extra * _correction(a) if extra else 0.0),
                        names=("lo", "hi"))


_cache: dict = {}


def fitted(formula: str):
    if formula not in _cache:
        target = Target("y", tensor=formula)
        kind = {"i": "vector", "ij=ji": "sym2"}[formula]
        data = load_dataset(two_levels(molecules(3, 10), "y", kind, range(8), [0, 3, 5, 8, 9]), target)
        _cache[formula] = heads(target, train=dict(dtype="float64", epochs=2)).fit(data)
    return _cache[formula]


@pytest.mark.parametrize("formula", ["i", "ij=ji"])
def test_every_level_is_equivariant_and_invariant(formula):
    model = fitted(formula)
    assert model.levels == ["lo", "hi"]
    test = molecules(11, 3)
    t = model.target
    outs = {lv: model.predict(test, fidelity=lv) for lv in model.levels}
    assert rel_dev(outs["lo"].values, outs["hi"].values) > 1e-6  # the heads differ after training
    for lv, ref in outs.items():
        assert np.abs(ref.values).max() > 1e-6
        for name, q in OPS.items():
            m = cartesian_operator(q, t.rank, t.parity)
            out = model.predict(transform_frames(test, q), fidelity=lv)
            assert rel_dev(out.values, ref.values @ m.T) < TOL, (lv, name)
            assert rel_dev(out.std, ref.std) < TOL, (lv, name)
        moved = model.predict(transform_frames(test, np.eye(3), (0.7, -2.3, 1.1)), fidelity=lv)
        assert rel_dev(moved.values, ref.values) < TOL
        perm = [a[np.random.default_rng(i).permutation(len(a))] for i, a in enumerate(test)]
        assert rel_dev(model.predict(perm, fidelity=lv).values, ref.values) < TOL


def test_one_level_is_the_plain_nn():
    target = Target("y", tensor="ij=ji")
    train = label_frames(molecules(4, 12), "y", "sym2", "structure")
    for a in train:
        a.info["level"] = "hi"
    data = load_dataset(train, target)
    f64 = dict(dtype="float64", epochs=3)
    plain = tiny_model(target, train=f64).fit(data)
    one = heads(target, train=f64).fit(data)
    test = molecules(12, 4)
    a, b = plain.predict(test), one.predict(test)
    # the same computation up to floating-point round-off (measured: 4e-16 in values, 8e-12 in std)
    np.testing.assert_allclose(b.values, a.values, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.std, a.std, rtol=1e-9, atol=1e-12)
    assert one.metadata["heldout_metrics"]["cartesian"]["rmse"] == pytest.approx(plain.metadata["heldout_metrics"]["cartesian"]["rmse"])


def test_few_accurate_structures_borrow_the_cheap_level():
    """hi = 2 x lo + a small smooth correction, on 10 structures; lo on 80. The hi error of the heads
    model is below that of a plain nn fitted on the 10 hi structures alone (same network, epochs, seed)."""
    torch.manual_seed(0)
    target = Target("y", tensor="i")
    frames = molecules(21, 120)
    hi = list(range(0, 20, 2))
    data = load_dataset(two_levels(frames, "y", "vector", range(80), hi, extra=0.3), target)
    test = two_levels(frames, "y", "vector", [], range(90, 120), extra=0.3)
    ref = np.array([a.info["y"] for a in test])
    budget = dict(epochs=20, patience=20, val_fraction=0.2)
    mf = heads(target, train=budget).fit(data)
    plain = tiny_model(target, train=budget).fit(load_dataset([a for a in data.frames if a.info["level"] == "hi"], target))
    err = lambda m: float(np.sqrt(np.mean((m.predict(test, return_std=False).values - ref) ** 2)))  # noqa: E731
    e_mf, e_plain = err(mf), err(plain)
    print(f"hi-level RMSE: heads {e_mf:.4f}, plain nn on hi only {e_plain:.4f}")
    assert e_mf < 0.7 * e_plain, (e_mf, e_plain)
    rec = mf.metadata["multifidelity"]["per_level"]
    assert [r["level"] for r in rec] == ["lo", "hi"] and rec[1]["n_structures"] == 10 and rec[1]["n_validation_structures"] >= 1


def test_file_round_trip_and_fidelity_routing(tmp_path):
    model = fitted("i")
    test = molecules(13, 4)
    model.save(tmp_path / "h.model")
    back = load(tmp_path / "h.model")
    assert type(back).kind == "nn-multifidelity" and back.levels == ["lo", "hi"] and back.target_level == "hi"
    for lv in (None, "lo", "hi"):
        a, b = model.predict(test, fidelity=lv), back.predict(test, fidelity=lv)
        assert np.array_equal(a.values, b.values) and np.array_equal(a.std, b.std)
    assert np.array_equal(back.predict(test).values, back.predict(test, fidelity="hi").values)
    # each level's prediction is its own readout: the network run by hand on graphs of that level
    for k, lv in enumerate(back.levels):
        graphs = NNModel._graphs(back, test)  # level 0 everywhere, then set by hand
        for g in graphs:
            g.fidelity = k
        with torch.no_grad():
            irreps = back.nets[0](collate(graphs, "cpu", torch.float64)).numpy()
        np.testing.assert_allclose(back.predict(test, fidelity=lv).irreps, irreps, rtol=0, atol=1e-12)


def test_errors():
    target = Target("y", tensor="i")
    model = fitted("i")
    with pytest.raises(ConfigError, match="fidelity 'ccsd' is not a level of this model"):
        model.predict(molecules(1, 2), fidelity="ccsd")
    data = load_dataset(two_levels(molecules(3, 10), "y", "vector", range(8), []), target)
    with pytest.raises(DataError, match="no training structure has level=hi"):
        heads(target).fit(data)
    frames = two_levels(molecules(3, 10), "y", "vector", range(6), [7, 8])
    del frames[2].info["level"]
    with pytest.raises(DataError, match="no fidelity 'level'"):
        heads(target).fit(load_dataset(frames, target))
    with pytest.raises(ConfigError, match="needs a fidelity key and a target level"):
        NNHeadsModel.build(target)
    with pytest.raises(ConfigError, match="cannot be a level"):
        from psilearn.models.fidelity import multifidelity_kind

        multifidelity_kind("level", None, "hi", "nn-multifidelity")


def test_cli_fit_and_predict_fidelity(tmp_path, capsys):
    import yaml

    from psilearn.cli.main import main
    from psilearn.data import read_structures, write_structures

    data = two_levels(molecules(5, 24), "y", "vector", range(16), [1, 4, 7, 16, 18, 20])
    write_structures(tmp_path / "lo.xyz", [a for a in data if a.info["level"] == "lo"])
    write_structures(tmp_path / "hi.xyz", [a for a in data if a.info["level"] == "hi"])
    new = molecules(6, 3)
    write_structures(tmp_path / "new.xyz", new)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"nn": TINY_NET, "nn_train": TINY_TRAIN}))
    fit = ["fit", str(tmp_path / "lo.xyz"), str(tmp_path / "hi.xyz"), "--target", "y", "--tensor", "i", "--config", str(tmp_path / "c.yaml"),
           "--fidelity-key", "level", "--target-fidelity", "hi", "--model", "nn-multifidelity", "-o", str(tmp_path / "m.model")]
    assert main(fit) == 0
    assert "one network, a readout per level" in capsys.readouterr().err
    model = load(tmp_path / "m.model")
    assert model.kind == "nn-multifidelity" and model.levels == ["lo", "hi"]
    for extra, level in (([], "hi"), (["--fidelity", "lo"], "lo")):
        out = tmp_path / f"p_{level}.xyz"
        assert main(["predict", str(tmp_path / "m.model"), str(tmp_path / "new.xyz"), "-o", str(out), *extra]) == 0
        got = np.array([a.info["y"] for a in read_structures(str(out))])
        np.testing.assert_allclose(got, model.predict(new, fidelity=level).values, rtol=1e-6, atol=1e-8)
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m.model"), str(tmp_path / "new.xyz"), "-o", str(tmp_path / "x.xyz"), "--fidelity", "ccsd"]) == 2
    assert "fidelity 'ccsd' is not a level of this model" in capsys.readouterr().err
    assert main([*fit[:-1], str(tmp_path / "n.model"), "--affine-fidelities", "hi"]) == 2
    assert "--affine-fidelities goes with the recursive" in capsys.readouterr().err


def test_balanced_level_weights_option(tmp_path):
    from psilearn.models._torch.fidelity_heads import level_weights

    np.testing.assert_allclose(level_weights("balanced", np.array([30, 10])), [40 / 60, 40 / 20])
    np.testing.assert_allclose(level_weights("samples", np.array([30, 10])), [1.0, 1.0])
    target = Target("y", tensor="i")
    config = {"nn": TINY_NET, "nn_train": {**TINY_TRAIN, "epochs": 1}, "nn_fidelity": {"level_weights": "balanced"}}
    model = nn_heads_kind("level", None, "hi").build(target, config)
    model.fit(load_dataset(two_levels(molecules(3, 10), "y", "vector", range(8), [0, 3, 5]), target))
    assert model._loss(np.ones((2, 3)), np.ones(3)).level_weight.tolist() == pytest.approx([8 / 12, 8 / 4])  # 6 and 2 training structures
    model.save(tmp_path / "b.model")
    assert load(tmp_path / "b.model").fidelity_config.level_weights == "balanced"
    with pytest.raises(ConfigError, match="level_weights"):
        nn_heads_kind("level", None, "hi").build(target, {"nn_fidelity": {"level_weights": "equal"}})
