"""The shipped constants (psilearn/tables/constants.npz) are e3nn's and featomic's own numbers, and
a kernel model predicts without importing torch."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

from psilearn import _tables
from psilearn.features.basis import featomic_to_e3nn, measure_featomic_to_e3nn
from psilearn.features.lsoap import _wigner3j, e3nn_wigner3j
from psilearn.targets.cartesian import cartesian_basis, e3nn_cartesian_basis

TABLE = _tables._table()


def _keys(prefix: str) -> list[str]:
    return sorted({k[len(prefix):].rsplit("/", 1)[0] if prefix == "cartesian/" else k[len(prefix):]
                   for k in TABLE if k.startswith(prefix)})


def test_table_records_the_installed_library_versions():
    versions = json.loads(TABLE["versions"].tobytes().decode())
    assert versions == {p: metadata.version(p) for p in ("e3nn", "featomic")}, (
        "constants.npz was made with other library versions: run scripts/make_constant_tables.py")


@pytest.mark.parametrize("formula", _keys("cartesian/"))
def test_shipped_cartesian_bases_equal_e3nn(formula):
    shipped, fresh = cartesian_basis(formula), e3nn_cartesian_basis(formula)
    # to the last bits, not bit for bit: e3nn's rank >= 3 bases come out 1 ulp apart on different CPUs (seen: 5.6e-17
    # on 4 of 729 entries), while any other convention (order, sign, normalisation) differs by O(0.1)
    np.testing.assert_allclose(shipped.to_irreps, fresh.to_irreps, rtol=0, atol=1e-14)
    np.testing.assert_allclose(shipped.to_cartesian, fresh.to_cartesian, rtol=0, atol=1e-14)
    assert shipped.blocks == fresh.blocks


def test_shipped_wigner3j_equal_e3nn():
    keys = _keys("wigner3j/")
    assert len(keys) > 100
    for key in keys:
        l1, l2, l = (int(x) for x in key.split("/"))
        np.testing.assert_array_equal(_wigner3j(l1, l2, l), e3nn_wigner3j(l1, l2, l), err_msg=key)


def test_shipped_harmonic_rotations_equal_a_fresh_measurement():
    l_max = max(int(k) for k in _keys("featomic_to_e3nn/"))
    for l, (shipped, fresh) in enumerate(zip(featomic_to_e3nn(l_max), measure_featomic_to_e3nn(l_max))):
        np.testing.assert_allclose(shipped, fresh, atol=1e-12, err_msg=f"l={l}")


def test_another_library_version_falls_back_to_computing(monkeypatch):
    monkeypatch.setattr(_tables, "_installed", lambda package: "0.0.0")
    assert _tables.lookup("wigner3j/1/1/2", ("e3nn",)) is None
    assert _tables.lookup("featomic_to_e3nn/1", ("featomic",)) is None


def test_kernel_prediction_does_not_import_torch(tmp_path):
    """A fitted SA-GPR model loads and predicts a dipole and a polarizability in a fresh process
    without importing torch or e3nn (the shipped constants cover them)."""
    from ase.build import molecule

    from psilearn import SAGPR, Target
    from psilearn.data import load_dataset

    rng = np.random.default_rng(0)
    frames = []
    for _ in range(6):
        a = molecule("H2O")
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        a.info["alpha"] = np.eye(3).ravel() * (1 + rng.normal(scale=0.1))
        frames.append(a)
    target = Target("alpha", tensor="ij=ji")
    model = SAGPR.build(target, {"soap": {"max_radial": 3, "max_angular": 2, "cutoff": 3.0}, "model": {"n_sparse": 5}})
    model.fit(load_dataset(frames, target))
    model.save(tmp_path / "m.model")
    code = ("import sys; from ase.build import molecule; from psilearn.models import load; "
            f"p = load({str(tmp_path / 'm.model')!r}).predict(molecule('H2O')); "
            "assert p.values.shape == (1, 9); "
            "print('torch' in sys.modules, 'e3nn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert out == ["False", "False"], out

