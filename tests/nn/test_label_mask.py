"""Per-atom labels on only some atoms with the nn kind (`fit --model nn --label-mask KEY`): every atom
is described and predicted, only the labelled atoms enter the loss, the normalisation, the validation
metrics and the calibration; the unlabelled atoms' values in the file are never read."""

from __future__ import annotations

import copy
import json

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list

from core._synth import cartesian_operator, random_rotation, rel_dev, transform_frames
from psilearn.data import load_dataset
from psilearn.data.splits import random_split
from psilearn.evaluation import evaluate
from psilearn.models import load
from psilearn.targets import Target

from .conftest import tiny_model

NMR = Target("nmr", per="atom", tensor="ij", units="ppm")
F64 = dict(dtype="float64", epochs=3, batch_size=3)
_W = {14: 1.0, 8: -0.6}


def _cell(rng: np.random.Generator) -> Atoms:
    """A random SiO2-like periodic cell (4 Si, 8 O, no contact under 1.4 A)."""
    box = 5.2 + 0.3 * rng.random()
    pos: list[np.ndarray] = []
    while len(pos) < 12:
        p = rng.uniform(0, box, 3)
        if all(np.linalg.norm((p - q + box / 2) % box - box / 2) > 1.4 for q in pos):
            pos.append(p)
    return Atoms("Si4O8", positions=pos, cell=np.diag([box, box * 1.05, box * 0.97]), pbc=True)


def _tensor(a: Atoms) -> np.ndarray:
    """A general (non-symmetric) rank-2 tensor per atom from its periodic neighbours, (n, 9)."""
    i, j, d = neighbor_list("ijD", a, 3.5)
    r = np.linalg.norm(d, axis=1)
    fc = 0.5 * (1 + np.cos(np.pi * r / 3.5)) * np.array([_W[z] for z in a.numbers[j]])
    u = np.zeros((len(a), 3))
    v = np.zeros((len(a), 3))
    np.add.at(u, i, fc[:, None] * d)
    np.add.at(v, i, (fc * np.exp(-0.3 * r**2))[:, None] * d)
    return (np.einsum("na,nb->nab", u, v) + np.einsum("na,nb->nab", u, u)).reshape(len(a), 9) * 10 + 300 * np.eye(3).ravel()


def cells(seed: int, n: int, fill: float = np.nan) -> list[Atoms]:
    """Cells whose ``nmr`` tensor is set on (most) Si atoms only; ``fill`` on the others, as in
    ``si_nmr_tensors.extxyz`` (where unlabelled rows hold NaN). Mask ``has_tensor``."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = _cell(rng)
        mask = a.numbers == 14
        mask[rng.integers(0, 4)] = k % 3 != 0  # some Si unlabelled too
        a.arrays["nmr"] = np.where(mask[:, None], _tensor(a), fill)
        a.arrays["has_tensor"] = mask.astype(int)
        out.append(a)
    return out


def _fit(frames, **train):
    torch.set_num_threads(1)
    return tiny_model(NMR, train={**F64, **train}).fit(load_dataset(frames, NMR, label_mask="has_tensor"))


@pytest.fixture(scope="module")
def fitted():
    return _fit(cells(0, 10))


def test_unlabelled_values_are_never_read(tmp_path):
    """NaN, huge numbers or zeros in the unlabelled rows of the file: the same fit, bit for bit."""
    preds = []
    for fill in (np.nan, 1e30, 0.0):
        path = tmp_path / f"fill{fill}.xyz"
        frames = cells(0, 10, fill)
        frames[4].arrays["has_tensor"][:] = 0  # a structure without a labelled atom is left out of the fit
        ase.io.write(path, frames, format="extxyz")
        model = _fit(str(path))
        assert model.metadata["n_train_structures"] + model.metadata["n_validation_structures"] == 9
        preds.append((model.predict(cells(5, 2)).values, model.nets[0].state_dict(), model.metadata["heldout_metrics"]))
    for values, weights, held in preds[1:]:
        np.testing.assert_array_equal(values, preds[0][0])
        for k, w in weights.items():
            assert torch.equal(w, preds[0][1][k]), k
        assert held == preds[0][2]
    assert np.all(np.isfinite(preds[0][0]))


class _ZeroWeightLoss:
    """An independent formulation: every atom is a sample, with its label row (zeros where there is
    none) and loss weight ``weight[id(graph)]`` 1 (labelled) or 0; terms are rescaled so that the
    batch mean is the weighted mean."""

    def __init__(self, inner, weight: dict[int, np.ndarray]):
        self.inner, self.weight = inner, weight

    def rows(self, graphs, y):
        return list(zip(np.split(y, np.cumsum([g.n_atoms for g in graphs])[:-1]), [self.weight[id(g)] for g in graphs]))

    def batch(self, graphs, rows, idx, device, dtype):
        b, y, _ = self.inner.batch(graphs, [r for r, _ in rows], idx, device, dtype)
        return b, y, torch.as_tensor(np.concatenate([rows[i][1] for i in idx]), dtype=dtype)

    def terms(self, net, batch):
        b, y, w = batch
        return self.inner.terms(net, (b, y, None)) * w * (len(w) / w.sum())


def test_masked_loss_equals_zero_weighted_loss():
    """The Trainer on labelled atoms only (graphs with ``labelled``) = every atom with loss weight 0/1."""
    from psilearn.models._torch.graph import build_graphs
    from psilearn.models._torch.network import EquivariantNetwork
    from psilearn.models._torch.train import TargetLoss, Trainer

    torch.set_num_threads(1)
    model = tiny_model(NMR, train=F64)
    ds = load_dataset(cells(1, 8), NMR, label_mask="has_tensor")
    masks = np.split(ds.labelled, np.cumsum([len(a) for a in ds.frames])[:-1])
    full = np.zeros((len(ds.labelled), 9))
    full[ds.labelled] = ds.values
    torch.manual_seed(3)
    net0 = EquivariantNetwork(model.net_config, 2, [(b.l, b.p) for b in NMR.blocks], 4.0).double()
    scale, w = np.full(9, 5.0), np.full(9, 1 / 9)
    results = []
    for masked in (True, False):
        graphs = build_graphs(ds.frames, ds.species, model.net_config.cutoff)
        if masked:
            for g, m in zip(graphs, masks):
                g.labelled = m
            loss, y = TargetLoss("atom", "sum", scale, w), NMR.to_irreps(ds.values)
            cut = int(sum(m.sum() for m in masks[:6]))
        else:
            loss = _ZeroWeightLoss(TargetLoss("atom", "sum", scale, w), {id(g): m.astype(float) for g, m in zip(graphs, masks)})
            y, cut = NMR.to_irreps(full), sum(map(len, ds.frames[:6]))
        net = copy.deepcopy(net0)
        summary = Trainer(net, model.train_config, "atom", "sum", scale, w, loss=loss).fit(graphs[:6], y[:cut], graphs[6:], y[cut:])
        results.append((summary, {k: v.clone() for k, v in net.state_dict().items()}))
    (s1, w1), (s2, w2) = results
    assert s1["history"][-1]["train_loss"] != s1["history"][0]["train_loss"]  # it trained
    for h1, h2 in zip(s1["history"], s2["history"]):
        assert h1["val_loss"] == pytest.approx(h2["val_loss"], rel=1e-9)
        assert h1["train_loss"] == pytest.approx(h2["train_loss"], rel=1e-9)
    for k in w1:
        np.testing.assert_allclose(w1[k].numpy(), w2[k].numpy(), rtol=1e-8, atol=1e-12, err_msg=k)


def test_normalisation_and_metrics_use_the_labelled_atoms_only(fitted, tmp_path):
    model = fitted
    ds = load_dataset(cells(0, 10), NMR, label_mask="has_tensor")
    train_idx, val_idx = random_split(len(ds), model.train_config.val_fraction, model.seed)
    iso = NMR.to_irreps(ds.subset(train_idx).values)[:, 0]  # the 0e column: one element labelled, its mean
    shift = model.nets[0].shift.double().numpy()
    si, o = model.species.index(14), model.species.index(8)
    assert shift[si, 0] == pytest.approx(iso.mean(), rel=1e-6) and shift[o, 0] == 0.0
    va = ds.subset(val_idx)
    assert model.metadata["label_mask"] == "has_tensor" and model.metadata["n_train_samples"] == len(ds.subset(train_idx).values)
    pred = model.predict(va.frames)
    assert pred.values.shape == (sum(map(len, va.frames)), 9) and np.all(np.isfinite(pred.values))  # every atom
    rmse = np.sqrt(np.mean((pred.values[va.labelled] - va.values) ** 2))
    assert model.metadata["heldout_metrics"]["cartesian"]["rmse"] == pytest.approx(rmse, rel=1e-6)
    # LLPR: covariance of the labelled training atoms' features, scale calibrated on the labelled validation atoms
    from psilearn.models._torch import uncertainty as unc

    tr = ds.subset(train_idx)
    feats = unc.last_layer_features(model.nets[0], model._graphs(tr.frames), "atom", "sum", sorted(model.llpr.inv), 32, "cpu", torch.float64)
    ref = unc.LLPR.fit({k: v[tr.labelled] for k, v in feats.items()}, model.train_config.llpr_regularization)
    for k, inv in ref.inv.items():
        np.testing.assert_allclose(model.llpr.inv[k], inv, rtol=1e-8, err_msg=str(k))
    z2 = (pred.irreps[va.labelled] - NMR.to_irreps(va.values)) ** 2 / pred.irreps_std[va.labelled] ** 2
    assert all(np.mean(z2[:, b.cols]) == pytest.approx(1.0, rel=1e-6) for b in NMR.blocks)
    assert np.all(np.isfinite(pred.std))
    model.save(tmp_path / "m")
    again = load(tmp_path / "m")
    assert again.metadata["label_mask"] == "has_tensor"
    np.testing.assert_array_equal(again.predict(va.frames).values, pred.values)
    path = tmp_path / "test.xyz"
    ase.io.write(path, cells(7, 3), format="extxyz")
    report = evaluate(again, str(path))  # the model's mask read from the test file
    assert report["n_samples"] == sum(int(a.arrays["has_tensor"].sum()) for a in cells(7, 3)) and list(report["per_element"]) == ["Si"]


def test_exact_o3_equivariance_with_a_mask(fitted):
    test = cells(9, 2)
    ref = fitted.predict(test)
    assert np.abs(ref.values).max() > 1e-6
    rng = np.random.default_rng(2)
    for q in (random_rotation(rng), np.diag([1.0, -1.0, 1.0]), -random_rotation(rng)):
        out = fitted.predict(transform_frames(test, q))
        m = cartesian_operator(q, 2)
        assert rel_dev(out.values, ref.values @ m.T) < 1e-10
        assert rel_dev(out.std, ref.std) < 1e-10


def _write(tmp_path, frames, name="d.xyz"):
    ase.io.write(tmp_path / name, frames, format="extxyz")
    return str(tmp_path / name)


NN_YAML = ("nn: {cutoff: 3.5, channels: 4, layers: 2, correlation: 2, lmax: 2, n_basis: 6, radial_hidden: 16}\n"
           "nn_train: {epochs: 2, batch_size: 3, val_fraction: 0.25, threads: 1, dtype: float64}\n")


def test_cli_fit_and_evaluate(tmp_path, capsys):
    from psilearn.cli.main import main

    (tmp_path / "nn.yaml").write_text(NN_YAML)
    train, test = _write(tmp_path, cells(0, 8)), _write(tmp_path, cells(3, 3), "t.xyz")
    out = tmp_path / "si.model"
    assert main(["fit", train, "--target", "nmr", "--tensor", "ij", "--per", "atom", "--label-mask", "has_tensor", "--model", "nn",
                 "--config", str(tmp_path / "nn.yaml"), "-o", str(out)]) == 0
    assert json.loads((out / "model.json").read_text())["training"]["label_mask"] == "has_tensor"
    capsys.readouterr()
    assert main(["evaluate", str(out), test, "--json"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["n_samples"] == sum(int(a.arrays["has_tensor"].sum()) for a in cells(3, 3))
    assert np.isfinite(report["cartesian"]["rmse"])


@pytest.mark.parametrize("case", ["per-structure target", "no labelled atom"])
def test_one_line_errors(tmp_path, capsys, case):
    from psilearn.cli.main import main

    frames = cells(0, 4)
    args = ["--target", "nmr", "--tensor", "ij", "--per", "atom"]
    if case == "per-structure target":
        for a in frames:
            a.info["e"] = 1.0
        args, want = ["--target", "e"], "applies to per-atom targets only"
    else:
        for a in frames:
            a.arrays["has_tensor"][:] = 0
        want = "no atom is labelled"
    rc = main(["fit", _write(tmp_path, frames), *args, "--label-mask", "has_tensor", "--model", "nn", "-o", str(tmp_path / "m")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and want in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "m").exists()


def test_ensemble_calibrated_on_the_labelled_atoms():
    model = _fit(cells(2, 8), uncertainty="ensemble", ensemble_size=2, epochs=1)
    ds = load_dataset(cells(2, 8), NMR, label_mask="has_tensor")
    _, val_idx = random_split(len(ds), model.train_config.val_fraction, model.seed)
    va = ds.subset(val_idx)
    pred = model.predict(va.frames)
    # the calibration makes the mean squared z-score 1 per block on the validation (labelled) atoms
    z2 = (pred.irreps[va.labelled] - NMR.to_irreps(va.values)) ** 2 / pred.irreps_std[va.labelled] ** 2
    for b in NMR.blocks:
        assert np.mean(z2[:, b.cols]) == pytest.approx(1.0, rel=1e-6), b.name
    assert model.metadata["calibration"] is not None and len(model.nets) == 2
