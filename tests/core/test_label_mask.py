"""Per-atom labels on only some atoms (`load_dataset(..., label_mask=KEY)`, `fit --label-mask KEY`):
no dummy values, every atom described, only the labelled ones fitted and scored."""

import json
from pathlib import Path

import ase.io
import numpy as np
import pytest

import psilearn
from psilearn import Target, load_dataset
from psilearn.cli.main import main
from psilearn.errors import DataError
from psilearn.evaluation import evaluate
from psilearn.models import load
from psilearn.models.factory import fit_model

DEMO = Path(psilearn.__file__).parent / "demo_data" / "md_molecules.xyz"
SHIELD = Target("shielding", per="atom", tensor="ij", units="ppm")
SMALL = {"soap": {"max_radial": 4, "max_angular": 2, "cutoff": 4.0}, "model": {"n_sparse": 15}}


def _masked(frames, element="H"):
    """Copies whose shielding is NaN except on atoms of ``element``, with the mask ``has_tensor``."""
    out = []
    for a in frames:
        a = a.copy()
        keep = a.symbols == element
        a.arrays["shielding"] = np.where(keep[:, None], a.arrays["shielding"], np.nan)
        a.arrays["has_tensor"] = keep.astype(int)
        out.append(a)
    return out


@pytest.fixture(scope="module")
def frames():
    return ase.io.read(f"{DEMO}", "0:510:30")  # 17 structures: water, ammonia, methanol


def test_mask_of_all_atoms_changes_nothing(frames):
    marked = [a.copy() for a in frames]
    for a in marked:
        a.arrays["has_tensor"] = np.ones(len(a), int)
    plain = fit_model("sagpr", SHIELD, load_dataset(frames, SHIELD), SMALL)
    masked = fit_model("sagpr", SHIELD, load_dataset(marked, SHIELD, label_mask="has_tensor"), SMALL)
    a, b = plain.predict(frames[:3]), masked.predict(frames[:3])
    assert np.allclose(a.values, b.values) and np.allclose(a.std, b.std)


def test_partial_labels_fit_predict_evaluate(frames, tmp_path):
    data = _masked(frames)
    with pytest.raises(DataError, match="contains NaN"):
        load_dataset(data, SHIELD)  # without the mask the missing labels are refused, as before
    ds = load_dataset(data, SHIELD, label_mask="has_tensor")
    n_h = sum(int((a.symbols == "H").sum()) for a in frames)
    assert ds.values.shape == (n_h, 9) and np.all(np.isfinite(ds.values)) and len(ds.labelled) == sum(len(a) for a in frames)
    sub = ds.subset([3, 1])
    assert np.array_equal(sub.values, np.concatenate([ds.values[ds.sample_structure == i] for i in (3, 1)]))
    train, test = ds.subset(np.arange(0, len(ds), 2)), ds.subset(np.arange(1, len(ds), 2))
    model = fit_model("sagpr", SHIELD, train, SMALL)
    assert model.metadata["label_mask"] == "has_tensor" and model.metadata["n_train_samples"] == len(train.values)
    assert np.all(np.isfinite(model.metadata["heldout_metrics"]["cartesian"]["rmse"]))
    pred = model.predict(test.frames)  # every atom gets a prediction
    assert pred.values.shape == (sum(len(a) for a in test.frames), 9) and np.all(np.isfinite(pred.values))
    report = evaluate(model, test)
    assert report["n_samples"] == len(test.values) and list(report["per_element"]) == ["H"]
    model.save(tmp_path / "m")
    path = tmp_path / "test.xyz"
    ase.io.write(path, test.frames, format="extxyz")
    again = evaluate(load(tmp_path / "m"), str(path))  # the model's mask is applied to the test file
    assert again["n_samples"] == report["n_samples"]
    assert again["cartesian"]["rmse"] == pytest.approx(report["cartesian"]["rmse"], rel=1e-6)


def test_mask_refusals(frames):
    ds = load_dataset(_masked(frames), SHIELD, label_mask="has_tensor")
    with pytest.raises(DataError, match="supported by the sagpr and nn kinds only"):
        fit_model("baseline", SHIELD, ds)
    with pytest.raises(DataError, match="applies to per-atom targets only"):
        load_dataset(frames, Target("alpha", tensor="ij=ji"), label_mask="has_tensor")
    with pytest.raises(DataError, match=r"frame 0: no per-atom label mask 'is_labelled'"):
        load_dataset(frames, SHIELD, label_mask="is_labelled")


def test_cli_label_mask(frames, tmp_path, capsys):
    path = tmp_path / "partial.xyz"
    ase.io.write(path, _masked(frames[::2]), format="extxyz")
    (tmp_path / "small.yaml").write_text(json.dumps(SMALL))
    out = tmp_path / "nmr.model"
    assert main(["fit", str(path), "--target", "shielding", "--tensor", "ij", "--per", "atom", "--label-mask", "has_tensor",
                 "--config", str(tmp_path / "small.yaml"), "-o", str(out)]) == 0
    assert json.loads((out / "model.json").read_text())["training"]["label_mask"] == "has_tensor"
    assert main(["evaluate", str(out), str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["n_samples"] == sum(int((a.symbols == "H").sum()) for a in frames[::2])


def test_learning_curve_with_partial_labels(frames):
    from psilearn.evaluation import learning_curve

    ds = load_dataset(_masked(frames), SHIELD, label_mask="has_tensor")
    lc = learning_curve(ds.subset(np.arange(0, len(ds), 2)), ds.subset(np.arange(1, len(ds), 2)), SHIELD, [4, 9], config=SMALL)
    assert lc["rows"][-1]["metrics"]["n_samples"] == len(ds.subset(np.arange(1, len(ds), 2)).values)
    assert all(np.isfinite(lc["pct_rmse"]["Cartesian"]))


@pytest.mark.parametrize("case", ["mask", "per-element regularization"])
def test_covariance_storage_training_rebuilds_the_fitted_rows(frames, tmp_path, case):
    """A model stored with ``covariance_storage: training`` rebuilds the covariance basis from the
    same rows the fit used: the labelled atoms only, scaled by the per-element regularisation."""
    model_opts = {**SMALL["model"], "covariance_storage": "training"}
    if case == "mask":
        data = load_dataset(_masked(frames), SHIELD, label_mask="has_tensor")
    else:
        data = load_dataset(frames, SHIELD)
        model_opts["regularization"] = {"H": 1e-3, "N": 1e-2, "C": 1e-2, "O": 1e-2}
    model = fit_model("sagpr", SHIELD, data, {**SMALL, "model": model_opts})
    model.save(tmp_path / "m.model")
    test = ase.io.read(DEMO, "15:510:60")
    a, b = model.predict(test), load(tmp_path / "m.model").predict(test)
    np.testing.assert_array_equal(b.values, a.values)
    np.testing.assert_allclose(b.std, a.std, rtol=1e-9)
