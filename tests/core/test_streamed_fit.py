"""Streamed SA-GPR fit (psilearn.models.sagpr.stream): batches of structures with the normal
equations accumulated give the in-memory model; float32 batches; a Dask cluster gives the
in-process sums; options needing every row are refused with one line; k-fold CV ('cv') and the
held-out estimate from per-fold sums equal the in-memory ones."""

import numpy as np
import pytest

from psilearn import Target, load_dataset
from psilearn.errors import ConfigError
from psilearn.models._kernel.normal import ChannelSums, batch_bounds
from psilearn.models.factory import fit_model

from ._synth import SMALL_SOAP, label_frames, molecules, rel_dev

ALPHA = Target("alpha", tensor="ij=ji")
DIPOLE = Target("mu", per="atom", tensor="i")


def _cfg(**model):
    return {"soap": SMALL_SOAP, "model": {"n_sparse": 20, **model}}


@pytest.fixture(scope="module")
def alpha():
    return load_dataset(label_frames(molecules(3, 24), "alpha", "sym2", "structure"), ALPHA)


@pytest.fixture(scope="module")
def test_frames():
    return molecules(9, 6)


@pytest.fixture(scope="module")
def in_memory(alpha):
    return fit_model("sagpr", ALPHA, alpha, _cfg())


def test_sums_of_batches_are_the_sums_of_all_rows():
    rng = np.random.default_rng(0)
    phi, y = rng.normal(size=(23, 5)), rng.normal(size=(23, 2))
    parts = [ChannelSums.of(phi[a:b], y[a:b]) for a, b in batch_bounds(23, 4)]
    total = parts[0]
    for p in parts[1:]:
        total.add(p)
    assert total.n == 23 and np.allclose(total.c, phi.T @ phi) and np.allclose(total.r, phi.T @ y)
    assert np.allclose(total.yy, (y**2).sum(0)) and batch_bounds(5, 2) == [(0, 2), (2, 4), (4, 5)]


def _same_heldout(a, b, tol):
    """The held-out metrics of models ``a`` and ``b`` (Cartesian and per channel) agree to ``tol`` relative."""
    ha, hb = a.metadata["heldout_metrics"], b.metadata["heldout_metrics"]
    pairs = [(ha["cartesian"], hb["cartesian"])] + [(ha["channels"][k], hb["channels"][k]) for k in ha["channels"]]
    assert ha["n_samples"] == hb["n_samples"] and len(pairs) > 1
    for x, y in pairs:
        for key in ("mae", "rmse"):
            assert abs(y[key] / x[key] - 1) < tol, (key, x, y)


def test_streamed_equals_in_memory(alpha, in_memory, test_frames):
    streamed = fit_model("sagpr", ALPHA, alpha, _cfg(stream_batch=5))  # batches cut within 5 folds of ~5 structures
    assert streamed.metadata["stream"]["folds"] == 5 and "streamed" in streamed.metadata["heldout_metrics"]["method"]
    _same_heldout(in_memory, streamed, 1e-8)
    for z, x in in_memory.sparse[(0, 1)].items():  # the candidate pool keeps the in-memory FPS choice here
        assert np.allclose(streamed.sparse[(0, 1)][z], x, atol=1e-12)
    a, b = in_memory.predict(test_frames), streamed.predict(test_frames)
    assert rel_dev(b.values, a.values) < 1e-10 and rel_dev(b.std, a.std) < 1e-10
    regs = [c.reg for cm in streamed.channels for _, c in cm.columns]
    assert np.allclose(regs, [c.reg for cm in in_memory.channels for _, c in cm.columns], rtol=1e-8)


@pytest.mark.parametrize("reg", [1e-3, {"H": 1e-3, "C": 1e-3, "O": 1e-2}])
def test_streamed_per_atom_with_label_mask(test_frames, reg):
    frames = label_frames(molecules(4, 16), "mu", "vector", "atom")
    for a in frames:  # only C and O labelled
        a.arrays["keep"] = (a.numbers != 1).astype(int)
        a.arrays["mu"] = np.where(a.arrays["keep"][:, None] == 1, a.arrays["mu"], np.nan)
    ds = load_dataset(frames, DIPOLE, label_mask="keep")
    a = fit_model("sagpr", DIPOLE, ds, _cfg(regularization=reg))
    b = fit_model("sagpr", DIPOLE, ds, _cfg(regularization=reg, stream_batch=3))
    pa, pb = a.predict(test_frames), b.predict(test_frames)
    assert rel_dev(pb.values, pa.values) < 1e-10 and rel_dev(pb.std, pa.std) < 1e-10
    _same_heldout(a, b, 1e-8)  # the held-out rows of each fold's batches, label mask and per-element weights included


def test_streamed_cv_equals_in_memory(alpha, test_frames):
    """regularization: cv from per-fold sums: the same grid choice per column, the same k-fold estimate."""
    a = fit_model("sagpr", ALPHA, alpha, _cfg(regularization="cv"))
    b = fit_model("sagpr", ALPHA, alpha, _cfg(regularization="cv", stream_batch=4))
    ra, rb = ([c.reg for cm in m.channels for _, c in cm.columns] for m in (a, b))
    assert len(ra) == 2 and np.allclose(rb, ra, rtol=1e-8, atol=0)
    _same_heldout(a, b, 1e-8)
    assert rel_dev(b.predict(test_frames).values, a.predict(test_frames).values) < 1e-10
    off = fit_model("sagpr", ALPHA, alpha, _cfg(regularization="cv", stream_batch=4, stream_heldout=False))
    assert np.allclose([c.reg for cm in off.channels for _, c in cm.columns], ra, rtol=1e-8, atol=0)  # 'cv' still uses its folds
    assert off.metadata["heldout_metrics"]["method"].startswith("not computed: model.stream_heldout is false")


def test_streamed_folds_do_not_leak(alpha):
    """Nearly interpolating (regularization 1e-8), the fit reproduces its training labels; a fold's
    held-out predictions must come from a model that did not see it, so their error stays far larger."""
    model = fit_model("sagpr", ALPHA, alpha, _cfg(regularization=1e-8, stream_batch=4))
    train = ALPHA.to_irreps(model.predict(alpha.frames).values) - ALPHA.to_irreps(alpha.values)
    train_rmse = float(np.sqrt(np.mean(train**2)))
    held = model.metadata["heldout_metrics"]["cartesian"]["rmse"]
    assert train_rmse < 1e-3 * held and held > 0.1 * np.std(alpha.values)


def test_fold_sums_equal_kfold_on_rows():
    """FoldCV (per-fold sums) against SparseGP.kfold_residuals (rows) and an explicit fit without each fold."""
    from psilearn.models._kernel.foldcv import FoldCV, choose_by_cv
    from psilearn.models._kernel.gpr import SparseGP

    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 5))
    kmm = x @ x.T + 1e-3 * np.eye(12)
    phi = rng.normal(size=(60, 5)) @ x.T
    y = phi @ rng.normal(size=(12, 2)) * 0.1 + 0.3 * rng.normal(size=(60, 2))
    folds = rng.permutation(60) % 5
    gp, bw = SparseGP.build(phi, [kmm])
    cv = FoldCV.project(SparseGP.from_sums(phi.T @ phi, [kmm]), [ChannelSums.of(phi[folds == f], y[folds == f]) for f in range(5)])
    grid = gp.reg_grid()[::6]
    rows = np.array([np.mean(gp.kfold_residuals(bw, y, folds, np.array([r, r]))[0] ** 2, axis=0) for r in grid])
    assert np.allclose(cv.mse(grid), rows, rtol=1e-9, atol=0)
    regs, _ = choose_by_cv(gp, cv)
    for f, w in enumerate(cv.coefs(regs)):
        tr = folds != f
        for j in range(2):  # the model trained on the other folds' rows only
            u = np.linalg.solve(bw[tr].T @ bw[tr] + regs[j] * np.eye(bw.shape[1]), bw[tr].T @ y[tr, j])
            assert np.allclose(phi[~tr] @ w[:, j], bw[~tr] @ u, rtol=1e-8, atol=1e-12)


def test_float32_predictions_within_1e6(alpha, test_frames):
    f64 = fit_model("sagpr", ALPHA, alpha, _cfg(stream_batch=8, regularization=1e-4))
    f32 = fit_model("sagpr", ALPHA, alpha, _cfg(stream_batch=8, regularization=1e-4, float32=True))
    a, b = f64.predict(test_frames).values, f32.predict(test_frames).values
    dev = rel_dev(b, a)
    assert 0 < dev < 1e-6  # float32 features did change the kernels, and not the predictions beyond 1e-6


def test_dask_equals_in_process(alpha, test_frames):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        dask = fit_model("sagpr", ALPHA, alpha, _cfg(stream_batch=6, scheduler=cluster.scheduler_address))
    here = fit_model("sagpr", ALPHA, alpha, _cfg(stream_batch=6))
    assert dask.metadata["stream"]["scheduler"].startswith(("tcp://", "inproc://"))
    _same_heldout(here, dask, 1e-12)
    a, b = here.predict(test_frames), dask.predict(test_frames)
    assert rel_dev(b.values, a.values) < 1e-12 and rel_dev(b.std, a.std) < 1e-12


@pytest.mark.parametrize("option, match", [({"feature_tol": 0.01}, "feature_tol"),
                                           ({"covariance_storage": "training"}, "covariance_storage")])
def test_refused_in_streamed_mode(alpha, option, match):
    with pytest.raises(ConfigError, match=match) as err:
        fit_model("sagpr", ALPHA, alpha, _cfg(stream_batch=5, **option))
    assert "\n" not in str(err.value) and "streamed fit" in str(err.value)


def test_fold_sums_over_budget(alpha, monkeypatch):
    """Per-fold sums that do not fit: 'cv' is refused with one line; otherwise the fit goes on without the estimate."""
    from psilearn.models._kernel.memory import stream_fit_bytes
    from psilearn.models.sagpr import stream

    ch = [(5, [20, 20, 20], 1)]
    assert stream_fit_bytes(100, ch, 5) - stream_fit_bytes(100, ch, 1) == 4 * 8 * (300**2 + 300) + 8 * 300**2
    monkeypatch.setattr(stream, "stream_fit_bytes", lambda rows, chans, folds=1: 10**18 if folds > 1 else 0)
    with pytest.raises(stream.MemoryBudgetError, match="5 folds x") as err:
        fit_model("sagpr", ALPHA, alpha, _cfg(regularization="cv", stream_batch=5))
    assert "\n" not in str(err.value) and "model.cv_folds" in str(err.value)
    ml = fit_model("sagpr", ALPHA, alpha, _cfg(stream_batch=5))
    assert ml.metadata["stream"]["folds"] == 1 and "exceed the memory budget" in ml.metadata["heldout_metrics"]["method"]


def test_unreachable_scheduler_one_line(alpha):
    with pytest.raises(ValueError, match="cannot connect to Dask scheduler"):
        fit_model("sagpr", ALPHA, alpha, _cfg(scheduler="nowhere://host:1"))  # an unreachable address waits 20 s


def test_automatic_streaming_when_memory_is_short(alpha, in_memory, test_frames, monkeypatch):
    from psilearn.models.sagpr import stream

    def too_big(*args):
        raise stream.MemoryBudgetError("in-memory fit too large")

    monkeypatch.setattr(type(in_memory), "_check_fit_bytes", lambda self, *a: too_big())
    auto = fit_model("sagpr", ALPHA, alpha, _cfg())
    assert auto.metadata["stream"]["batch_structures"] == 100  # soap.batch_size
    assert rel_dev(auto.predict(test_frames).values, in_memory.predict(test_frames).values) < 1e-10


def test_cli_streamed_fit_and_scheduler_errors(alpha, tmp_path, capsys):
    import ase.io

    from psilearn.cli.main import main

    ase.io.write(tmp_path / "train.xyz", alpha.frames, format="extxyz")
    soap = ", ".join(f"{k}: {v}" for k, v in SMALL_SOAP.items())
    (tmp_path / "s.yaml").write_text(f"soap: {{{soap}}}\nmodel: {{n_sparse: 20, stream_batch: 6}}\n")
    base = ["fit", str(tmp_path / "train.xyz"), "--target", "alpha", "--tensor", "ij=ji", "--config", str(tmp_path / "s.yaml")]
    assert main([*base, "-o", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "held-out estimate (5-fold cross-validation by structure" in out and "(none)" not in out
    from psilearn.models import load

    saved = load(str(tmp_path / "m"))
    assert saved.metadata["stream"]["n_batches"] == 5  # batches of <= 6 structures within each fold of 4-5
    direct = fit_model("sagpr", ALPHA, alpha, _cfg(stream_batch=6))
    assert rel_dev(saved.predict(alpha.frames[:5]).std, direct.predict(alpha.frames[:5]).std) < 1e-6  # basis stored in float32
    assert main([*base, "--scheduler", "nowhere://host:1", "-o", str(tmp_path / "m2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("psilearn fit: error: cannot connect to Dask scheduler 'nowhere://host:1'")
    assert main([*base[:-2], "--model", "nn", "--scheduler", "local", "-o", str(tmp_path / "m3")]) == 2
    assert "--scheduler distributes a streamed sagpr fit" in capsys.readouterr().err


def test_gram_fps_is_the_same_choice():
    from psilearn.data.splits import farthest_point_order

    x = np.random.default_rng(1).normal(size=(300, 40))
    assert np.array_equal(farthest_point_order(x, 7, 50), farthest_point_order(x, 7, 50, dots=(x @ x.T).__getitem__))


def test_candidate_pool_cut_back(alpha, in_memory):
    """With pools cut back (n_sparse 4, batches of 2 structures) the choice is no longer the global
    FPS, but still M_Z distinct training environments per element."""
    model = fit_model("sagpr", ALPHA, alpha, {"soap": SMALL_SOAP, "model": {"n_sparse": 4, "stream_batch": 2}})
    feats = in_memory._lsoap().compute(alpha.frames, [(0, 1)])
    for z, x in model.sparse[(0, 1)].items():
        rows = feats.blocks[(0, 1)][z][:, 0, :]
        dist = np.linalg.norm(x[:, 0, :][:, None, :] - rows[None], axis=2)  # (4, n_Z)
        assert len(x) == 4 and np.all(dist.min(axis=1) < 1e-10) and len(set(dist.argmin(axis=1))) == 4


def test_streamed_global_state_equals_in_memory():
    """Charge states (model.global_state): the state kernel on the batch rows and on K_MM."""
    frames = label_frames(molecules(5, 20), "q", "scalar", "atom")
    for i, a in enumerate(frames):
        a.info["charge"] = i % 2
    target = Target("q", per="atom")
    ds = load_dataset(frames, target)
    a = fit_model("sagpr", target, ds, _cfg(global_state="charge"))
    b = fit_model("sagpr", target, ds, _cfg(global_state="charge", stream_batch=6))
    test = molecules(6, 4)
    for i, t in enumerate(test):
        t.info["charge"] = (i + 1) % 2
    pa, pb = a.predict(test), b.predict(test)
    assert rel_dev(pb.values, pa.values) < 1e-10 and rel_dev(pb.std, pa.std) < 1e-10
