"""A separate model per centre element (`per-element` kind, `psilearn fit --per-element`): each
element's model is a plain SA-GPR of that element's atoms alone, element options are really used,
predictions are equivariant, files round-trip, and bad requests are one-line refusals."""

from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.data import chemical_symbols
from tests.core._synth import cartesian_operator, random_rotation, transform_frames

import psilearn
from psilearn import Target, load_dataset
from psilearn.cli.main import main
from psilearn.data import Dataset
from psilearn.errors import ConfigError, DataError
from psilearn.models import load
from psilearn.models.factory import fit_model
from psilearn.models.io import read_model

DEMO = Path(psilearn.__file__).parent / "demo_data" / "md_molecules.xyz"
SHIELD = Target("shielding", per="atom", tensor="ij", units="ppm")
SOAP = {"max_radial": 4, "max_angular": 2, "cutoff": 4.0}
SMALL = {"soap": SOAP, "model": {"n_sparse": 15}}


@pytest.fixture(scope="module")
def frames():
    return ase.io.read(f"{DEMO}", "0:510:30")  # 17 structures: water, ammonia, methanol (H, C, N, O)


@pytest.fixture(scope="module")
def test_frames():
    return ase.io.read(f"{DEMO}", "15:510:60")


@pytest.fixture(scope="module")
def model(frames):
    return fit_model("per-element", SHIELD, load_dataset(frames, SHIELD), SMALL)


def _numbers(frames):
    return np.concatenate([a.numbers for a in frames])


def _plain(frames, z, config):
    """A plain SA-GPR fitted on the atoms of element ``z`` alone (a label mask by hand)."""
    ds = load_dataset(frames, SHIELD)
    keep = _numbers(frames) == z
    return fit_model("sagpr", SHIELD, Dataset(ds.frames, SHIELD, ds.values[keep], "plain", keep), config)


def test_each_element_is_a_plain_model_of_its_atoms_alone(frames, test_frames):
    """The H model equals a plain SA-GPR fitted on H atoms only (same options: one sparse point for
    the other elements, whose kernels with H are zero), even when every other atom's label is garbage:
    a leak of another element's atoms into the H fit would change the H predictions."""
    rng = np.random.default_rng(0)
    garbage = []
    for a in frames:
        b = a.copy()
        other = b.numbers != 1
        b.arrays["shielding"] = np.where(other[:, None], rng.normal(0, 500, b.arrays["shielding"].shape), b.arrays["shielding"])
        garbage.append(b)
    pe = fit_model("per-element", SHIELD, load_dataset(garbage, SHIELD), SMALL)
    focused = {"soap": SOAP, "model": {"n_sparse": {"H": 15, "C": 1, "N": 1, "O": 1}}}
    ref = _plain(frames, 1, focused).predict(test_frames)
    got = pe.predict(test_frames)
    h = _numbers(test_frames) == 1
    assert np.abs(got.values[h] - ref.values[h]).max() < 1e-10
    assert np.abs(got.std[h] - ref.std[h]).max() < 1e-10
    # the test can fail: a model of all atoms predicts H differently
    shared = fit_model("sagpr", SHIELD, load_dataset(frames, SHIELD), SMALL).predict(test_frames)
    assert np.abs(shared.values[h] - ref.values[h]).max() > 1e-3
    assert pe.metadata["per_element"]["H"]["n_train_samples"] == int((_numbers(frames) == 1).sum())


def test_one_sparse_point_for_other_elements_changes_nothing(frames, test_frames, model):
    """Focusing (one sparse point per other element) gives the predictions of a plain H-only model
    with the full sparse set of every element."""
    ref = _plain(frames, 6, SMALL).predict(test_frames)
    got = model.predict(test_frames)
    c = _numbers(test_frames) == 6
    assert np.abs(got.values[c] - ref.values[c]).max() < 1e-6 * np.abs(ref.values[c]).max()


def test_element_options_are_used(frames, test_frames, model):
    """A shorter H cutoff (and a different zeta) changes the H predictions only."""
    cfg = {**SMALL, "per_element": {"H": {"soap": {"cutoff": 2.5}, "model": {"zeta": 1}}}}
    other = fit_model("per-element", SHIELD, load_dataset(frames, SHIELD), cfg)
    assert other.inners[1].soap.cutoff == 2.5 and other.inners[1].config.zeta == 1
    assert other.inners[6].soap.cutoff == 4.0 and other.inners[1].soap.max_radial == 4  # the shared options elsewhere
    a, b = model.predict(test_frames).values, other.predict(test_frames).values
    h = _numbers(test_frames) == 1
    assert np.abs(a[h] - b[h]).max() > 1e-2
    assert np.array_equal(a[~h], b[~h])


def test_rank2_prediction_is_equivariant(model, test_frames):
    q = random_rotation(np.random.default_rng(3))
    q = -q  # with inversion: the shielding is a polar rank-2 tensor
    p = model.predict(test_frames[:3]).values
    r = model.predict(transform_frames(test_frames[:3], q, shift=(0.3, -1.0, 2.0))).values
    m = cartesian_operator(q, 2)
    assert np.abs(r - p @ m.T).max() < 1e-8 * np.abs(p).max()


def test_file_round_trip_is_bit_identical(model, test_frames, tmp_path):
    model.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert type(loaded) is type(model) and sorted(loaded.inners) == [1, 6, 7, 8]
    p, q = model.predict(test_frames), loaded.predict(test_frames)
    assert np.array_equal(p.values, q.values) and np.array_equal(p.irreps, q.irreps)
    # SA-GPR's default file keeps its covariance basis in float32 (as a plain sagpr model's): std to ~1e-3
    assert np.abs(p.std - q.std).max() < 3e-3 * np.abs(p.std).max()
    loaded.save(tmp_path / "again")
    (m1, a1), (m2, a2) = read_model(tmp_path / "m"), read_model(tmp_path / "again")
    assert set(a1) == set(a2) and all(np.array_equal(a1[k], a2[k]) and a1[k].dtype == a2[k].dtype for k in a1)
    assert m1["inner"] == m2["inner"] and m1["training"] == m2["training"]
    assert {k.split("/")[0] for k in a1} == {"H", "C", "N", "O"}


def test_label_mask_and_unlabelled_elements(frames, test_frames):
    """With a label mask (only H and C labelled) there is no N or O model: those atoms are NaN."""
    masked = []
    for a in frames:
        b = a.copy()
        b.arrays["has_tensor"] = np.isin(b.numbers, [1, 6]).astype(int)
        masked.append(b)
    m = fit_model("per-element", SHIELD, load_dataset(masked, SHIELD, label_mask="has_tensor"), SMALL)
    assert sorted(m.inners) == [1, 6] and m.metadata["label_mask"] == "has_tensor"
    p = m.predict(test_frames).values
    n = _numbers(test_frames)
    assert np.isnan(p[np.isin(n, [7, 8])]).all() and np.isfinite(p[np.isin(n, [1, 6])]).all()


def test_refusals(frames):
    ds = load_dataset(frames, SHIELD)
    with pytest.raises(ConfigError, match="per-atom target"):
        fit_model("per-element", Target("dipole_moment"), ds, SMALL)
    with pytest.raises(ConfigError, match="per_element: unknown element 'Xx'"):
        fit_model("per-element", SHIELD, ds, {"per_element": {"Xx": {}}})
    with pytest.raises(ConfigError, match="per_element.H: .*cutoff"):
        fit_model("per-element", SHIELD, ds, {"per_element": {"H": {"soap": {"cutoff": -1.0}}}})
    with pytest.raises(ConfigError, match="per_element.H: section 'nn' is not read by the sagpr kind"):
        fit_model("per-element", SHIELD, ds, {"per_element": {"H": {"nn": {}}}})
    with pytest.raises(ConfigError, match="per_element: element 'Si' is not in the training data"):
        fit_model("per-element", SHIELD, ds, {**SMALL, "per_element": {"Si": {}}})
    with pytest.raises(ConfigError, match="section 'per_element' is not used by model kind 'sagpr'.*--per-element"):
        fit_model("sagpr", SHIELD, ds, {"per_element": {"H": {}}})


def test_unseen_element_is_refused(model, test_frames):
    a = test_frames[0].copy()
    a.symbols[0] = "F"
    a.info["source"] = "new.xyz:4"
    with pytest.raises(DataError, match=r"new.xyz, frame 4: element\(s\) F never seen"):
        model.predict([a])


def test_cli(frames, tmp_path, capsys):
    train = tmp_path / "train.xyz"
    ase.io.write(train, frames)
    cfg = tmp_path / "c.yaml"
    # covariance_storage: training: the float32 projector of the default file gives std 0 to a few O atoms here
    # (a plain sagpr model of the O atoms alone does the same), and evaluate's calibration divides by it
    cfg.write_text("soap: {max_radial: 4, max_angular: 2, cutoff: 4.0}\nmodel: {n_sparse: 10, covariance_storage: training}\n"
                   "per_element: {H: {soap: {cutoff: 3.0}}}\n")
    out = tmp_path / "m"
    assert main(["fit", str(train), "--target", "shielding", "--tensor", "ij", "--per", "atom", "--per-element",
                 "--config", str(cfg), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "H:" in text and "O:" in text
    m = load(out)
    assert m.kind == "per-element" and m.inners[1].soap.cutoff == 3.0 and m.inners[8].soap.cutoff == 4.0
    assert main(["fit", str(train), "--target", "shielding", "--tensor", "ij", "--per-element", "-o", str(tmp_path / "s")]) == 2
    assert "per-atom target" in capsys.readouterr().err
    assert main(["evaluate", str(out), str(train)]) == 0
    assert {chemical_symbols[z] for z in m.inners} == {"H", "C", "N", "O"}


def test_tune_each_element_on_its_own(frames):
    """--per-element --tune: one study per element, its own options stated in per_element stay fixed."""
    from psilearn.models.per_element import per_element_kind
    from psilearn.tune.per_element import tune_per_element

    ds = load_dataset(frames, SHIELD)
    cfg = {"soap": {"max_radial": 3, "max_angular": 1}, "model": {"n_sparse": 8}, "per_element": {"H": {"soap": {"cutoff": 3.0}}}}
    rows = []
    m = tune_per_element(per_element_kind(), SHIELD, ds, cfg, seconds=120, n_trials=2, seed=0, progress=rows.append)
    assert sorted(m.inners) == [1, 6, 7, 8] and len(rows) == 8
    assert [r["params"]["element"] for r in rows[:2]] == ["H", "H"]
    tuning = {s: r["tuning"] for s, r in m.metadata["per_element"].items()}
    assert all(t["n_trials"] == 2 for t in tuning.values())
    assert "soap.cutoff" in tuning["H"]["fixed"] and "soap.cutoff" not in tuning["C"]["fixed"]
    assert m.inners[1].soap.cutoff == 3.0
    assert m.inners[1].metadata["n_sparse"] == {"H": 8, "C": 1, "N": 1, "O": 1}  # each trial is the focused fit of H's model
    assert m.inners[1].metadata["tuning"] == tuning["H"]
    assert m.inners[1].metadata["n_train_samples"] == int((_numbers(frames) == 1).sum())
