"""The `density` model kind: symmetry, electron count, accuracy against the mean model, state, CLI.

24 small molecules (water, methane, HCN, randomly distorted) labelled once per session with
HF/STO-3G in def2-universal-jkfit (Coulomb metric); a small lambda-SOAP keeps the fit to seconds."""

import ase.io
import numpy as np
import pytest
from ase.build import molecule
from scipy.spatial.transform import Rotation

from psilearn.data import load_density_dataset
from psilearn.errors import ConfigError, DataError
from psilearn.models import load
from psilearn.models.density.constraint import structure_metric
from psilearn.models.factory import build_model, fit_model
from psilearn.targets.ao_basis import e3nn_rotation

from ._shared import SOAP


@pytest.fixture(scope="session")
def model(data):
    return fit_model("density", data.target, data.subset(range(20)), {"soap": SOAP})


def _metric_error(target, frames, predicted, reference) -> float:
    err = ref = 0.0
    for a, p, c in zip(frames, predicted, reference):
        s, _ = structure_metric(target, a)
        err += (p - c) @ s @ (p - c)
        ref += c @ s @ c
    return float(np.sqrt(err / ref))


def _probe(data):
    """A test structure (not trained on), off the origin."""
    a = data.frames[22].copy()
    a.positions += (0.3, -0.2, 0.5)
    return a


@pytest.mark.parametrize("proper", [True, False], ids=["rotation", "rotation+inversion"])
def test_predictions_are_o3_equivariant(model, data, proper):
    a = _probe(data)
    rot = Rotation.random(random_state=11).as_matrix() * (1 if proper else -1)
    b = a.copy()
    b.positions = a.positions @ rot.T
    t = model.target
    e0 = t.to_irreps(a, model.predict(a).coefficients[0])
    e1 = t.to_irreps(b, model.predict(b).coefficients[0])
    expected = e0.copy()
    for l, idx in t.index_by_l(a).items():
        expected[idx] = e0[idx] @ e3nn_rotation(l, rot).T
    assert np.abs(e1 - expected).max() < 1e-8 * np.abs(e0).max()
    assert np.abs(e1 - e0).max() > 1e-3 * np.abs(e0).max()  # the rotation did change the coefficients


def test_permutation_and_translation(model, data):
    a = _probe(data)
    perm = np.array([2, 0, 3, 1, 4])[: len(a)] if len(a) == 5 else np.arange(len(a))[::-1]
    c = model.predict(a).coefficients[0]
    parts = model.target.split(a, c)
    b = a[perm]
    assert np.allclose(model.target.join([parts[i] for i in perm]), model.predict(b).coefficients[0], atol=1e-10)
    moved = a.copy()
    moved.positions += (5.0, -3.0, 2.0)
    assert np.allclose(model.predict(moved).coefficients[0], c, atol=1e-10)


def test_electron_count_is_exact_only_with_the_constraint(model, data):
    frames = data.frames[20:]
    charged = frames[0].copy()
    charged.info["charge"] = 1
    charged.info["multiplicity"] = 2
    pred = model.predict(frames + [charged])
    want = [a.numbers.sum() for a in frames] + [charged.numbers.sum() - 1]
    for (_, q), c, n, e in zip((structure_metric(model.target, a) for a in frames + [charged]), pred.coefficients, want,
                               pred.electrons):
        assert abs(q @ c - n) < 1e-10 and abs(e - n) < 1e-10
    free = model.predict(frames, conserve=False)
    assert max(abs(e - n) for e, n in zip(free.electrons, want)) > 1e-6
    assert pred.std is None


def test_better_than_the_mean_model_on_training_and_test_data(model, data):
    """The model beats the per-element mean of the l=0 coefficients (all else zero) by far."""
    for idx in (range(20), range(20, 24)):
        frames = [data.frames[i] for i in idx]
        ref = [data.coefficients(i) for i in idx]
        mean = [model.target.from_irreps(a, model.baseline_vector(a)) for a in frames]
        ours = _metric_error(model.target, frames, model.predict(frames).coefficients, ref)
        assert ours < 0.2 * _metric_error(model.target, frames, mean, ref)
    record = model.metadata
    assert record["regularization"] in record["reg_grid"] and record["heldout_metrics"]["density_error_percent"] > 0


def test_save_load_identical(model, data, tmp_path):
    model.save(tmp_path / "m")
    again = load(tmp_path / "m")
    frames = data.frames[20:]
    for p, q in zip(model.predict(frames).coefficients, again.predict(frames).coefficients):
        assert np.array_equal(p, q)
    assert again.target == model.target
    from psilearn.targets import Target

    assert Target.from_dict(model.target.to_dict()) == model.target  # model files restore kind: density


def test_cli_fit_predict_writes_a_density_labelled_file(labelled, tmp_path, capsys):
    from psilearn.cli.main import main as cli_main

    cfg = tmp_path / "o.yaml"
    cfg.write_text("soap: {cutoff: 4.0, max_radial: 3, max_angular: 2}\ndensity: {n_sparse: 10, conserve_electrons: true}\n")
    out_model, out = tmp_path / "m", tmp_path / "p.xyz"
    assert cli_main(["fit", f"{labelled}@:12", "--target", "density_coefficients", "--density", "--config", str(cfg),
                     "-o", str(out_model)]) == 0
    assert "held-out density error in the coulomb metric" in capsys.readouterr().out
    assert cli_main(["predict", str(out_model), f"{labelled}@20:", "-o", str(out)]) == 0
    ds = load_density_dataset(str(out))
    assert len(ds) == 4 and ds.target.aux_basis == "def2-universal-jkfit"
    for a in ds.frames:
        assert abs(a.info["density_electrons"] - a.numbers.sum()) < 1e-10
        assert "density_coefficients_reference" in a.info
    other = ds.frames[0].copy()
    other.info["density_aux_basis"] = "cc-pvdz-jkfit"
    ase.io.write(tmp_path / "other.xyz", other)
    capsys.readouterr()
    assert cli_main(["predict", str(out_model), str(tmp_path / "other.xyz"), "-o", str(tmp_path / "o2.xyz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "aux basis 'cc-pvdz-jkfit' but the model was trained on and predicts" in err
    assert cli_main(["fit", str(labelled), "--target", "density_coefficients", "--density", "--model", "nn",
                     "-o", str(tmp_path / "n")]) == 2
    assert "--density fits the density model kind; it does not take --model nn" in capsys.readouterr().err


def test_clear_errors(model, data):
    with pytest.raises(DataError, match="element F not in the density target"):
        model.predict(molecule("HF"))
    other = data.frames[20].copy()
    other.info["density_aux_basis"] = "cc-pvdz-jkfit"
    with pytest.raises(DataError, match="aux basis 'cc-pvdz-jkfit' but the model was trained on and predicts 'def2-universal-jkfit'"):
        model.predict(other)
    from psilearn.evaluation import evaluate

    with pytest.raises(ConfigError, match="evaluate --plot has no parity plot for density models"):
        evaluate(model, data.subset(range(20, 24)), plot="x.png")
    with pytest.raises(ConfigError, match="density.zeta"):
        build_model("density", data.target, {"density": {"zeta": 0.5}})
    with pytest.raises(ValueError, match="density targets"):
        from psilearn.targets import Target

        build_model("density", Target("dipole", tensor="i"))

def test_memory_guard_refuses_with_one_line(data, monkeypatch):
    from psilearn.errors import MemoryBudgetError

    monkeypatch.setenv("PSILEARN_MEMORY_LIMIT", "1M")
    with pytest.raises(MemoryBudgetError, match=r"^density-model normal equations \(\d+ weights: .* needs about .* reduce density.n_sparse"):
        fit_model("density", data.target, data.subset(range(6)), {"soap": SOAP, "density": {"solver": "direct"}})


@pytest.mark.parametrize("proper", [True, False], ids=["rotation", "rotation+inversion"])
def test_lambda_soap_m_order_is_e3nn_with_density_parity(data, proper):
    """The (l, sigma=+1) lambda-SOAP blocks rotate by e3nn's D^l (the basis of DensityTarget.to_irreps)
    and pick up (-1)^l under inversion, as density coefficients of degree l do: measured, not assumed."""
    from psilearn.features import LambdaSoap, SoapConfig
    from psilearn.models.density.rkhs import channel

    a = _probe(data)
    rot = Rotation.random(random_state=5).as_matrix() * (1 if proper else -1)
    b = a.copy()
    b.positions = a.positions @ rot.T
    soap = LambdaSoap(SoapConfig(**SOAP), sorted(set(a.numbers)))
    chans = [channel(l) for l in range(5)]
    fa, fb = soap.compute([a], chans), soap.compute([b], chans)
    for l in range(5):
        for z in fa.index:
            xa, xb = fa.blocks[channel(l)][z], fb.blocks[channel(l)][z]
            expected = np.einsum("mk,nkq->nmq", e3nn_rotation(l, rot), xa)
            assert np.abs(xb - expected).max() < 1e-10 * max(np.abs(xa).max(), 1e-300), (l, z)


def test_streaming_does_not_depend_on_the_batch_size(data):
    """Normal equations accumulated in batches of 2 structures (elements missing from some
    batches) give the weights of one batch."""
    sub = data.subset(range(8))
    one = fit_model("density", data.target, sub, {"soap": SOAP, "density": {"regularization": 1e-3}})
    small = fit_model("density", data.target, sub, {"soap": {**SOAP, "batch_size": 2}, "density": {"regularization": 1e-3}})
    for key, w in one.weights.items():
        assert np.abs(small.weights[key] - w).max() < 1e-9 * np.abs(w).max()  # rounding only


def test_overlap_metric_labels(tmp_path):
    """Labels fitted in the overlap metric: the loss and the constraint use <P|Q>; the model file
    records the metric and predictions carry it."""
    from psilearn.label import make_labeler
    from psilearn.label.density import aux_metric

    lab = make_labeler("hf/sto-3g", "density", grid_level=2, density_metric="overlap")
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(6):
        a = molecule("H2O")
        a.positions += rng.normal(0, 0.08, a.positions.shape)
        frames.append(lab.label(a))
    ds = load_density_dataset(frames)
    assert ds.target.metric == "overlap"
    m = fit_model("density", ds.target, ds.subset(range(5)), {"soap": SOAP})
    pred = m.predict(ds.frames[5:])
    s, q = aux_metric(ds.frames[5], ds.target.aux_basis, "overlap")
    assert pred.metric == "overlap" and abs(q @ pred.coefficients[0] - 10) < 1e-10
    assert np.allclose(s, structure_metric(ds.target, ds.frames[5])[0])


def test_evaluate_density_model(model, data, labelled, capsys):
    """evaluate: the error in the fit metric equals the one computed here, the L2 error is the overlap
    metric's, the dipole error matches psilearn.observe.density.dipole (another code path); the CLI prints it."""
    from psilearn.cli.main import main as cli_main
    from psilearn.evaluation import evaluate
    from psilearn.label.density import aux_metric
    from psilearn.observe.density import DEBYE_PER_AU, dipole

    test = data.subset(range(20, 24))
    m = evaluate(model, test)
    frames, ref = test.frames, [test.coefficients(i) for i in range(4)]
    pred = model.predict(frames).coefficients
    assert m["n_structures"] == 4 and m["metric"] == "coulomb" and m["max_electron_error"] < 1e-10
    assert np.isclose(m["metric_error_percent"], 100 * _metric_error(model.target, frames, pred, ref), rtol=1e-10)
    num = den = 0.0
    for a, p, c in zip(frames, pred, ref):
        s, _ = aux_metric(a, model.target.aux_basis, "overlap")
        num, den = num + (p - c) @ s @ (p - c), den + c @ s @ c
    assert np.isclose(m["l2_percent"], 100 * np.sqrt(num / den), rtol=1e-10) and 0 < m["l2_percent"] < 5
    dmu = np.mean([np.linalg.norm(dipole(a, p, model.target.aux_basis) - dipole(a, c, model.target.aux_basis))
                   for a, p, c in zip(frames, pred, ref)])
    assert np.isclose(m["dipole_mae_debye"], DEBYE_PER_AU * dmu, rtol=1e-6) and m["dipole_mae_vs_label_debye"] is None
    model.save(tmp := labelled.parent / "eval.model", overwrite=True)
    assert cli_main(["evaluate", str(tmp), f"{labelled}@20:"]) == 0
    out = capsys.readouterr().out
    assert f"density L2 error vs the fitted densities: {m['l2_percent']:.4f}%" in out and "dipole MAE" in out


def test_learning_curve_of_density_models(labelled, capsys):
    import json

    from psilearn.cli.main import main as cli_main

    cfg = labelled.parent / "lc.yaml"
    cfg.write_text("soap: {cutoff: 4.0, max_radial: 3, max_angular: 2}\ndensity: {regularization: 1.0e-3}\n")
    assert cli_main(["learning-curve", f"{labelled}@:12", f"{labelled}@20:", "--target", "density_coefficients", "--density",
                     "--sizes", "3,12", "--config", str(cfg), "--json"]) == 0
    captured = capsys.readouterr()
    lc = json.loads(captured.out)
    assert lc["sizes"] == [3, 12] and lc["model"] == "density" and lc["n_test"] == 4
    l2 = lc["metrics"]["l2_percent"]
    assert l2[1] < l2[0] and all(r["metrics"]["max_electron_error"] < 1e-10 for r in lc["rows"])  # more data, smaller error
    assert "L2 % vs fit" in captured.err
