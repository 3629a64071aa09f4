"""Δ-learning of Hamiltonians (fit --hamiltonian --baseline KEY): a zero baseline gives the plain model,
a known correction is learned, equivariance of the sum's blocks, file round trip, orbital energies of
the sum with the exact S, CLI and one-line refusals. Fixture: 16 HF/STO-3G waters (conftest.py)."""

import ase.io
import numpy as np
import pytest
import scipy.linalg
import torch
import yaml
from e3nn import o3
from scipy.spatial.transform import Rotation

from psilearn.data import DataError, load_hamiltonian_dataset
from psilearn.errors import ConfigError
from psilearn.models import load
from psilearn.models.factory import fit_model
from psilearn.models.fidelity import delta_kind

from .conftest import TINY

BASE = "hamiltonian_base"
EPOCHS = 15


def _config(epochs: int, **extra) -> dict:
    config = {k: dict(v) for k, v in TINY.items()}
    config["nn_train"]["epochs"] = epochs
    for section, opts in extra.items():
        config.setdefault(section, {}).update(opts)
    return config


def _with_baseline(frames, scale: float, overlap: float = 0.0) -> list:
    """Copies with a baseline scale x F - overlap x S (Hartree): the correction is (1 - scale) F + overlap S."""
    out = []
    for a in frames:
        b = a.copy()
        b.info[BASE] = scale * np.asarray(a.info["hamiltonian"]) - overlap * np.asarray(a.info["overlap"])
        out.append(b)
    return out


def _rotate(target, atoms, flat, rot) -> np.ndarray:
    """F of the rotated structure: every coupled irrep of every pair block rotated by e3nn's D(R)."""
    irreps = target.to_irreps(atoms, flat)
    syms = atoms.get_chemical_symbols()
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for (i, j), v in irreps.items():
            for cb in target.pair_layout(syms[i], syms[j], i == j):
                v[cb.cols] = o3.Irrep(cb.L, cb.p).D_from_matrix(torch.as_tensor(rot)).numpy() @ v[cb.cols]
    finally:
        torch.set_default_dtype(prev)
    return target.from_irreps(atoms, irreps)


@pytest.fixture(scope="module")
def perturbed(sto3g_waters):
    frames = _with_baseline(sto3g_waters, 0.9, 0.05)
    ds = load_hamiltonian_dataset(frames[:12])
    return frames, fit_model(delta_kind(BASE, "hamiltonian"), ds.target, ds, _config(EPOCHS), seed=0), ds


def test_zero_baseline_equals_the_plain_model(sto3g_waters):
    frames = _with_baseline(sto3g_waters[:10], 0.0)
    ds = load_hamiltonian_dataset(frames[:8])
    delta = fit_model(delta_kind(BASE, "hamiltonian"), ds.target, ds, _config(3), seed=0)
    plain = fit_model("hamiltonian", ds.target, ds, _config(3), seed=0)
    for x, y in zip(delta.predict(frames[8:]).matrices, plain.predict(frames[8:]).matrices):
        assert np.abs(x - y).max() < 1e-10
    for k, v in plain.metadata["heldout_metrics"].items():
        if isinstance(v, float):
            assert delta.metadata["heldout_metrics"][k] == pytest.approx(v, rel=1e-8, abs=1e-12)


def test_a_known_correction_is_learned(perturbed, sto3g_waters):
    """Baseline 0.9 F - 0.05 S: the sum is far closer to F than the same network trained on F alone."""
    frames, delta, ds = perturbed
    plain = fit_model("hamiltonian", ds.target, load_hamiltonian_dataset(sto3g_waters[:12]), _config(EPOCHS), seed=0)
    test = frames[12:]
    ref = [np.asarray(a.info["hamiltonian"]).reshape(7, 7) for a in test]
    err = lambda pred: np.mean([np.abs(p - r).mean() for p, r in zip(pred.matrices, ref)])  # noqa: E731
    pd = delta.predict(test)
    assert err(pd) < 0.3 * err(plain.predict(test))
    base_err = np.mean([np.abs(b - r).mean() for b, r in zip(pd.baseline, ref)])
    assert err(pd) < 0.1 * base_err  # the correction is learned, not just the baseline copied
    for p, b, c in zip(pd.matrices, pd.baseline, pd.correction):
        assert np.array_equal(p, b + c) and np.array_equal(p, p.T)
    assert "of the sum" in delta.metadata["heldout_metrics"]["method"]


@pytest.mark.parametrize("improper", [False, True])
def test_equivariance_of_the_sum(perturbed, improper):
    frames, delta, ds = perturbed
    a = frames[13]
    rot = Rotation.random(random_state=3).as_matrix() * (-1 if improper else 1)
    b = a.copy()
    b.positions = a.positions @ rot.T + np.array([1.0, -2.0, 0.5])
    b.info[BASE] = _rotate(ds.target, a, a.info[BASE], rot).ravel()
    fa, fb = delta.predict([a, b]).matrices
    assert np.abs(fb - _rotate(ds.target, a, fa, rot)).max() < 1e-8
    assert np.abs(fb - fa).max() > 1e-2


def test_rotation_helper_matches_a_new_scf(sto3g_waters):
    """The rotated baseline of the equivariance test is what the labeler gives for the rotated water."""
    from psilearn.label import make_labeler

    a = sto3g_waters[0]
    t = load_hamiltonian_dataset([a]).target
    rot = Rotation.random(random_state=3).as_matrix()
    b = a.copy()
    b.positions = a.positions @ rot.T
    relabelled = make_labeler("hf/sto-3g", "hamiltonian", conv_tol=1e-10).label(b)
    assert np.abs(_rotate(t, a, a.info["hamiltonian"], rot).ravel() - relabelled.info["hamiltonian"]).max() < 1e-6


def test_save_load_identical(perturbed, tmp_path):
    frames, delta, _ = perturbed
    delta.save(tmp_path / "h.model")
    back = load(tmp_path / "h.model")
    assert back.kind == "delta" and back.inner.kind == "hamiltonian"
    for x, y in zip(delta.predict(frames[12:]).matrices, back.predict(frames[12:]).matrices):
        assert np.array_equal(x, y)


def test_refusals_are_one_line(perturbed, sto3g_waters):
    frames, delta, ds = perturbed
    a = frames[12].copy()
    a.info[f"{BASE}_basis"] = "def2-svp"
    with pytest.raises(DataError, match="basis 'def2-svp'") as e:
        delta.predict([a])
    assert BASE in str(e.value) and "\n" not in str(e.value)
    b = frames[12].copy()
    del b.info[BASE]
    with pytest.raises(DataError, match=f"no baseline label '{BASE}'"):
        delta.predict([b])
    c = frames[12].copy()
    c.info[BASE] = np.zeros(50)
    with pytest.raises(DataError, match="same AO basis"):
        delta.predict([c])
    with pytest.raises(ConfigError, match="eigenvalue_weight"):
        fit_model(delta_kind(BASE, "hamiltonian"), ds.target, ds, _config(1, hamiltonian={"eigenvalue_weight": 1.0}))


def test_cli_fit_predict_writes_sum_baseline_correction(perturbed, tmp_path, capsys):
    from psilearn.cli.main import main as cli_main

    frames, _, _ = perturbed
    train, test, cfg = tmp_path / "train.xyz", tmp_path / "test.xyz", tmp_path / "h.yaml"
    ase.io.write(train, frames[:12])
    ase.io.write(test, frames[12:])
    cfg.write_text(yaml.safe_dump(_config(5)))
    model, out = tmp_path / "h.model", tmp_path / "pred.xyz"
    assert cli_main(["fit", str(train), "--hamiltonian", "--model", "nn", "--target", "hamiltonian", "--baseline", BASE, "--config", str(cfg),
                     "-o", str(model)]) == 0
    assert "held-out estimate (validation split" in capsys.readouterr().out
    assert cli_main(["predict", str(model), str(test), "-o", str(out)]) == 0
    for a, ref in zip(ase.io.read(out, ":"), frames[12:]):
        f, b, c = (np.asarray(a.info[k]).reshape(7, 7) for k in ("hamiltonian", "hamiltonian_baseline", "hamiltonian_correction"))
        assert np.array_equal(b.ravel(), ref.info[BASE]) and np.allclose(f, b + c, atol=1e-12)
        s = ref.info["overlap"].reshape(7, 7)
        assert np.allclose(a.info["orbital_energies"], scipy.linalg.eigh(f, s, eigvals_only=True), atol=1e-10)
    capsys.readouterr()
    other = frames[12].copy()
    other.info["hamiltonian_basis_base"] = "def2-svp"
    ase.io.write(tmp_path / "other.xyz", other)
    assert cli_main(["predict", str(model), str(tmp_path / "other.xyz"), "-o", str(tmp_path / "o.xyz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "frame 0" in err and "'def2-svp'" in err and BASE in err
