"""`psilearn fit --density --baseline-method XC/BASIS`: psilearn's labeler computes the baseline density in the
target's aux basis and metric at fit and at predict time through the label store; equal to the same fit on
frames labelled beforehand (--baseline KEY); the same method as the labels gives a ~0 correction; the store is
reused; one-line refusals before any labelling. Fixture: the HF/STO-3G molecules of conftest.py."""

import ase.io
import numpy as np
import pytest

from psilearn.data import load_density_dataset
from psilearn.label import make_labeler
from psilearn.label.store import LabelStore
from psilearn.models import load
from psilearn.models.factory import fit_model
from psilearn.models.fidelity import delta_method_kind

from ._shared import SOAP

METHOD = "hf/3-21g"
CONFIG = {"soap": SOAP, "density": {"regularization": 1e-6}}


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory):
    """A --baseline-method model (store MODEL.baseline.db) and a --baseline model of the same frames pre-labelled."""
    import yaml

    from psilearn.cli.main import main

    tmp = tmp_path_factory.mktemp("dbmethod")
    cfg = tmp / "d.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    frames = data.frames
    ase.io.write(tmp / "train.xyz", frames[:8])
    ase.io.write(tmp / "test.xyz", frames[20:23])
    m_method, m_key = tmp / "method.model", tmp / "key.model"
    assert main(["fit", str(tmp / "train.xyz"), "--density", "--target", "density_coefficients", "--baseline-method", METHOD,
                 "--config", str(cfg), "-o", str(m_method)]) == 0
    lab = make_labeler(METHOD, "density")  # the labels' default aux basis and metric: those of the fixture
    pre = []
    for a in frames[:8] + frames[20:23]:
        b = a.copy()
        b.info["density_coefficients_b"] = lab.label(a).info["density_coefficients"]
        pre.append(b)
    ase.io.write(tmp / "pre.xyz", pre[:8])
    assert main(["fit", str(tmp / "pre.xyz"), "--density", "--target", "density_coefficients", "--baseline", "density_coefficients_b",
                 "--config", str(cfg), "-o", str(m_key)]) == 0
    return tmp, m_method, m_key, pre[8:], cfg


def test_predict_labels_its_input_sums_and_reuses_the_store(fitted, data, capsys):
    from psilearn.cli.main import main

    tmp, m_method, m_key, pre_test, cfg = fitted
    db = f"{m_method}.baseline.db"
    assert LabelStore(db).count(label_status="ok") == 8
    model = load(m_method)
    assert dict(model.baseline_method.options) == {"density_aux_basis": data.target.aux_basis, "density_metric": data.target.metric}
    out = tmp / "p.xyz"
    capsys.readouterr()
    assert main(["predict", str(m_method), str(tmp / "test.xyz"), "-o", str(out)]) == 0
    assert "3 labelled now, 0 already in the database" in capsys.readouterr().err
    key_pred = load(m_key).predict(pre_test)
    for a, ref, pre, k in zip(ase.io.read(out, ":"), data.frames[20:23], pre_test, key_pred.coefficients):
        c, b, d = (np.asarray(a.info[x]) for x in ("density_coefficients", "density_coefficients_baseline", "density_coefficients_correction"))
        np.testing.assert_allclose(c, b + d, atol=1e-12)
        np.testing.assert_allclose(b, pre.info["density_coefficients_b"], atol=1e-7)  # HF/3-21G, computed at predict time
        assert np.abs(b - ref.info["density_coefficients"]).max() > 1e-2  # ... not the input's HF/STO-3G label
        np.testing.assert_allclose(c, k, atol=1e-8 * np.abs(k).max())  # = the model fitted on pre-labelled frames
    assert main(["predict", str(m_method), str(tmp / "test.xyz"), "-o", str(tmp / "p2.xyz")]) == 0
    assert "0 labelled now, 3 already in the database" in capsys.readouterr().err
    assert LabelStore(db).count(label_status="ok") == 11
    # learning-curve with the same store: nothing is labelled again
    assert main(["learning-curve", str(tmp / "train.xyz"), str(tmp / "test.xyz"), "--density", "--target", "density_coefficients",
                 "--sizes", "4,8", "--baseline-method", METHOD, "--baseline-db", db, "--config", str(cfg)]) == 0
    assert LabelStore(db).count(label_status="ok") == 11


def test_the_labels_own_method_leaves_a_zero_correction(data, tmp_path):
    """HF/STO-3G labels, HF/STO-3G baseline: the sum reproduces the labels (to the SCF convergence), unlike a plain model."""
    train = load_density_dataset(data.frames[:8])
    model = fit_model(delta_method_kind("hf/sto-3g", "density", db=tmp_path / "b.db"), train.target, train, CONFIG)
    plain = fit_model("density", train.target, train, CONFIG)
    test = data.frames[20:23]
    ref = [data.coefficients(i) for i in range(20, 23)]
    err = lambda pred: max(np.abs(p - r).max() for p, r in zip(pred.coefficients, ref))  # noqa: E731
    pred = model.predict(test, conserve=False)
    assert err(pred) < 1e-6 < 1e-3 < err(plain.predict(test, conserve=False))
    assert max(np.abs(c).max() for c in pred.correction) < 1e-6
    assert model.last_baseline_summary.done == 3 and model.metadata["delta"]["baseline_labels"]["labelled_now"] == 8


@pytest.mark.parametrize("flags, message", [
    (["--baseline-method", "gfn2"], "xTB methods compute no density labels"),
    (["--baseline-method", METHOD, "--baseline-label", "density_electrons"], "the baseline of a density target is"),
    (["--baseline-method", METHOD, "--baseline", "density_coefficients_b"], "not both"),
])
def test_refusals_are_one_line_before_any_labelling(fitted, capsys, flags, message):
    from psilearn.cli.main import main

    tmp, _, _, _, cfg = fitted
    capsys.readouterr()
    assert main(["fit", str(tmp / "train.xyz"), "--density", "--target", "density_coefficients", *flags, "--config", str(cfg),
                 "-o", str(tmp / "refused.model")]) == 2
    assert message in _error_line(capsys)
    assert not (tmp / "refused.model.baseline.db").exists()
