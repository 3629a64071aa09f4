"""The qeq-nn model kind: QEq with electronegativities from the equivariant network.

Exact total charge (neutral, ions, charged periodic cell), exact E(3) equivariance of dipoles in
float64, invariances of charges, charge-state dependence, training from charges / dipoles / both,
learned hardness, LLPR, save/load in a fresh process, resume, CLI round trip and clear errors.
Synthetic labels come from a known local electronegativity + QEq (``_mols.label_qeq``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from scipy.spatial.transform import Rotation

from nn.conftest import TINY_NET, TINY_TRAIN
from psilearn.data import DataError, load_dataset
from psilearn.models import load
from psilearn.models.nn import NetworkConfig, TrainConfig
from psilearn.models.qeq.linear_maps import QEqMaps
from psilearn.models.qeq.nn_loss import qeq_items, solve_charges
from psilearn.models.qeq.nn_model import QEqNNConfig, QEqNNModel
from psilearn.physics import QEqParams, QEqSystem
from psilearn.targets import Target

from ._mols import label_qeq, molecules, with_charges

torch.set_num_threads(1)

CHARGES = Target("q", per="atom", units="e")
DIPOLE = Target("mu", tensor="i", units="e*A")
F64 = dict(dtype="float64")


def tiny_qeq(target, train: dict | None = None, seed: int = 0, **cfg) -> QEqNNModel:
    return QEqNNModel(target, NetworkConfig(**TINY_NET), TrainConfig(**{**TINY_TRAIN, **F64, **(train or {})}),
                      QEqNNConfig(**cfg), seed=seed)


def _sums(q, frames):
    return np.add.reduceat(q, np.concatenate([[0], np.cumsum([len(a) for a in frames])[:-1]]))


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


@pytest.fixture(scope="module")
def data():
    frames = label_qeq(with_charges(molecules(7, 40)))  # total charges 0, +1, -1 in turn
    return frames[:30], frames[30:]


@pytest.fixture(scope="module")
def from_dipoles(data):
    train, _ = data
    return tiny_qeq(DIPOLE, dict(epochs=30, lr=2e-2)).fit(load_dataset(train, DIPOLE))


@pytest.fixture(scope="module")
def from_charges(data):
    train, _ = data
    return tiny_qeq(CHARGES, dict(epochs=8)).fit(load_dataset(train, CHARGES))


def _periodic_cation(frame: Atoms) -> Atoms:
    a = frame.copy()
    a.center(vacuum=2.5)
    a.pbc = True
    a.info["charge"] = 1
    return a


# ---- exact total charge --------------------------------------------------------------------------
def test_total_charge_exact_for_molecules_ions_and_charged_cells(data, from_dipoles, from_charges):
    _, test = data
    cell = _periodic_cation(test[0])
    frames = test + [cell]
    totals = np.array([a.info["charge"] for a in frames], float)
    assert {0.0, 1.0, -1.0} <= set(totals)
    for model in (from_dipoles, from_charges):
        pred = model.predict(frames)
        np.testing.assert_allclose(_sums(pred.charges, frames), totals, rtol=0, atol=4e-15)
        assert np.all(np.isfinite(pred.charges)) and np.all(pred.charges_std > 0)


def test_torch_solve_matches_numpy_qeq_incl_bordered_and_periodic(data):
    """The training-time torch QEq (fixed-hardness response and bordered solve with hardness)
    equals the numpy solver, for a charged molecule and a charged periodic cell; sum q = Q."""
    _, test = data
    frames = [test[1], _periodic_cation(test[2])]
    hardness = {"H": 2.0, "C": 1.0, "N": 0.5, "O": 3.0}
    params = QEqParams(hardness=hardness)
    total = np.array([a.info["charge"] for a in frames], float)
    maps = QEqMaps.build(frames, total, params)
    species = [np.array([{1: 0, 6: 1, 7: 2, 8: 3}[int(z)] for z in a.numbers]) for a in frames]
    j = torch.tensor([2.0, 1.0, 0.5, 3.0], dtype=torch.float64)
    for s, it in enumerate(qeq_items(maps, species, 1.0, learn_hardness=True)):
        chi = np.random.default_rng(s).normal(size=len(frames[s]))
        ref = QEqSystem.from_atoms(frames[s], params).charges(chi, total[s])
        t_it = it.to("cpu")
        for q in (solve_charges(torch.as_tensor(chi), t_it), solve_charges(torch.as_tensor(chi), t_it, j)):
            np.testing.assert_allclose(q.numpy(), ref, atol=1e-12)
            assert abs(float(q.sum()) - total[s]) < 4e-15


# ---- symmetry ------------------------------------------------------------------------------------
def test_dipoles_exactly_equivariant_and_charges_invariant(data, from_dipoles):
    _, test = data
    rot = Rotation.random(random_state=3).as_matrix()
    for a in test[:4]:
        base = from_dipoles.predict([a], return_cov=True)
        for r in (rot, -rot):  # proper rotation and rotation-reflection
            b = a.copy()
            b.positions = a.positions @ r.T
            p = from_dipoles.predict([b], return_cov=True)
            scale = np.linalg.norm(base.values)
            assert np.linalg.norm(p.values[0] - r @ base.values[0]) < 1e-10 * scale
            np.testing.assert_allclose(p.charges, base.charges, rtol=0, atol=1e-12)
            np.testing.assert_allclose(p.cov[0], r @ base.cov[0] @ r.T, atol=1e-12 * np.abs(base.cov).max())
        # translation and permutation of atoms
        b = a.copy()
        b.positions += np.array([3.0, -1.0, 7.5])
        np.testing.assert_allclose(from_dipoles.predict([b]).charges, base.charges, rtol=0, atol=1e-12)
        perm = np.random.default_rng(0).permutation(len(a))
        c = a[perm]
        c.info.update(a.info)
        pc = from_dipoles.predict([c])
        np.testing.assert_allclose(pc.charges, base.charges[perm], rtol=0, atol=1e-12)
        np.testing.assert_allclose(pc.values, base.values, atol=1e-12)


def test_neutral_dipole_origin_independent(data, from_dipoles):
    _, test = data
    neutral = [a for a in test if a.info["charge"] == 0]
    mus = []
    for origin in ("com", "nuclear_charge", "zero"):
        from_dipoles.config.origin = origin
        mus.append(from_dipoles.predict(neutral).values)
    from_dipoles.config.origin = "com"
    np.testing.assert_allclose(mus[1], mus[0], atol=1e-12)
    np.testing.assert_allclose(mus[2], mus[0], atol=1e-12)


def test_charge_state_changes_prediction(data, from_dipoles):
    _, test = data
    a = test[0].copy()
    a.info["charge"] = 0
    b = a.copy()
    b.info["charge"] = 1
    pa, pb = from_dipoles.predict([a]), from_dipoles.predict([b])
    assert abs(pb.charges.sum() - pa.charges.sum() - 1.0) < 1e-14
    assert np.abs(pa.values - pb.values).max() > 1e-3


def test_global_state_enters_the_electronegativities(data):
    """With ``nn: {global_state: charge}`` chi itself depends on the total charge (without it, only
    the QEq constraint does), and the total charge is still exact."""
    train, test = data
    model = QEqNNModel(CHARGES, NetworkConfig(**{**TINY_NET, "global_state": "charge"}),
                       TrainConfig(**{**TINY_TRAIN, **F64, "epochs": 2}), QEqNNConfig(), seed=0)
    model.fit(load_dataset(train, CHARGES))
    a = test[0].copy()
    a.info["charge"] = 0
    b = a.copy()
    b.info["charge"] = 1
    pa, pb = model.predict([a]), model.predict([b])
    assert np.abs(pa.chi - pb.chi).max() > 1e-6
    assert abs(pb.charges.sum() - 1.0) < 1e-12 and abs(pa.charges.sum()) < 1e-12


# ---- training -------------------------------------------------------------------------------------
def test_training_from_charges_overfits_a_tiny_set(data):
    train, _ = data
    frames = train[:5]
    model = tiny_qeq(CHARGES, dict(epochs=120, batch_size=2, lr=1e-2, val_fraction=0.2, ema_decay=0.0, patience=1000,
                                   schedule="constant", restore_best=False)).fit(load_dataset(frames, CHARGES))
    hist = model.metadata["history"]
    assert hist[-1]["train_loss"] < 0.05 * hist[0]["train_loss"]
    assert model.metadata["members"][0]["history"] == hist  # written as MODEL.loss.csv/png by `psilearn fit`
    from psilearn.data.splits import random_split

    fitted = [frames[i] for i in random_split(5, 0.2, 0)[0]]  # the structures trained on (one is validation)
    q_ref = np.concatenate([a.arrays["q"] for a in fitted])
    q0 = tiny_qeq(CHARGES, dict(epochs=1, lr=1e-12)).fit(load_dataset(frames, CHARGES)).predict(fitted).charges  # baseline only
    assert _rmse(model.predict(fitted).charges, q_ref) < 0.3 * _rmse(q0, q_ref)
    assert model.metadata["trained_on"] == ["charges"]


def test_training_from_dipoles_only_gives_latent_charges(data, from_dipoles):
    _, test = data
    pred = from_dipoles.predict(test)
    mu_ref = np.array([a.info["mu"] for a in test])
    assert from_dipoles.metadata["trained_on"] == ["dipole"]
    assert _rmse(pred.values, mu_ref) < 0.2 * np.std(mu_ref)
    hist = from_dipoles.metadata["history"]
    assert min(h["val_loss"] for h in hist) < 0.3 * hist[0]["val_loss"]  # learned beyond the element baseline
    # the by-products the prediction writer needs, with calibrated LLPR uncertainty
    assert pred.charges.shape == (sum(len(a) for a in test),) and pred.chi.shape == pred.charges.shape
    assert set(pred.extra_arrays) == {"qeq_electronegativity", "qeq_charges", "qeq_charges_std"}
    z = (pred.values - mu_ref) / pred.std
    assert 0.2 < np.sqrt(np.mean(z**2)) < 5
    assert from_dipoles.metadata["calibration"]["rms_z"] == pytest.approx(1.0, abs=0.3)


def test_training_from_both_and_learned_hardness(data):
    train, test = data
    both = tiny_qeq(DIPOLE, dict(epochs=3), charges_key="q", charge_weight=0.5).fit(load_dataset(train, DIPOLE))
    assert both.metadata["trained_on"] == ["charges", "dipole"]
    assert both.predict(test[:2]).charges_name == "q"
    model = tiny_qeq(CHARGES, dict(epochs=4), learn_hardness=True, hardness_init=2.0).fit(load_dataset(train, CHARGES))
    j = model.metadata["hardness_eV"]
    assert set(j) == {"H", "C", "N", "O"} and all(v >= 0 for v in j.values())
    assert any(abs(v - 2.0) > 1e-4 for v in j.values())  # learned
    assert model.params.hardness == j  # prediction uses the learned hardness
    cell = _periodic_cation(test[0])
    pred = model.predict(test + [cell])
    np.testing.assert_allclose(_sums(pred.charges, test + [cell]), [a.info["charge"] for a in test + [cell]], rtol=0, atol=4e-15)


def test_resume_reproduces_uninterrupted_run(data, tmp_path):
    train, test = data
    ds = load_dataset(train[:12], CHARGES)
    opts = dict(epochs=4, checkpoint_every=1)
    full = tiny_qeq(CHARGES, opts)
    full.checkpoint_dir = str(tmp_path / "a")
    full.fit(ds)

    class Stop(Exception):
        pass

    def interrupt(member, epoch):
        if epoch == 2:
            raise Stop

    cut = tiny_qeq(CHARGES, opts)
    cut.checkpoint_dir, cut.on_epoch_end = str(tmp_path / "b"), interrupt
    with pytest.raises(Stop):
        cut.fit(ds)
    resumed = tiny_qeq(CHARGES, opts)
    resumed.set_run_options(checkpoint_dir=str(tmp_path / "b"), resume=True)
    resumed.fit(ds)
    np.testing.assert_array_equal(resumed.predict(test).charges, full.predict(test).charges)


# ---- persistence, calculator ----------------------------------------------------------------------
def test_save_load_in_fresh_process_predicts_identically(data, from_dipoles, tmp_path):
    _, test = data
    path = tmp_path / "qeqnn.model"
    from_dipoles.save(path)
    meta = json.loads((path / "model.json").read_text())
    assert meta["model"] == "qeq-nn" and "member0.safetensors" in meta["integrity"]["arrays_sha256"]
    ase.io.write(tmp_path / "test.xyz", test, format="extxyz")
    code = (f"import numpy as np, ase.io; from psilearn.models import load; m = load({str(path)!r}); "
            f"p = m.predict(ase.io.read({str(tmp_path / 'test.xyz')!r}, ':')); "
            f"np.savez({str(tmp_path / 'out.npz')!r}, mu=p.values, std=p.std, q=p.charges)")
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))  # same BLAS threading as here
    out = np.load(tmp_path / "out.npz")
    frames = ase.io.read(tmp_path / "test.xyz", ":")  # the same structures as the other process read
    ref = load(path).predict(frames)
    # equal to float64 rounding: the QEq solve's BLAS calls may round differently (~1e-16) between
    # processes whose thread pools were set up differently
    for a, b in ((out["mu"], ref.values), (out["q"], ref.charges), (out["std"], ref.std)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ref.values, from_dipoles.predict(frames).values, rtol=0, atol=1e-12)


def test_ase_calculator(data, from_dipoles):
    from psilearn.calculator import PsilearnCalculator

    _, test = data
    a = test[0].copy()
    a.calc = PsilearnCalculator({"dipole": from_dipoles})
    np.testing.assert_allclose(a.get_dipole_moment(), from_dipoles.predict([test[0]]).values[0], atol=1e-12)


# ---- errors ---------------------------------------------------------------------------------------
def test_clear_errors(data, from_charges):
    train, test = data
    bad = test[0].copy()
    bad.info["charge"] = 50
    with pytest.raises(DataError, match="electrons"):
        from_charges.predict([bad])
    odd = test[0].copy()
    odd.info["multiplicity"] = 2 if (odd.numbers.sum() - odd.info["charge"]) % 2 == 0 else 1
    with pytest.raises(DataError, match="multiplicity"):
        from_charges.predict([odd])
    with pytest.raises(DataError, match="never seen"):
        from_charges.predict([Atoms("HF", positions=[[0, 0, 0], [0, 0, 0.92]])])
    with pytest.raises(ValueError, match="ensembles are not implemented"):
        tiny_qeq(CHARGES, dict(uncertainty="ensemble"))
    with pytest.raises(ValueError, match="model: unknown option .n_sparse.; known options: origin.*nn_train"):
        QEqNNConfig.from_dict({"n_sparse": 10})
    with pytest.raises(ValueError, match="units"):
        tiny_qeq(Target("mu", tensor="i"))
    wrong = [a.copy() for a in train[:6]]
    for a in wrong:
        a.info["charge"] = 0  # reference charges of the ions no longer sum to the declared charge
    with pytest.raises(DataError, match="sum to"):
        tiny_qeq(CHARGES).fit(load_dataset(wrong, CHARGES))


# ---- command line ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("qeqnn_cli")
    train, test = data
    ase.io.write(d / "train.xyz", train, format="extxyz")
    ase.io.write(d / "test.xyz", test, format="extxyz")
    net = ", ".join(f"{k}: {v}" for k, v in TINY_NET.items())
    (d / "cfg.yaml").write_text(f"nn: {{{net}}}\nnn_train: {{epochs: 3, batch_size: 4, val_fraction: 0.25, threads: 1, dtype: float64}}\n")
    return d


def test_cli_fit_predict_writes_charges_next_to_dipole(files, capsys):
    from psilearn.cli.main import main

    model = files / "mu.model"
    assert main(["fit", str(files / "train.xyz"), "--target", "mu", "--tensor", "i", "--units", "e*A", "--long-range", "qeq",
                 "--model", "nn", "--config", str(files / "cfg.yaml"), "-o", str(model)]) == 0
    assert "held-out estimate" in capsys.readouterr().out
    assert json.loads((model / "model.json").read_text())["model"] == "qeq-nn"
    out = files / "mu_pred.xyz"
    assert main(["predict", str(model), str(files / "test.xyz"), "-o", str(out)]) == 0
    for a in ase.io.read(out, ":"):
        assert np.shape(a.info["mu"]) == (3,) and np.shape(a.info["mu_std"]) == (3,) and "mu_reference" in a.info
        assert a.arrays["qeq_charges"].shape == (len(a),) and "qeq_charges_std" in a.arrays
        assert "qeq_electronegativity" in a.arrays and "qeq_energy" in a.info
        assert a.arrays["qeq_charges"].sum() == pytest.approx(a.info["charge"], abs=1e-6)  # extxyz keeps 8 decimals
        np.testing.assert_allclose(a.arrays["qeq_charges"] @ (a.positions - a.get_center_of_mass()), a.info["mu"], atol=1e-6)
    assert main(["evaluate", str(model), str(files / "test.xyz")]) == 0


def test_cli_charges_model_and_errors(files, capsys, tmp_path):
    from psilearn.cli.main import main

    model = files / "q.model"
    assert main(["fit", str(files / "train.xyz"), "--target", "q", "--per", "atom", "--units", "e", "--long-range", "qeq",
                 "--model", "nn", "--config", str(files / "cfg.yaml"), "-o", str(model)]) == 0
    out = files / "q_pred.xyz"
    assert main(["predict", str(model), str(files / "test.xyz"), "-o", str(out)]) == 0
    a = ase.io.read(out, "0")
    assert {"q", "q_std", "q_reference"} <= set(a.arrays) and np.shape(a.info["qeq_dipole"]) == (3,)
    capsys.readouterr()
    frames = ase.io.read(files / "train.xyz", ":")
    frames[2].info["multiplicity"] = 2 if (frames[2].numbers.sum() - frames[2].info["charge"]) % 2 == 0 else 1
    ase.io.write(tmp_path / "bad.xyz", frames, format="extxyz")
    rc = main(["fit", str(tmp_path / "bad.xyz"), "--target", "q", "--per", "atom", "--long-range", "qeq", "--model", "nn",
               "--config", str(files / "cfg.yaml"), "-o", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert rc == 2 and "frame 2" in err and "multiplicity" in err
    rc = main(["fit", str(files / "train.xyz"), "--target", "mu", "--tensor", "i", "--long-range", "qeq", "--model", "nn",
               "--config", str(files / "cfg.yaml"), "-o", str(tmp_path / "m2")])
    assert rc == 2 and "units" in capsys.readouterr().err


def test_qeq_nn_refuses_magnetic_moments():
    from psilearn.errors import ConfigError

    with pytest.raises(ConfigError, match="magnetic_moments"):
        QEqNNModel.build(DIPOLE, {"nn": {"magnetic_moments": "collinear"}})
