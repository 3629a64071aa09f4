"""`psilearn fit --hamiltonian --baseline-method XC/BASIS`: psilearn's labeler computes the baseline F (PBE/STO-3G
under HF/STO-3G labels here) at fit and at predict time through the label store; equal to the same fit on frames
labelled beforehand (--baseline KEY); the store is reused; the method and its hash are recorded and checked; a
method in another AO basis, xTB and conflicting flags are one-line refusals before any labelling."""

import dataclasses
import json

import ase.io
import numpy as np
import pytest
import yaml

from psilearn.errors import ConfigError
from psilearn.label import make_labeler
from psilearn.label.store import LabelStore
from psilearn.models import load

from .conftest import TINY

METHOD = "pbe/sto-3g"


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def fitted(sto3g_waters, tmp_path_factory):
    """A --baseline-method model (store MODEL.baseline.db) and a --baseline model of the same frames pre-labelled with PBE."""
    from psilearn.cli.main import main

    tmp = tmp_path_factory.mktemp("hbmethod")
    config = {k: dict(v) for k, v in TINY.items()}
    config["nn_train"]["epochs"] = 4
    cfg = tmp / "h.yaml"
    cfg.write_text(yaml.safe_dump(config))
    train, test = tmp / "train.xyz", tmp / "test.xyz"
    ase.io.write(train, sto3g_waters[:8])
    ase.io.write(test, sto3g_waters[12:15])
    m_method, m_key = tmp / "method.model", tmp / "key.model"
    assert main(["fit", str(train), "--hamiltonian", "--model", "nn", "--target", "hamiltonian", "--baseline-method", METHOD.upper(),
                 "--config", str(cfg), "-o", str(m_method)]) == 0
    lab = make_labeler(METHOD, "hamiltonian")
    pre = []
    for a in sto3g_waters[:8] + sto3g_waters[12:15]:
        b = a.copy()
        b.info["hamiltonian_pbe"] = lab.label(a).info["hamiltonian"]
        pre.append(b)
    ase.io.write(tmp / "pre.xyz", pre[:8])
    assert main(["fit", str(tmp / "pre.xyz"), "--hamiltonian", "--model", "nn", "--target", "hamiltonian", "--baseline", "hamiltonian_pbe",
                 "--config", str(cfg), "-o", str(m_key)]) == 0
    return tmp, m_method, m_key, pre[8:], cfg


def _count(db) -> int:
    return LabelStore(db).count(label_status="ok")


def test_predict_labels_its_input_sums_and_reuses_the_store(fitted, sto3g_waters, capsys):
    from psilearn.cli.main import main

    tmp, m_method, m_key, pre_test, _ = fitted
    db = f"{m_method}.baseline.db"
    assert _count(db) == 8  # the training structures, labelled once (the fit reused the CLI's labels)
    out = tmp / "p.xyz"
    capsys.readouterr()
    assert main(["predict", str(m_method), str(tmp / "test.xyz"), "-o", str(out)]) == 0
    assert "3 labelled now, 0 already in the database" in capsys.readouterr().err
    assert _count(db) == 11
    key_pred = load(m_key).predict(pre_test)
    for a, ref, pre, k in zip(ase.io.read(out, ":"), sto3g_waters[12:15], pre_test, key_pred.matrices):
        f, b, c = (np.asarray(a.info[x]).reshape(7, 7) for x in ("hamiltonian", "hamiltonian_baseline", "hamiltonian_correction"))
        np.testing.assert_allclose(f, b + c, atol=1e-12)
        np.testing.assert_allclose(b.ravel(), pre.info["hamiltonian_pbe"], atol=1e-7)  # the PBE F, computed at predict time
        assert np.abs(b.ravel() - ref.info["hamiltonian"]).max() > 1e-2  # ... not the HF label of the input
        np.testing.assert_allclose(f, k, atol=1e-8)  # = the model fitted on pre-labelled frames
    capsys.readouterr()
    assert main(["predict", str(m_method), str(tmp / "train.xyz@:2"), "-o", str(tmp / "p2.xyz")]) == 0
    assert "0 labelled now, 2 already in the database" in capsys.readouterr().err
    assert _count(db) == 11


def test_model_records_the_method_and_refuses_another_hash(fitted, sto3g_waters):
    tmp, m_method, _, _, _ = fitted
    meta = json.loads((m_method / "model.json").read_text())
    assert meta["baseline_method"]["method"] == METHOD
    assert meta["baseline_method"]["method_hash"] == make_labeler(METHOD, "hamiltonian").method_hash()
    labels = meta["training"]["delta"]["baseline_labels"]
    assert (labels["n_structures"], labels["labelled_now"], labels["reused_from_store"]) == (8, 8, 0)
    model = load(m_method)
    assert model.baseline_db == str(f"{m_method}.baseline.db")
    model.baseline_method = dataclasses.replace(model.baseline_method, method_hash="0" * 32)  # as after a PySCF upgrade
    model.baseline_db = tmp / "fresh.db"
    with pytest.raises(ConfigError, match="now hashes to .* refit the model"):
        model.predict(sto3g_waters[12:13])
    assert not (tmp / "fresh.db").exists()


@pytest.mark.parametrize("flags, message", [
    (["--baseline-method", "hf/def2-svp"], "in the AO basis 'def2-svp', the target 'hamiltonian' in 'sto-3g'"),
    (["--baseline-method", "gfn2"], "xTB methods compute no hamiltonian labels"),
    (["--baseline-method", METHOD, "--baseline", "hamiltonian_pbe"], "not both"),
    (["--baseline-method", METHOD, "--baseline-label", "alpha"], "the baseline of a hamiltonian target is"),
    (["--baseline-db", "x.db"], "go with --baseline-method"),
])
def test_refusals_are_one_line_before_any_labelling(fitted, capsys, flags, message):
    from psilearn.cli.main import main

    tmp, _, _, _, cfg = fitted
    model = tmp / "refused.model"
    capsys.readouterr()
    assert main(["fit", str(tmp / "train.xyz"), "--hamiltonian", "--model", "nn", "--target", "hamiltonian", *flags, "--config", str(cfg),
                 "-o", str(model)]) == 2
    assert message in _error_line(capsys)
    assert not (tmp / "refused.model.baseline.db").exists()


def test_eigenvalue_weight_is_refused_before_labelling(fitted, capsys):
    from psilearn.cli.main import main

    tmp, _, _, _, cfg = fitted
    other = tmp / "eig.yaml"
    config = yaml.safe_load(cfg.read_text())
    config["hamiltonian"]["eigenvalue_weight"] = 1.0
    other.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    assert main(["fit", str(tmp / "train.xyz"), "--hamiltonian", "--model", "nn", "--target", "hamiltonian", "--baseline-method", METHOD,
                 "--config", str(other), "-o", str(tmp / "eig.model")]) == 2
    assert "eigenvalue_weight" in _error_line(capsys)
    assert not (tmp / "eig.model.baseline.db").exists()


def test_default_kernel_kind_takes_a_baseline_method(fitted, tmp_path, capsys):
    """Without --model (the kernel kind hamiltonian-sagpr) --baseline-method fits (it failed with a one-word error,
    the kind's name) and equals the --baseline KEY fit on the frames pre-labelled with the same method."""
    from psilearn.cli.main import main

    tmp, _, _, test, _ = fitted
    m_method, m_key = tmp_path / "method.model", tmp_path / "key.model"
    assert main(["fit", str(tmp / "train.xyz"), "--hamiltonian", "--target", "hamiltonian", "--baseline-method", METHOD,
                 "-o", str(m_method)]) == 0
    assert main(["fit", str(tmp / "pre.xyz"), "--hamiltonian", "--target", "hamiltonian", "--baseline", "hamiltonian_pbe",
                 "-o", str(m_key)]) == 0
    a, b = load(m_method), load(m_key)
    assert a.inner_kind == "hamiltonian-sagpr"
    a.baseline_db = tmp_path / "predict.db"
    for fa, fb in zip(a.predict(test).matrices, b.predict(test).matrices):
        np.testing.assert_allclose(fa, fb, rtol=0, atol=1e-7)  # Hartree; the pre-labelled F went through a text file
