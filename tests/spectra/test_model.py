"""The spectrum model: fit/predict/save/load, shift-aware loss, alignment, PCA, local and absorber spectra."""

import numpy as np
import pytest
from tests.spectra._synthetic import GRID, SOAP, labelled

from psilearn.data import DataError
from psilearn.data.spectra import load_spectrum_dataset
from psilearn.models import load
from psilearn.models.spectrum import SpectrumConfig, SpectrumModel
from psilearn.observe import pearson
from psilearn.targets import Target

FAST = dict(n_sparse=60)


def fit(frames, target, **cfg):
    ds = load_spectrum_dataset(frames, target)
    return SpectrumModel(target, SOAP, SpectrumConfig(**{**FAST, **cfg})).fit(ds)


@pytest.fixture(scope="module")
def frames():
    return labelled(48, seed=3)


def test_l2_model_learns_and_roundtrips(frames, tmp_path):
    target = Target("dos", grid=GRID, grid_units="eV")
    train, test = frames[:40], frames[40:]
    model = fit(train, target)
    pred = model.predict(test)
    ref = np.array([a.info["dos"] for a in test])
    assert pred.values.shape == (8, len(GRID)) and np.all(pred.std > 0)
    assert np.mean(pearson(ref, pred.values)) > 0.95
    rel = np.sqrt(np.mean((pred.values - ref) ** 2)) / np.sqrt(np.mean((ref - ref.mean(0)) ** 2))
    assert rel < 0.5
    path = tmp_path / "dos.model"
    model.save(path)
    back = load(path)
    assert isinstance(back, SpectrumModel) and back.target == target
    again = back.predict(test)
    assert again.values == pytest.approx(pred.values, abs=1e-10) and again.std == pytest.approx(pred.std, abs=1e-10)
    assert model.metadata["heldout_metrics"]["spectral"]["pearson"] > 0.9


def test_shift_aware_loss_recovers_known_shifts():
    rng = np.random.default_rng(11)
    true = rng.uniform(-0.8, 0.8, 40)
    frames = labelled(40, seed=5, shifts=true)
    target = Target("dos", grid=GRID)
    model = fit(frames, target, loss="shift", max_shift=1.5, shift_iterations=10)
    # aligned(E) = y(E - s) undoes the applied shift up to one common constant
    expect = -(true - true.mean())
    assert np.max(np.abs(model.train_shifts - expect)) < 0.1  # one grid spacing
    assert np.sqrt(np.mean((model.train_shifts - expect) ** 2)) < 0.04
    plain = fit(frames, target)
    assert (model.metadata["heldout_metrics"]["cartesian"]["rmse"]
            < 0.5 * plain.metadata["heldout_metrics"]["cartesian"]["rmse"])


def test_align_on_edge_feature():
    """XANES-like: an absorption edge at -4 + s_i plus structure-dependent peaks; aligning on the
    half-maximum edge removes the s_i."""
    from scipy.special import erf

    rng = np.random.default_rng(2)
    true = rng.uniform(-0.5, 0.5, 20)
    shifted = labelled(20, seed=7)
    for a, s in zip(shifted, true):
        a.info["dos"] = 0.5 * (1 + erf((GRID + 4 - s) / 0.3)) + 0.2 * a.info["dos"] / a.info["dos"].max()
    model = fit(shifted, Target("dos", grid=GRID), loss="align", align_feature="edge")
    assert model.train_shifts == pytest.approx(-(true - true.mean()), abs=0.03)


def test_pca_compression(frames):
    model = fit(frames[:40], Target("dos", grid=GRID), pca=0.999)
    assert 1 <= model.metadata["n_columns"] < len(GRID)
    full = fit(frames[:40], Target("dos", grid=GRID))
    a, b = model.predict(frames[40:]).values, full.predict(frames[40:]).values
    assert np.sqrt(np.mean((a - b) ** 2)) < 0.1 * np.abs(b).max()


def test_local_spectra_sum_to_structure(frames):
    target = Target("ldos", per="atom", grid=GRID)
    model = fit(frames[:40], target)
    per_atom = model.predict(frames[40:]).values
    assert per_atom.shape == (sum(len(a) for a in frames[40:]), len(GRID))
    total = model.predict_structures(frames[40:])
    assert total.sum() == pytest.approx(per_atom.sum())
    ref = np.array([a.info["dos"] for a in frames[40:]])
    assert np.mean(pearson(ref, total)) > 0.95


def test_absorber_centred_model(frames):
    with_o = [a for a in frames if 8 in a.numbers]
    target = Target("dos", grid=GRID, absorber="O", pool="mean")
    model = fit(with_o[:25], target)
    assert model.centre_species == [8]
    assert model.predict(with_o[25:]).values.shape == (len(with_o) - 25, len(GRID))
    no_o = next(a for a in frames if 8 not in a.numbers)
    with pytest.raises(DataError, match="no O atom"):
        model.predict([no_o])


def test_model_refuses_bad_inputs(frames):
    with pytest.raises(ValueError, match="spectrum target"):
        SpectrumModel(Target("dos"))
    with pytest.raises(ValueError, match="loss"):
        SpectrumConfig.from_dict({"loss": "l1"})
    model = fit(frames[:10], Target("dos", grid=GRID), n_sparse=10)
    from ase import Atoms

    with pytest.raises(DataError, match="never seen in training"):
        model.predict([Atoms("NH3", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])])


def test_precomputed_features_give_the_same_model(frames):
    from psilearn.models.spectrum.representation import invariant_features, subset_features

    target = Target("dos", grid=GRID)
    feats = invariant_features(frames, SOAP, [1, 6, 8])
    ds = load_spectrum_dataset(frames, target)
    idx = np.arange(5, 35)
    a = SpectrumModel(target, SOAP, SpectrumConfig(**FAST)).fit(ds.subset(idx))
    b = SpectrumModel(target, SOAP, SpectrumConfig(**FAST)).fit(ds.subset(idx), features=subset_features(feats, idx))
    test = np.array([40, 2, 45])
    pa = a.predict([frames[i] for i in test])
    pb = b.predict([frames[i] for i in test], features=subset_features(feats, test))
    assert pb.values == pytest.approx(pa.values, abs=1e-9) and pb.std == pytest.approx(pa.std, abs=1e-9)


def test_cv_regularization_chooses_a_ratio_by_k_fold_error(frames, tmp_path):
    from psilearn.models.spectrum.regression import kfold_predict

    target = Target("dos", grid=GRID, grid_units="eV")
    model = fit(frames[:40], target, regularization="cv", cv_folds=4)
    grid = model.gp.reg_grid()
    assert np.any(np.isclose(grid, model.fit_.reg, rtol=1e-12))
    ref = np.array([a.info["dos"] for a in frames[40:]])
    assert np.mean(pearson(ref, model.predict(frames[40:]).values)) > 0.95
    model.save(tmp_path / "cv.model")
    assert load(tmp_path / "cv.model").config.regularization == "cv"
    # the chosen ratio is the grid point with the lowest summed k-fold error (same as kfold_predict's)
    from psilearn.models.spectrum.regression import cv_regularization

    rng = np.random.default_rng(0)
    bw, y = rng.normal(size=(30, 6)), rng.normal(size=(30, 3))
    folds = np.arange(30) % 3
    errs = [np.sum((kfold_predict(bw, y, folds, r) - y) ** 2) for r in model.gp.reg_grid()]
    assert cv_regularization(model.gp, bw, y, folds) == pytest.approx(model.gp.reg_grid()[int(np.argmin(errs))])
