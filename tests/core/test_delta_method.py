"""`psilearn fit --baseline-method`: Δ-learning from a baseline psilearn computes itself (GFN2-xTB here),
cached in a label store at fit and at predict time."""

from __future__ import annotations

import dataclasses
import importlib.resources

import numpy as np
import pytest

from psilearn.data import read_structures
from psilearn.errors import ConfigError
from psilearn.label.campaign import labelled_output, run_campaign
from psilearn.label.registry import make_labeler
from psilearn.label.store import LabelStore
from psilearn.models import load
from psilearn.models.factory import fit_model
from psilearn.models.fidelity import BaselineMethod, DeltaModel, delta_method_kind
from psilearn.targets import Target

pytest.importorskip("tblite")

MOLECULES = str(importlib.resources.files("psilearn") / "demo_data" / "molecules.xyz")
TRAIN, TEST = f"{MOLECULES}@::30", f"{MOLECULES}@15::30"  # 10 + 10 frames, all four molecules
TARGET = ["--target", "dipole_moment", "--tensor", "i", "--units", "e*Bohr"]
CFG = "soap: {cutoff: 4.0, max_radial: 4, max_angular: 3}\nmodel: {n_sparse: 20}\n"


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A --baseline-method gfn2 model (store MODEL.baseline.db) and a --baseline model fitted on the
    same frames pre-labelled with gfn2 (PBE0 dipoles kept by the labeler as dipole_moment_input)."""
    from psilearn.cli.main import main

    tmp = tmp_path_factory.mktemp("bmethod")
    cfg = tmp / "c.yaml"
    cfg.write_text(CFG)
    m_method, m_key = tmp / "method.model", tmp / "key.model"
    assert main(["fit", TRAIN, *TARGET, "--baseline-method", "gfn2", "--config", str(cfg), "-o", str(m_method)]) == 0
    frames = read_structures(TRAIN)
    db = tmp / "pre.db"
    summary = run_campaign(frames, make_labeler("gfn2", ("dipole",)), db, workers=0, progress=False)
    labelled, _ = labelled_output(frames, summary, db)
    assert len(labelled) == len(frames)
    pre = tmp / "pre.xyz"
    import ase.io

    ase.io.write(pre, labelled)
    assert main(["fit", str(pre), "--target", "dipole_moment_input", "--tensor", "i", "--units", "e*Bohr",
                 "--baseline", "dipole_moment", "--config", str(cfg), "-o", str(m_key)]) == 0
    return tmp, m_method, m_key


def test_equals_fitting_on_prelabelled_frames(fitted):
    tmp, m_method, m_key = fitted
    new = read_structures(TEST)
    method_model, key_model = load(m_method), load(m_key)
    db = LabelStore(f"{m_method}.baseline.db")
    assert db.count() == 10  # the training frames, labelled at fit
    p = method_model.predict(new, return_cov=True)  # labels the new frames into the recorded store
    assert db.count() == 20
    labelled = [a.copy() for a in new]
    for a in labelled:
        a.info["dipole_moment"] = make_labeler("gfn2", ("dipole",)).label(a).info["dipole_moment"]
    q = key_model.predict(labelled, return_cov=True)
    for x, y in [(p.values, q.values), (p.std, q.std), (p.cov, q.cov), (p.baseline, q.baseline), (p.correction, q.correction)]:
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-10)


def test_model_records_method_and_hash(fitted):
    _, m_method, _ = fitted
    model = load(m_method)
    bm = model.baseline_method
    assert (bm.method, bm.observable, bm.label, bm.units) == ("gfn2", "dipole", "dipole_moment", "e*Bohr")
    assert bm.method_hash == make_labeler("gfn2", ("dipole",)).method_hash()
    assert model.metadata["delta"]["baseline_method"] == bm.record()
    # the CLI labels TRAIN before the fit (which reuses those labels): the record counts them as this fit's
    assert {k: model.metadata["delta"]["baseline_labels"][k] for k in ("n_structures", "labelled_now", "reused_from_store")} == {
        "n_structures": 10, "labelled_now": 10, "reused_from_store": 0}
    assert model.to_state()[0]["baseline_method"]["method_hash"] == bm.method_hash
    with pytest.raises(ConfigError, match="now hashes to .* refit the model"):
        dataclasses.replace(bm, method_hash="0" * 32).labeler()


def test_cli_predict_labels_and_reuses_the_store(fitted, capsys):
    import ase.io

    from psilearn.cli.main import main

    tmp, m_method, _ = fitted
    db = tmp / "other.db"
    out1, out2 = tmp / "p1.xyz", tmp / "p2.xyz"
    capsys.readouterr()
    assert main(["predict", str(m_method), TEST, "-o", str(out1), "--baseline-db", str(db)]) == 0
    assert "10 labelled now, 0 already in the database" in capsys.readouterr().err
    assert LabelStore(db).count() == 10
    assert main(["predict", str(m_method), TEST, "-o", str(out2), "--baseline-db", str(db)]) == 0
    assert "0 labelled now, 10 already in the database" in capsys.readouterr().err
    assert LabelStore(db).count() == 10
    for a, b, ref in zip(ase.io.read(out1, ":"), ase.io.read(out2, ":"), read_structures(TEST)):
        for key in ("dipole_moment", "dipole_moment_std", "dipole_moment_baseline", "dipole_moment_correction"):
            np.testing.assert_array_equal(a.info[key], b.info[key])
        np.testing.assert_allclose(a.info["dipole_moment"], a.info["dipole_moment_baseline"] + a.info["dipole_moment_correction"],
                                   atol=1e-12)
        np.testing.assert_allclose(a.info["dipole_moment_reference"], ref.info["dipole_moment"])  # the input's PBE0 label kept
        np.testing.assert_allclose(a.info["dipole_moment"], ref.info["dipole_moment"], atol=0.05)


def test_python_api_equals_the_cli(fitted, tmp_path):
    _, m_method, _ = fitted
    from psilearn.data import load_dataset

    target = Target("dipole_moment", tensor="i", units="e*Bohr")
    cfg = {"soap": {"cutoff": 4.0, "max_radial": 4, "max_angular": 3}, "model": {"n_sparse": 20}}
    db = tmp_path / "api.db"
    model = fit_model(delta_method_kind("gfn2", "sagpr", db=db), target, load_dataset(TRAIN, target), cfg, seed=0)
    assert isinstance(model, DeltaModel) and model.last_baseline_summary.done == 10
    new = read_structures(TEST)
    np.testing.assert_allclose(model.predict(new).values, load(m_method).predict(new).values, rtol=0, atol=1e-10)
    with pytest.raises(ConfigError, match="either a baseline label .* or a baseline method"):
        DeltaModel(target, baseline="b", baseline_method="gfn2")


def test_label_and_units_inference():
    def resolve(key, units, per="structure", tensor="i", label=None):
        return BaselineMethod.resolve("GFN2-xTB", Target(key, per=per, tensor=tensor, units=units), label)

    assert resolve("dipole_moment_input", "a.u.").label == "dipole_moment"
    assert resolve("dipole_pbe0", "e a0").method == "gfn2"
    assert resolve("alpha_dft", "Bohr^3", tensor="ij=ji").observable == "polarizability"
    assert resolve("total_energy", "Ha", tensor="").label == "total_energy"
    assert resolve("q", "e", per="atom", tensor="", label="mulliken_charges").observable == "charges"
    with pytest.raises(ConfigError, match="per atom, the target 'q' per structure"):
        resolve("q", "e", tensor="", label="mulliken_charges")
    with pytest.raises(ConfigError, match="gfn2-xTB cannot compute shielding|cannot compute shielding"):
        resolve("shielding", "ppm", per="atom", tensor="ij")


def test_cli_errors(tmp_path, capsys):
    from psilearn.cli.main import main

    m = str(tmp_path / "m")
    cases = [
        (["--target", "dipole_moment", "--tensor", "i", "--units", "e*Bohr", "--baseline-method", "nosuch"],
         "--baseline-method 'nosuch': bad method 'nosuch'"),
        (["--target", "source_index", "--units", "e", "--baseline-method", "gfn2"],
         "the target 'source_index' has no labeler observable"),
        (["--target", "dipole_moment", "--tensor", "i", "--units", "Debye", "--baseline-method", "gfn2"],
         "the target 'dipole_moment' is in 'Debye' but the baseline 'dipole_moment' is in e*Bohr"),
        (["--target", "dipole_moment", "--tensor", "i", "--baseline-method", "gfn2"],
         "declare the units of 'dipole_moment' with --units"),
        (["--target", "dipole_moment", "--tensor", "i", "--units", "e*Bohr", "--baseline-method", "gfn2", "--baseline", "x"],
         "give either --baseline KEY"),
        (["--target", "dipole_moment", "--tensor", "i", "--units", "e*Bohr", "--baseline-method", "gfn2", "--model", "qeq"],
         "--baseline: model kind 'qeq' cannot learn a correction"),
        (["--target", "dipole_moment", "--tensor", "i", "--units", "Bohr^3", "--baseline-method", "gfn2", "--baseline-label", "alpha"],
         "the label 'alpha' is a rank-2 tensor, the target 'dipole_moment' of rank 1"),
    ]
    for args, message in cases:
        assert main(["fit", TRAIN, *args, "-o", m]) == 2
        assert message in _error_line(capsys)
    assert not (tmp_path / "m.baseline.db").exists()  # refused before anything was labelled


def test_evaluate_and_learning_curve_with_a_baseline_method(fitted, tmp_path, capsys):
    import json

    from psilearn.cli.main import main

    _, m_method, _ = fitted
    db = tmp_path / "eval.db"
    capsys.readouterr()
    assert main(["evaluate", str(m_method), TEST, "--baseline-db", str(db), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert LabelStore(db).count() == 10 and m["cartesian"]["rmse"] < 0.05  # errors of the sum, in e*Bohr
    lc_db = tmp_path / "lc.db"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CFG)
    args = ["learning-curve", TRAIN, TEST, *TARGET, "--sizes", "5,10", "--config", str(cfg), "--baseline-method", "gfn2"]
    assert main(args + ["--baseline-db", str(lc_db), "--json"]) == 0
    lc = json.loads(capsys.readouterr().out)
    assert lc["sizes"] == [5, 10] and LabelStore(lc_db).count() == 20  # train and test labelled once each
    assert main(args) == 2
    assert "needs --baseline-db DB" in _error_line(capsys)
    plain = fitted[0] / "key.model"
    assert main(["evaluate", str(plain), TEST, "--baseline-db", str(db)]) == 2
    assert "is not a --baseline-method model" in _error_line(capsys)


def test_a_structure_the_method_cannot_label_is_named_by_file_and_frame(tmp_path):
    """A structure the labeler refuses (two atoms 0.1 A apart): one DataError naming its file and frame (not the
    file a stale 'source' key written by plain ase.io.write names)."""
    from ase.io import write

    from psilearn.data.errors import DataError

    frames = read_structures(f"{MOLECULES}@0:3")
    bad = frames[2].copy()
    bad.positions[1] = bad.positions[0] + [0.1, 0.0, 0.0]
    path = tmp_path / "bad.xyz"
    write(path, frames[:2] + [bad])
    method = BaselineMethod.resolve("gfn2", Target("dipole_moment", tensor="i", units="e*Bohr"))
    inputs = read_structures(str(path))  # ase.io.write kept molecules.xyz's 'source': the reader replaces it
    with pytest.raises(DataError, match=r"^bad\.xyz, frame 2: --baseline-method gfn2.* could not label it"):
        method.stored_labels(inputs, tmp_path / "b.db")
