"""Model files written by psilearn 0.1.0 (format version 1, before the one-protocol refactor) load
through the registry and predict the numbers they predicted then (tests/fixtures/legacy_models)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import ase.io
import numpy as np
import pytest

from psilearn.models import ModelFileError, load

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_models"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
NETWORKS = {"nn_mu", "qeqnn_mu"}  # float32 weights


def _close(actual, expected, name: str, what: str) -> None:
    expected = np.asarray(expected, dtype=float)
    rtol = 1e-5 if name in NETWORKS else 1e-8
    atol = rtol * max(float(np.abs(expected).max()), 1e-300)
    np.testing.assert_allclose(np.asarray(actual, dtype=float).reshape(expected.shape), expected, rtol=rtol, atol=atol,
                               err_msg=f"{name}: {what}")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_legacy_model_loads_and_predicts_as_before(name):
    e = EXPECTED[name]
    meta = json.loads((FIXTURES / f"{name}.model" / "model.json").read_text())
    assert meta["format_version"] == 1 and meta["psilearn_version"] == "0.1.0"
    model = load(FIXTURES / f"{name}.model")
    assert model.kind == meta["model"]
    assert model.target.to_dict() == meta["target"]
    frames = ase.io.read(FIXTURES / e["input"], ":")
    pred = model.predict(frames)
    _close(pred.values, e["values"], name, "values")
    _close(pred.std, e["std"], name, "std")
    for key, value in e.get("extra_info", {}).items():
        _close(pred.extra_info[key], value, name, key)
    for key, value in e.get("extra_arrays", {}).items():
        _close(pred.extra_arrays[key], value, name, key)


def test_legacy_qeq_charges_sum_to_the_total_charge():
    frames = ase.io.read(FIXTURES / "inputs_qeq_charges.xyz", ":")
    pred = load(FIXTURES / "qeq_charges.model").predict(frames)
    ends = np.cumsum([len(a) for a in frames])
    sums = np.add.reduceat(pred.values[:, 0], np.r_[0, ends[:-1]])
    np.testing.assert_allclose(sums, [a.info.get("charge", 0) for a in frames], atol=1e-10)


def test_future_format_version_is_refused_naming_the_version(tmp_path):
    """A model file from a newer format is refused with a message naming both versions."""
    import hashlib

    path = tmp_path / "future.model"
    shutil.copytree(FIXTURES / "sagpr_alpha.model", path)
    meta = json.loads((path / "model.json").read_text())
    meta["format_version"] = 99
    body = {k: v for k, v in meta.items() if k != "integrity"}
    meta["integrity"]["metadata_sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="format version 99 is not supported"):
        load(path)
