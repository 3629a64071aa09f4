"""Per-pair targets (issue 16 item 3): the Target, the KEY_pairs layout, the nn kind's pair network
(exact O(3) equivariance, permutation and exchange symmetry, translation invariance, learning,
save/load) and the CLI surfaces."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from ase.build import molecule
from scipy.spatial.transform import Rotation

from psilearn.cli.main import main
from psilearn.data import DataError, load_dataset, read_structures, write_structures
from psilearn.data.pairs import read_frame_pairs
from psilearn.errors import ConfigError
from psilearn.targets import Target

from .conftest import TINY_NET, TINY_TRAIN, tiny_model

KEY = "jsyn"


def _env(a, i, rc=1.7):
    d = a.positions - a.positions[i]
    r = np.linalg.norm(d, axis=1)
    m = (r > 0) & (r < rc)
    return (d[m] / r[m, None]).sum(0)


def pair_tensor(a, i, j) -> np.ndarray:
    """A synthetic coupling of atoms i, j: dipolar + isotropic parts of the distance and elements,
    plus an antisymmetric part [u_i x u_j]_x from the two environments (so T_ji = T_ij^T)."""
    v = a.positions[j] - a.positions[i]
    r = np.linalg.norm(v)
    n = v / r
    sym = np.exp(-r) * (3 * np.outer(n, n) - np.eye(3)) + (2.0 / r) * (1 + 0.3 * a.numbers[i] * a.numbers[j] / 36) * np.eye(3)
    w = np.cross(_env(a, i), _env(a, j))
    return sym + 0.5 * np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])


def labelled(n: int, seed: int = 0, cutoff: float = 3.0, names=("CH3OH", "H2O", "CH4")):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = molecule(names[k % len(names)])
        a.positions += rng.normal(scale=0.1, size=a.positions.shape)
        pairs = [(i, j) for i in range(len(a)) for j in range(i + 1, len(a)) if a.get_distance(i, j) <= cutoff]
        a.info[f"{KEY}_pairs"] = np.array(pairs).ravel()
        a.info[KEY] = np.array([pair_tensor(a, i, j).ravel() for i, j in pairs]).ravel()
        out.append(a)
    return out


TARGET = Target(KEY, per="pair", tensor="ij")


# ---- Target and layout -------------------------------------------------------------------------
def test_exchange_signs_come_from_the_basis():
    assert Target("j", per="pair").swap_signs == (1,)
    assert Target("j", per="pair", tensor="ij").swap_signs == (1, -1, 1)  # 0e, 1e (antisymmetric), 2e
    assert Target("j", per="pair", tensor="ij=ji").swap_signs == (1, 1)
    assert Target("j", per="pair", tensor="ij", parity=-1).swap_signs == (1, -1, 1)
    with pytest.raises(ConfigError, match="scalar or a rank-2"):
        Target("j", per="pair", tensor="i")
    with pytest.raises(ConfigError, match="pair"):
        Target("j", per="pair", grid=(0.0, 1.0))


def test_reversed_pairs_are_canonicalised_with_transposed_values(tmp_path):
    a = labelled(1)[0]
    pairs = a.info[f"{KEY}_pairs"].reshape(-1, 2)
    vals = a.info[KEY].reshape(-1, 3, 3)
    b = a.copy()
    b.info[f"{KEY}_pairs"] = pairs[:, ::-1].ravel()
    b.info[KEY] = vals.transpose(0, 2, 1).ravel()
    pa, va = read_frame_pairs(a, 0, TARGET)
    pb, vb = read_frame_pairs(b, 0, TARGET)
    assert np.array_equal(pa, pb) and np.allclose(va, vb, atol=0)
    # a single pair survives the extxyz round trip (ASE would otherwise read one number as a scalar)
    c = a.copy()
    c.info[f"{KEY}_pairs"], c.info[KEY] = pairs[0], vals[0].ravel()
    write_structures(tmp_path / "one.xyz", [c])
    ds = load_dataset(str(tmp_path / "one.xyz"), TARGET)
    assert ds.values.shape == (1, 9) and np.allclose(ds.values[0], vals[0].ravel())


@pytest.mark.parametrize("change, message", [
    (lambda a: a.info.update({f"{KEY}_pairs": np.array([0, 1, 1, 0])}), "twice"),
    (lambda a: a.info.update({f"{KEY}_pairs": np.array([0, 99])}), "outside"),
    (lambda a: a.info.update({f"{KEY}_pairs": np.array([2, 2])}), "itself"),
    (lambda a: a.info.update({KEY: a.info[KEY][:-1]}), "numbers for"),
    (lambda a: a.info.pop(f"{KEY}_pairs"), "no pair list"),
    (lambda a: [a.info.pop(f"{KEY}_pairs"), a.info.pop(KEY), a.arrays.update({KEY: np.zeros(len(a))})], "per-atom label here"),
])
def test_bad_pair_labels_name_file_frame_and_key(tmp_path, change, message):
    frames = labelled(3)
    change(frames[2])
    write_structures(tmp_path / "bad.xyz", frames)
    with pytest.raises(DataError, match=message) as err:
        load_dataset(str(tmp_path / "bad.xyz"), TARGET)
    assert "bad.xyz" in str(err.value) and "frame 2" in str(err.value)


# ---- the network ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted():
    data = load_dataset(labelled(12), TARGET)
    return tiny_model(TARGET, train={"dtype": "float64"}).fit(data)


def test_o3_equivariance_translation_and_rotated_uncertainty(fitted):
    frames = labelled(3, seed=5)
    p = fitted.predict(frames)
    R = Rotation.random(random_state=3).as_matrix() @ np.diag([1.0, 1.0, -1.0])  # a rotation times a reflection
    moved = [a.copy() for a in frames]
    for a in moved:
        a.positions = a.positions @ R.T + np.array([3.0, -1.0, 0.5])
    q = fitted.predict(moved)
    expect = np.einsum("ab,nbc,dc->nad", R, p.values.reshape(-1, 3, 3), R).reshape(-1, 9)
    assert np.abs(q.values - expect).max() < 1e-10 * max(1.0, np.abs(p.values).max())
    assert np.abs(q.irreps_std - p.irreps_std).max() < 1e-10
    assert p.std.min() > 0


def test_permuting_atoms_permutes_pairs_and_transposes_reversed_ones(fitted):
    a = labelled(1, seed=7)[0]
    p = fitted.predict([a])
    perm = np.random.default_rng(0).permutation(len(a))  # new atom k is old atom perm[k]
    b = a[perm]
    inv = np.argsort(perm)
    old_pairs = a.info[f"{KEY}_pairs"].reshape(-1, 2)
    b.info[f"{KEY}_pairs"] = inv[old_pairs].ravel()  # possibly (j, i): canonicalised on reading
    b.info.pop(KEY)
    q = fitted.predict([b])
    new_pairs = np.sort(inv[old_pairs], axis=1)
    order = {tuple(x): k for k, x in enumerate(q.pairs[0])}
    for k, (i, j) in enumerate(old_pairs):
        got = q.values[order[tuple(new_pairs[k])]].reshape(3, 3)
        want = p.values[k].reshape(3, 3)
        want = want if inv[i] < inv[j] else want.T
        assert np.abs(got - want).max() < 1e-10


def test_learns_below_the_element_pair_baseline_and_round_trips(fitted, tmp_path):
    from psilearn.models import load
    from psilearn.models.composition import composition_predict

    model = tiny_model(TARGET, train={"epochs": 25}).fit(load_dataset(labelled(24), TARGET))
    test = load_dataset(labelled(6, seed=11), TARGET)
    pred = model.predict(test.frames)
    base = TARGET.to_cartesian(composition_predict(model.metadata["composition_baseline"], TARGET, test.frames, test.pairs))
    rmse = lambda x: float(np.sqrt(np.mean((x - test.values) ** 2)))  # noqa: E731
    assert rmse(pred.values) < 0.6 * rmse(base)
    model.save(tmp_path / "p.model")
    again = load(tmp_path / "p.model")
    assert np.abs(again.predict(test.frames).values - pred.values).max() < 1e-6
    assert again.pair_rule == model.pair_rule


def test_baseline_kind_fits_the_element_pair_mean(tmp_path):
    from psilearn.models import load
    from psilearn.models.baseline.model import BaselineModel

    data = load_dataset(labelled(9), TARGET)
    base = BaselineModel(TARGET).fit(data)
    test = load_dataset(labelled(3, seed=4), TARGET)
    pred = base.predict(test.frames)
    z = [np.sort(a.numbers[p], axis=1) for a, p in zip(test.frames, test.pairs)]
    iso = np.trace(pred.values.reshape(-1, 3, 3), axis1=1, axis2=2) / 3
    train_iso = np.trace(data.values.reshape(-1, 3, 3), axis1=1, axis2=2) / 3
    train_z = np.concatenate([np.sort(a.numbers[p], axis=1) for a, p in zip(data.frames, data.pairs)])
    for (x, y), v in zip(np.concatenate(z), iso):  # the training mean of that element pair
        assert abs(v - train_iso[(train_z[:, 0] == x) & (train_z[:, 1] == y)].mean()) < 1e-6
    base.save(tmp_path / "b.model")
    assert np.allclose(load(tmp_path / "b.model").predict(test.frames).values, pred.values, atol=1e-12)


def test_structures_without_pairs_round_trip(fitted, tmp_path):
    from ase import Atoms

    lone = Atoms("H2", positions=[[0, 0, 0], [0, 0, 8.0]])  # no pair within the training rule
    frames = [lone, *labelled(2, seed=3)]
    pred = fitted.predict(frames)
    assert len(pred.pairs[0]) == 0
    from psilearn.data.prediction_io import predictions_to_atoms

    write_structures(tmp_path / "out.xyz", predictions_to_atoms(frames, pred, TARGET))
    back = read_structures(str(tmp_path / "out.xyz"))
    assert f"{KEY}_pairs" not in back[0].info and not back[0].pbc.any()
    ds = load_dataset(back, TARGET)  # a structure without both keys has no pair
    assert [len(p) for p in ds.pairs] == [len(p) for p in pred.pairs]
    np.testing.assert_allclose(ds.values, pred.values, atol=1e-10)
    with pytest.raises(DataError, match="no structure has a pair list"):
        load_dataset([lone.copy()], TARGET)


def test_which_pairs_are_predicted(fitted):
    a = molecule("CH3OH")
    bare = a.copy()
    p = fitted.predict([bare])  # no pair list: the training rule (element pairs seen, longest pair)
    d = np.array([a.get_distance(i, j) for i, j in p.pairs[0]])
    assert len(d) and d.max() <= fitted.pair_rule.max_distance
    from psilearn.calculator import PsilearnCalculator

    calc_atoms = a.copy()
    calc_atoms.calc = PsilearnCalculator({KEY: fitted}, convert=False)
    assert np.allclose(calc_atoms.calc.get_property(KEY, calc_atoms), p.values.reshape(-1, 3, 3), atol=1e-12)
    assert np.array_equal(calc_atoms.calc.results[f"{KEY}_pairs"], p.pairs[0])
    far = a.copy()
    far.info[f"{KEY}_pairs"] = np.array([0, 1])
    far.positions[1] += [9.0, 0, 0]
    with pytest.raises(DataError, match="beyond this model's reach"):
        fitted.predict([far])
    odd = molecule("H2O2")  # known elements, but no O-O pair in training
    o = [k for k, z in enumerate(odd.numbers) if z == 8]
    odd.info[f"{KEY}_pairs"] = np.array(o)
    with pytest.raises(DataError, match="O-O, an element pair never seen"):
        fitted.predict([odd])


# ---- CLI ---------------------------------------------------------------------------------------------
def test_cli_fit_predict_evaluate_and_refusals(tmp_path, capsys):
    write_structures(tmp_path / "train.xyz", labelled(12))
    write_structures(tmp_path / "test.xyz", labelled(3, seed=9))
    cfg = tmp_path / "nn.yaml"
    cfg.write_text(yaml.safe_dump({"nn": TINY_NET, "nn_train": TINY_TRAIN}))
    model = tmp_path / "j.model"
    assert main(["fit", str(tmp_path / "train.xyz"), "--target", KEY, "--per", "pair", "--tensor", "ij", "--model", "nn",
                 "--config", str(cfg), "-o", str(model), "-q"]) == 0
    assert main(["predict", str(model), str(tmp_path / "test.xyz"), "-o", str(tmp_path / "out.xyz"), "-q"]) == 0
    out = read_structures(str(tmp_path / "out.xyz"))
    ref = read_structures(str(tmp_path / "test.xyz"))
    for a, r in zip(out, ref):
        n = len(r.info[f"{KEY}_pairs"]) // 2
        assert np.array_equal(a.info[f"{KEY}_pairs"], r.info[f"{KEY}_pairs"])
        assert a.info[KEY].size == 9 * n and a.info[f"{KEY}_std"].size == 9 * n
        assert np.allclose(a.info[f"{KEY}_reference"], r.info[KEY])
    capsys.readouterr()
    assert main(["evaluate", str(model), str(tmp_path / "test.xyz")]) == 0
    assert "antisymmetric" in capsys.readouterr().out
    code = main(["fit", str(tmp_path / "train.xyz"), "--target", KEY, "--per", "pair", "--tensor", "ij", "-o", str(tmp_path / "k.model")])
    err = capsys.readouterr().err
    assert code == 2 and "per-pair target" in err and "--model nn" in err and "Traceback" not in err
    assert main(["fit", str(tmp_path / "train.xyz"), "--target", KEY, "--per", "pair", "--tensor", "ij", "--model", "baseline",
                 "-o", str(tmp_path / "b.model"), "-q"]) == 0


def test_periodic_pairs_use_the_shortest_image_and_refuse_ambiguous_ones():
    from ase.build import bulk

    rng = np.random.default_rng(2)
    target = Target("exch", per="pair", units="meV")
    frames = []
    for _ in range(8):
        a = bulk("Fe", "bcc", a=2.87, cubic=True) * (2, 2, 2)
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        pairs = [(i, j) for i in range(len(a)) for j in range(i + 1, len(a)) if a.get_distance(i, j, mic=True) < 2.7]
        a.info["exch_pairs"] = np.array(pairs).ravel()
        a.info["exch"] = np.array([20 * np.exp(-a.get_distance(i, j, mic=True)) for i, j in pairs])
        frames.append(a)
    model = tiny_model(target, train={"dtype": "float64"}).fit(load_dataset(frames, target))
    test = frames[0].copy()
    p = model.predict([test])
    R = Rotation.random(random_state=4).as_matrix()
    moved = test.copy()
    moved.set_cell(test.cell[:] @ R.T, scale_atoms=True)
    moved.positions += 0.7  # translated across the cell boundary
    moved.wrap()
    assert np.abs(model.predict([moved]).values - p.values).max() < 1e-10
    big = test.copy()
    big.info["exch_pairs"] = np.array([0, 1])
    big.positions[1] = big.positions[0] + [2.87, 0.0, 0.0]  # half the 5.74 A cell: two images as close
    with pytest.raises(DataError, match="several periodic images"):
        model.predict([big])
