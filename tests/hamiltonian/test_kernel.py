"""The hamiltonian-sagpr kind: pair features against an independent route, exact symmetry (rotations,
reflections, translations, permutations, hermiticity), learning, file round trip, CLI and one-line errors."""

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from psilearn.cli.main import main as cli_main
from psilearn.data import DataError, load_hamiltonian_dataset
from psilearn.features.lsoap import LambdaSoap, SoapConfig
from psilearn.features.pair_soap import PARTNER, PairSoap, block_centres
from psilearn.models import load
from psilearn.models.registry import model_class

from .conftest import distorted_waters
from .test_model import check_permutation_and_hermiticity, check_rotation_and_reflection

SMALL = {"soap": {"cutoff": 3.5, "max_radial": 4, "max_angular": 4}, "model": {"holdout": 0.25}}


def test_pair_features_equal_the_partner_copy():
    """Pair (i -> j) features from one expansion + featomic's by-pair terms equal lambda-SOAP of atom i
    in a copy of the structure whose atom j has the partner type (two cutoffs, radial scaling)."""
    a = molecule("CH3OH")
    a.rattle(0.05, seed=1)
    cfg = SoapConfig(cutoff=[2.0, 3.5], max_radial=3, max_angular=3, radial_scaling={"exponent": 2, "rate": 1, "scale": 1.5})
    soap = PairSoap(cfg, [1, 6, 8])
    centres = block_centres([a], 3.5)
    coef = soap.coefficients([a], centres)
    channels = [(0, 1), (1, 1), (1, -1), (2, 1), (3, -1), (4, 1)]
    worst, n_pairs = 0.0, 0
    for key, rows in centres.items():
        blocks = soap.blocks(coef[key], channels)
        for r, (_, i, j) in enumerate(rows):
            b = a.copy()
            if i != j:
                numbers = b.numbers.copy()
                numbers[j] = PARTNER
                b.numbers = numbers
                n_pairs += 1
            ref = LambdaSoap(cfg, [PARTNER, 1, 6, 8]).compute([b], channels)
            z = ref.numbers[i]
            k = int(np.searchsorted(ref.index[z], i))
            worst = max(worst, max(np.abs(ref.blocks[ch][z][k] - blocks[ch][r]).max() for ch in channels))
    assert n_pairs > 20 and worst < 1e-12
    # the partner matters: (i -> j) and (j -> i) of two H atoms differ
    hh = centres[(1, 1, False)]
    x = soap.blocks(coef[(1, 1, False)], [(1, 1)])[(1, 1)]
    i, j = hh[0, 1], hh[0, 2]
    back = int(np.flatnonzero((hh[:, 1] == j) & (hh[:, 2] == i))[0])
    assert np.abs(x[0] - x[back]).max() > 1e-3


@pytest.fixture(scope="module")
def svp_waters(labeler):
    return [labeler.label(a) for a in distorted_waters(16, seed=3)]


@pytest.fixture(scope="module")
def trained(svp_waters):
    ds = load_hamiltonian_dataset(svp_waters[:12])
    return model_class("hamiltonian-sagpr").build(ds.target, SMALL).fit(ds), ds


@pytest.mark.parametrize("improper", [False, True])
def test_rotation_and_reflection_equivariance(trained, svp_waters, improper):
    model, ds = trained
    check_rotation_and_reflection(model, ds.target, svp_waters[13], 5, improper)  # def2-SVP: every L <= 4, both parities


def test_permutation_and_hermiticity(trained, svp_waters):
    model, ds = trained
    check_permutation_and_hermiticity(model, ds.target, svp_waters[14], [2, 0, 1])


def test_learns_and_stores_the_heldout_estimate(trained, svp_waters):
    model, ds = trained
    test = load_hamiltonian_dataset(svp_waters[12:])
    pred = model.predict(test.frames).matrices
    mean = np.mean([ds.matrix(i) for i in range(len(ds))], axis=0)  # the same atom order in every water
    err = np.mean([np.abs(p - test.matrix(k)).mean() for k, p in enumerate(pred)])
    ref = np.mean([np.abs(mean - test.matrix(k)).mean() for k in range(len(test))])
    assert err < 0.1 * ref
    held = model.metadata["heldout_metrics"]
    assert 0 < held["h_mae"] < 0.2 * ref and held["coefficient_cosine"] > 0.99
    assert model.metadata["cutoff_truncation"]["h_mae"] == 0.0  # water fits inside the cutoff
    assert set(model.metadata["block_types"]) == {"H-H-onsite", "O-O-onsite", "H-H-pair", "H-O-pair", "O-H-pair"}


def test_file_round_trip(trained, svp_waters, tmp_path):
    model, _ = trained
    model.save(tmp_path / "h.model")
    back = load(tmp_path / "h.model")
    a, b = model.predict(svp_waters[12:]).matrices, back.predict(svp_waters[12:]).matrices
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_bad_inputs(trained, labeler):
    model, _ = trained
    h2o2 = Atoms("HOOH", positions=[[0.9, 0.6, 0.2], [0, 0.7, 0], [0, -0.7, 0], [-0.9, -0.6, 0.2]])
    with pytest.raises(DataError, match="no O-O-pair block in training"):
        model.predict([h2o2])
    with pytest.raises(DataError, match="no element 6|6|C"):
        model.predict([molecule("CH4")])
    periodic = distorted_waters(1)[0]
    periodic.cell, periodic.pbc = np.eye(3) * 8, True
    with pytest.raises(DataError, match="molecules only"):
        model.predict([periodic])


def test_cli_default_is_the_kernel_kind(tmp_path, capsys, svp_waters):
    train, test = tmp_path / "train.xyz", tmp_path / "test.xyz"
    ase.io.write(train, svp_waters[:10])
    ase.io.write(test, svp_waters[12:14])
    cfg = tmp_path / "k.yaml"
    cfg.write_text("soap: {cutoff: 3.5, max_radial: 4, max_angular: 4}\n")
    out_model, out = tmp_path / "k.model", tmp_path / "pred.xyz"
    assert cli_main(["fit", str(train), "--hamiltonian", "--target", "hamiltonian", "--config", str(cfg), "-o", str(out_model)]) == 0
    text = capsys.readouterr().out
    assert "H entry MAE" in text and "O-H-pair" in text
    assert load(out_model).kind == "hamiltonian-sagpr"
    assert cli_main(["predict", str(out_model), str(test), "-o", str(out)]) == 0
    frames = ase.io.read(out, ":")
    assert len(frames) == 2 and frames[0].info["hamiltonian"].size == 24 * 24 and "gap" in frames[0].info


def test_delta_with_the_kernel_kind(tmp_path, capsys, svp_waters):
    """--baseline KEY with the kernel kind: with the labels themselves as the baseline the learned
    correction is ~0, the sum is the baseline, and the held-out record is that of the sum."""
    frames = []
    for a in svp_waters[:14]:
        b = a.copy()
        b.info["hamiltonian_base"] = a.info["hamiltonian"].copy()
        frames.append(b)
    train, test = tmp_path / "train.xyz", tmp_path / "test.xyz"
    ase.io.write(train, frames[:10])
    ase.io.write(test, frames[10:])
    cfg = tmp_path / "k.yaml"
    cfg.write_text("soap: {cutoff: 3.5, max_radial: 4, max_angular: 4}\nmodel: {holdout: 0.3}\n")
    out_model, out = tmp_path / "d.model", tmp_path / "pred.xyz"
    assert cli_main(["fit", str(train), "--hamiltonian", "--target", "hamiltonian", "--baseline", "hamiltonian_base",
                     "--config", str(cfg), "-o", str(out_model)]) == 0
    model = load(out_model)
    assert model.inner.kind == "hamiltonian-sagpr"
    held = model.metadata["heldout_metrics"]
    assert "of the sum" in held["method"] and held["h_mae"] < 1e-9
    assert cli_main(["predict", str(out_model), str(test), "-o", str(out)]) == 0
    for a, ref in zip(ase.io.read(out, ":"), frames[10:]):
        assert np.abs(a.info["hamiltonian"] - ref.info["hamiltonian"]).max() < 1e-9
        assert np.abs(a.info["hamiltonian_correction"]).max() < 1e-9


def test_centres_outside_the_training_range_are_counted(tmp_path, capsys, trained, svp_waters):
    """Training waters are inside the training range; a water with one O-H bond stretched far beyond
    the training geometries is not, and psilearn predict says so (and names pairs beyond the cutoff)."""
    model, _ = trained
    assert model.predict(svp_waters[:4]).n_centres_outside == [0, 0, 0, 0]
    odd = svp_waters[13].copy()
    odd.positions[1] = odd.positions[0] + 3.8 * (odd.positions[1] - odd.positions[0]) / odd.get_distance(0, 1)  # O-H 3.8 A
    pred = model.predict([odd])
    assert pred.n_centres_outside[0] > 0 and pred.n_pairs_within_cutoff[0] < pred.n_pairs[0]
    model.save(tmp_path / "k.model")
    ase.io.write(tmp_path / "odd.xyz", [odd])
    capsys.readouterr()
    assert cli_main(["predict", str(tmp_path / "k.model"), str(tmp_path / "odd.xyz"), "-o", str(tmp_path / "p.xyz")]) == 0
    err = capsys.readouterr().err
    assert "beyond the model's cutoff" in err and "outside the model's training range" in err
    assert ase.io.read(tmp_path / "p.xyz").info["hamiltonian_centres_outside"] > 0


def test_delta_with_the_kernel_kind_and_no_holdout(svp_waters):
    """model.holdout 0: the Δ model fits without a held-out record (it used to read a missing one)."""
    from psilearn.models.factory import fit_model
    from psilearn.models.fidelity.delta import delta_kind

    frames = []
    for a in svp_waters[:6]:
        b = a.copy()
        b.info["hamiltonian_base"] = a.info["hamiltonian"].copy()
        frames.append(b)
    ds = load_hamiltonian_dataset(frames)
    model = fit_model(delta_kind("hamiltonian_base", "hamiltonian-sagpr"), ds.target, ds, {**SMALL, "model": {"holdout": 0.0}})
    assert "heldout_metrics" not in model.metadata
    assert np.abs(model.predict(frames[:2]).matrices[0] - ds.matrix(0)).max() < 1e-9
