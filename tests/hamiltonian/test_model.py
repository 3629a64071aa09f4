"""The hamiltonian model kind: exact symmetry (rotations, reflections, permutations, translations,
hermiticity), learning, the loss's eigenvalue term, file round trip, and one-line errors."""

import numpy as np
import pytest
import scipy.linalg
import torch
from ase import Atoms
from e3nn import o3
from scipy.spatial.transform import Rotation

from psilearn.data import DataError, load_hamiltonian_dataset
from psilearn.models import load
from psilearn.models.registry import model_class

from .conftest import TINY


def fit(frames, epochs: int, **extra):
    ds = load_hamiltonian_dataset(frames)
    config = {k: dict(v) for k, v in TINY.items()}
    config["nn_train"]["epochs"] = epochs
    for section, opts in extra.items():
        config.setdefault(section, {}).update(opts)
    return model_class("hamiltonian").build(ds.target, config, seed=0).fit(ds), ds


@pytest.fixture(scope="module")
def trained(sto3g_waters):
    return fit(sto3g_waters, 40)


def _irreps_error(target, a, fa, b, fb, rot) -> float:
    """max |D(R) c_L(a) - c_L(b)| over every coupled irrep of every pair block."""
    ia, ib = target.to_irreps(a, fa), target.to_irreps(b, fb)
    syms = a.get_chemical_symbols()
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn's Wigner D in float64 (float32 limits the check to ~1e-6)
    try:
        err = 0.0
        for (i, j), v in ia.items():
            for cb in target.pair_layout(syms[i], syms[j], i == j):
                d = o3.Irrep(cb.L, cb.p).D_from_matrix(torch.as_tensor(rot)).numpy()
                err = max(err, float(np.abs(d @ v[cb.cols] - ib[i, j][cb.cols]).max()))
    finally:
        torch.set_default_dtype(prev)
    return err


def check_rotation_and_reflection(model, target, a, seed: int, improper: bool) -> None:
    """Every coupled irrep of every predicted block of the rotated (or improperly rotated) and translated
    molecule is e3nn's Wigner D times the original's (1e-8)."""
    rot = Rotation.random(random_state=seed).as_matrix() * (-1 if improper else 1)
    b = a.copy()
    b.positions = a.positions @ rot.T + np.array([1.0, -2.0, 0.5])  # and a translation
    fa, fb = model.predict([a, b]).matrices
    assert np.abs(fa).max() > 1.0  # a real matrix (O 1s ~ -20 Ha)
    assert _irreps_error(target, a, fa, b, fb, rot) < 1e-8


@pytest.mark.parametrize("improper", [False, True])
def test_rotation_and_reflection_equivariance(trained, sto3g_waters, improper):
    model, ds = trained
    check_rotation_and_reflection(model, ds.target, sto3g_waters[0], 3, improper)


def check_permutation_and_hermiticity(model, target, a, perm) -> None:
    """F exactly symmetric, and F of the permuted molecule = F with rows and columns permuted (1e-10)."""
    fa, fp = model.predict([a, a[perm]]).matrices
    assert np.array_equal(fa, fa.T)
    off = target.offsets(a)
    idx = np.concatenate([np.arange(off[i], off[i + 1]) for i in perm])
    assert np.abs(fa[np.ix_(idx, idx)] - fp).max() < 1e-10


def test_permutation_and_hermiticity(trained, sto3g_waters):
    model, ds = trained
    check_permutation_and_hermiticity(model, ds.target, sto3g_waters[1], [1, 0, 2])


def test_training_learns(sto3g_waters, trained):
    model, _ = trained
    short, _ = fit(sto3g_waters, 1)
    got, start = model.metadata["heldout_metrics"], short.metadata["heldout_metrics"]
    assert got["h_mae"] < 0.5 * start["h_mae"]
    assert model.metadata["cutoff_truncation"]["h_mae"] == 0.0  # water fits inside a 5 A cutoff


def test_file_round_trip(trained, sto3g_waters, tmp_path):
    model, _ = trained
    model.save(tmp_path / "h.model")
    back = load(tmp_path / "h.model")
    a, b = model.predict(sto3g_waters[:3]).matrices, back.predict(sto3g_waters[:3]).matrices
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert back.metadata["heldout_metrics"]["h_mae"] == model.metadata["heldout_metrics"]["h_mae"]


def test_eigenvalue_term_is_the_generalised_eigenproblem(sto3g_waters):
    from psilearn.models._torch.graph import build_graph
    from psilearn.models.hamiltonian.layout import collate_index, structure_index
    from psilearn.models.hamiltonian.loss import HamiltonianLoss, structure_record

    ds = load_hamiltonian_dataset(sto3g_waters[:2])
    recs, graphs = [], []
    for i, a in enumerate(ds.frames):
        g = build_graph(a, [1, 8], 5.0)
        graphs.append(g)
        recs.append(structure_record(structure_index(ds.target, a, g), ds.matrix(i).ravel(), ds.overlap(i).ravel(), 7))
    rng = np.random.default_rng(1)
    pert = [ds.matrix(i) + 1e-3 * (lambda x: x + x.T)(rng.normal(size=(7, 7))) for i in range(2)]
    index = collate_index([r.index for r in recs], graphs)
    pred = torch.as_tensor(np.concatenate([p.ravel() for p in pert]))
    got = HamiltonianLoss(1e-3, 1.0)._eigen_terms(pred, index, recs).numpy()
    for i in range(2):
        e_p = scipy.linalg.eigh(pert[i], ds.overlap(i), eigvals_only=True)
        e_r = scipy.linalg.eigh(ds.matrix(i), ds.overlap(i), eigvals_only=True)
        assert abs(got[i] - np.mean(((e_p - e_r) / 1e-3) ** 2)) < 1e-8 * max(1.0, got[i])
    assert got.min() > 0


def test_eigenvalue_weight_trains(sto3g_waters):
    model, _ = fit(sto3g_waters[:8], 2, hamiltonian={"eigenvalue_weight": 1.0})
    assert np.isfinite(model.metadata["heldout_metrics"]["occupied_energy_mae"])


def test_cutoff_truncation_measured(sto3g_waters):
    from psilearn.data.hamiltonian import truncated

    a = sto3g_waters[0]
    ds = load_hamiltonian_dataset([a])
    h = ds.matrix(0)
    cut = truncated(ds.target, a, h, 0.5)  # every pair beyond 0.5 A: only on-site blocks remain
    off = ds.target.offsets(a)
    assert np.array_equal(cut[off[0]:off[1], off[0]:off[1]], h[off[0]:off[1], off[0]:off[1]])
    assert np.all(cut[off[0]:off[1], off[1]:] == 0) and np.abs(h[off[0]:off[1], off[1]:]).max() > 0.1


def test_bad_inputs(trained, sto3g_waters):
    model, _ = trained
    with pytest.raises(DataError, match="element\\(s\\) C never seen in training"):
        model.predict([Atoms("CO", positions=[[0, 0, 0], [0, 0, 1.1]])])
    other = sto3g_waters[0].copy()
    other.info["hamiltonian_basis"] = "def2-svp"
    with pytest.raises(DataError, match="basis 'def2-svp' but the model was trained on and predicts 'sto-3g'"):
        model.predict([other])
    periodic = sto3g_waters[0].copy()
    periodic.cell, periodic.pbc = np.eye(3) * 10, True
    with pytest.raises(DataError, match="periodic"):
        model.predict([periodic])
    from psilearn.errors import ConfigError

    with pytest.raises(ConfigError, match="uncertainty"):
        model_class("hamiltonian").validate_config({"nn_train": {"uncertainty": "llpr"}})
    with pytest.raises(ValueError, match="hamiltonian targets"):
        from psilearn.targets import Target

        model_class("hamiltonian")(Target("dipole", tensor="i"))
    bad = sto3g_waters[0].copy()
    bad.info["hamiltonian"] = bad.info["hamiltonian"][:-1]
    with pytest.raises(DataError, match="48 'hamiltonian' entries, expected 7x7 = 49"):
        load_hamiltonian_dataset([bad])
