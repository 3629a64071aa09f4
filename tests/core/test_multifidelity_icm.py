"""Multi-fidelity by intrinsic coregionalisation (`multifidelity-icm`): one level is the plain SA-GPR,
a known linear relation between synthetic levels is recovered and beats the high level alone, exact
O(3) equivariance and invariances at every level, bit-identical files, the CLI route and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from psilearn.data import load_dataset
from psilearn.errors import ConfigError, DataError
from psilearn.models import load
from psilearn.models.factory import fit_model
from psilearn.models.fidelity import icm_kind, multifidelity_kind
from psilearn.targets import Target

from ._synth import cartesian_operator, label_frames, level_frames, molecules, random_rotation, transform_frames
from .test_multifidelity import CONFIG, TARGET, _levels, cli_fit_inputs

MU = Target("mu", tensor="i")
ICM = icm_kind("level", ["gfn2", "pbe0"], "pbe0")


def _correction(a) -> np.ndarray:
    """A smooth polar vector of the geometry, independent of the label: sum_i exp(-|r_i|^2 / 4) r_i (about the centroid)."""
    r = a.positions - a.positions.mean(0)
    return (np.exp(-np.sum(r**2, axis=1) / 4)[:, None] * r).sum(0)


def _vector_levels(frames, lo: list[int], hi: list[int], scale: float = 1.5, extra: float = 0.1):
    """Low level: the synthetic dipole; high level: ``scale`` x low + ``extra`` x a smooth correction."""
    base = label_frames(frames, "mu", "vector", "structure")
    return level_frames(base, "mu", lo, hi, lambda i, a: scale * np.asarray(a.info["mu"]) + extra * _correction(a))


@pytest.fixture(scope="module")
def frames():
    return molecules(5, 70)


@pytest.fixture(scope="module")
def alpha_model(frames):
    """Polarizability, non-nested: 40 low-level structures, 8 other structures at the high level."""
    return fit_model(ICM, TARGET, load_dataset(_levels(frames, list(range(40)), list(range(40, 48)), extra=0.1), TARGET), CONFIG, seed=0)


@pytest.fixture(scope="module")
def mu_model(frames):
    """Dipole, partly nested: 50 low-level structures; 12 at the high level, 6 of them not at the low level."""
    return fit_model(ICM, MU, load_dataset(_vector_levels(frames, list(range(50)), list(range(44, 56))), MU), CONFIG, seed=0)


def test_one_level_is_the_plain_model(frames):
    """With B and the noise fixed at SA-GPR's fitted values the models agree to rounding (means 1e-8;
    covariances 1e-7, from the float32 rounding of the covariance basis). Learned, both
    maximise the same marginal likelihood with different optimisers (L-BFGS over (B, noise) here; SA-GPR a
    bounded grid of noise/B with the amplitude profiled out), so they agree only where both reach the same
    optimum: the 2e block (measured: means to 3e-7 relative, std to 3e-4), not the 0e block, whose
    likelihood (this small SOAP cannot learn the label's trace) is highest with all of it noise, beyond
    SA-GPR's largest noise/B (ICM's likelihood there is the higher one)."""
    train = label_frames(frames[:20], "alpha", "sym2", "structure")
    rng = np.random.default_rng(0)
    for a in train:
        a.info["level"] = "dft"
        noise = rng.normal(0, 0.05, (3, 3))
        a.info["alpha"] = np.asarray(a.info["alpha"]) + (noise + noise.T).ravel()
    data = load_dataset(train, TARGET)
    # SA-GPR with its noise fixed at 1e-4 of the signal variance: by marginal likelihood its 2e noise runs to ~1e-12,
    # where both solves lose digits to the conditioning and the comparison would measure rounding (thread count)
    plain = fit_model("sagpr", TARGET, data, {**CONFIG, "model": {**CONFIG["model"], "regularization": 1e-4}}, seed=0)
    fixed = {bi: (np.array([[col.s2]]), np.array([col.sigma2])) for cm in plain.channels for bi, col in cm.columns}
    model = icm_kind("level", None, "dft").build(TARGET, CONFIG, seed=0)
    model.fixed = fixed
    model.fit(data)
    test = frames[50:60]
    a, b = model.predict(test, return_cov=True), plain.predict(test, return_cov=True)
    np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-8 * np.abs(b.values).max())
    # the covariance's basis is rounded to float32 (icm.STORE_DTYPE): measured 1.3e-8 of the largest entry
    np.testing.assert_allclose(a.cov, b.cov, rtol=0, atol=1e-7 * np.abs(b.cov).max())
    learned = fit_model(icm_kind("level", None, "dft"), TARGET, data, CONFIG, seed=0)
    for got, ref in zip(learned.metadata["multifidelity"]["blocks"], model.metadata["multifidelity"]["blocks"]):
        assert got["nll_per_row"] <= ref["nll_per_row"] + 1e-6, (got, ref)  # at least SA-GPR's marginal likelihood
    blocks = learned.metadata["multifidelity"]["blocks"]
    assert blocks[1]["block"] == "2e" and blocks[0]["B_normalised"][0][0] < 1e-6
    got, ml = learned.predict(test), fit_model("sagpr", TARGET, data, CONFIG, seed=0).predict(test)  # both by marginal likelihood
    np.testing.assert_allclose(got.irreps[:, 1:], ml.irreps[:, 1:], rtol=0, atol=1e-5 * np.abs(ml.irreps[:, 1:]).max())
    np.testing.assert_allclose(got.irreps_std[:, 1:], ml.irreps_std[:, 1:], rtol=3e-3)

def test_known_linear_relation_is_recovered_and_beats_the_high_level_alone(mu_model, frames):
    rec = mu_model.metadata["multifidelity"]["blocks"][0]
    assert rec["block"] == "1o"
    # the truth over all 70 structures: uncentred correlation 0.99993, RMS ratio high/low 1.5013
    assert rec["correlation"][0][1] > 0.999, rec
    assert rec["amplitude_ratio_to_first"][1] == pytest.approx(1.5013, rel=0.03), rec
    test = _vector_levels(frames, [], list(range(60, 70)))
    truth = np.array([a.info["mu"] for a in test])
    alone = fit_model("sagpr", MU, load_dataset(_vector_levels(frames, [], list(range(44, 56))), MU), CONFIG, seed=0)
    rmse = lambda p: float(np.sqrt(np.mean((p.values - truth) ** 2)))  # noqa: E731
    icm, plain = rmse(mu_model.predict(test)), rmse(alone.predict(test))
    assert icm < 0.7 * plain, (icm, plain)  # measured 0.44 vs 0.77
    lo = mu_model.predict(test, fidelity="gfn2")
    lo_truth = np.array([a.info["mu"] for a in label_frames(frames[60:70], "mu", "vector", "structure")])
    assert float(np.sqrt(np.mean((lo.values - lo_truth) ** 2))) < 0.5 * float(np.sqrt(np.mean(lo_truth**2)))


@pytest.mark.parametrize("which", ["mu", "alpha"])
def test_equivariant_under_rotations_and_reflections_at_every_level(which, mu_model, alpha_model, frames):
    model, rank = (mu_model, 1) if which == "mu" else (alpha_model, 2)
    rng = np.random.default_rng(3)
    a = frames[65:67]
    for q in (random_rotation(rng), -random_rotation(rng)):
        b = transform_frames(a, q)
        op = cartesian_operator(q, rank)
        for level in ("gfn2", "pbe0"):
            pa, pb = model.predict(a, return_cov=True, fidelity=level), model.predict(b, return_cov=True, fidelity=level)
            for i in range(len(a)):
                np.testing.assert_allclose(pb.values[i], op @ pa.values[i], atol=1e-9 * np.abs(pa.values).max())
                np.testing.assert_allclose(pb.cov[i], op @ pa.cov[i] @ op.T, atol=1e-9 * np.abs(pa.cov).max())


def test_permutation_and_translation_invariant(alpha_model, frames):
    a = frames[66]
    perm = np.random.default_rng(1).permutation(len(a))
    b = a[perm]
    c = transform_frames([a], np.eye(3), shift=(1.3, -0.4, 2.2))[0]
    for level in ("gfn2", "pbe0"):
        ref = alpha_model.predict([a], return_cov=True, fidelity=level)
        for other in (b, c):
            p = alpha_model.predict([other], return_cov=True, fidelity=level)
            np.testing.assert_allclose(p.values, ref.values, atol=1e-9 * np.abs(ref.values).max())
            np.testing.assert_allclose(p.cov, ref.cov, atol=1e-9 * np.abs(ref.cov).max())


def test_file_round_trip_is_bit_identical(alpha_model, frames, tmp_path):
    alpha_model.save(tmp_path / "icm.model")
    back = load(tmp_path / "icm.model")
    assert back.kind == "multifidelity-icm" and back.levels == ["gfn2", "pbe0"] and back.target_level == "pbe0"
    for level in ("gfn2", "pbe0"):
        a, b = alpha_model.predict(frames[60:64], return_cov=True, fidelity=level), back.predict(frames[60:64], return_cov=True, fidelity=level)
        np.testing.assert_array_equal(b.values, a.values)
        np.testing.assert_array_equal(b.cov, a.cov)
        assert np.all(a.std > 0)
    # the low level is not the high one, and the high level's uncertainty is that of a level with 8 labels
    assert not np.allclose(alpha_model.predict(frames[60:64], fidelity="gfn2").values, alpha_model.predict(frames[60:64]).values)


def test_clear_errors(alpha_model, frames):
    with pytest.raises(ConfigError, match="fidelity 'ccsd' is not a level of this model"):
        alpha_model.predict(frames[:2], fidelity="ccsd")
    with pytest.raises(ConfigError, match="--model nn is not supported"):
        icm_kind("level", None, "pbe0", inner="nn")
    with pytest.raises(ConfigError, match="model kind 'multifidelity-icm' cannot be a level"):  # refused up front, not at fit time
        multifidelity_kind("level", None, "pbe0", inner="multifidelity-icm")
    data = load_dataset(_levels(frames, list(range(10)), [11, 12]), TARGET)
    with pytest.raises(DataError, match="level 'xtb' .*has no training structure"):
        fit_model(icm_kind("level", ["xtb", "gfn2", "pbe0"], "pbe0"), TARGET, data, CONFIG, seed=0)
    with pytest.raises(DataError, match="no training structure has level=ccsd"):
        fit_model(icm_kind("level", None, "ccsd"), TARGET, data, CONFIG, seed=0)
    with pytest.raises(ConfigError, match="does not support model.regularization"):
        icm_kind("level", None, "pbe0").build(TARGET, {**CONFIG, "model": {**CONFIG["model"], "regularization": "cv"}})


def test_cli_route_and_one_line_errors(frames, tmp_path, capsys):
    from psilearn.cli.main import main
    from psilearn.data import read_structures

    data = _levels(frames, list(range(30)), list(range(30, 36)))
    fit = cli_fit_inputs(tmp_path, data, frames[60:63]) + ["--fidelity-key", "level", "--target-fidelity", "pbe0"]
    assert main(fit + ["--coregionalisation", "icm", "-o", str(tmp_path / "icm.model")]) == 0
    assert "coregionalised" in capsys.readouterr().err
    model = load(tmp_path / "icm.model")
    assert model.kind == "multifidelity-icm"
    for extra, level in (([], "pbe0"), (["--fidelity", "gfn2"], "gfn2")):
        out = tmp_path / f"p_{level}.xyz"
        assert main(["predict", str(tmp_path / "icm.model"), str(tmp_path / "new.xyz"), "-o", str(out), *extra]) == 0
        got = read_structures(str(out))
        pred = model.predict(frames[60:63], fidelity=level)
        np.testing.assert_allclose(np.array([a.info["alpha"] for a in got]), pred.values, atol=1e-10)
        np.testing.assert_allclose(np.array([a.info["alpha_std"] for a in got]), pred.std, rtol=1e-8)
    capsys.readouterr()
    errors = [(["predict", str(tmp_path / "icm.model"), str(tmp_path / "new.xyz"), "-o", str(tmp_path / "x.xyz"), "--fidelity", "ccsd"],
               "fidelity 'ccsd' is not a level of this model"),
              (fit + ["--coregionalisation", "icm", "--model", "nn", "-o", str(tmp_path / "b.model")], "--model nn is not supported"),
              (fit + ["--coregionalisation", "icm", "--fidelities", "xtb,gfn2,pbe0", "-o", str(tmp_path / "b.model")],
               "level 'xtb' (--fidelities) has no training structure"),
              (fit[:9] + ["--coregionalisation", "icm", "-o", str(tmp_path / "b.model")], "go with --fidelity-key"),
              (fit + ["--coregionalisation", "icm", "--affine-fidelities", "pbe0", "-o", str(tmp_path / "b.model")],
               "--affine-fidelities goes with"),
              (fit + ["--coregionalisation", "linear", "-o", str(tmp_path / "b.model")], "invalid choice")]
    for argv, message in errors:
        with pytest.raises(SystemExit) if "invalid choice" in message else _no_exit():
            code = main(argv)
            assert code == 2
        err = capsys.readouterr().err
        assert message in err, (argv, err)
        assert "Traceback" not in err
        if "invalid choice" not in message:
            assert len([ln for ln in err.strip().splitlines() if ln.startswith("error") or "rror" in ln]) <= 1


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_coregional_algebra_equals_the_dense_gp():
    """The Woodbury/weight-space algebra (models/_kernel/coregional.py) against the dense GP with kernel
    B_ff' x.x' + noise_f: likelihood, its gradient, posterior mean and covariance, k-fold predictions."""
    from psilearn.models._kernel import coregional as icm

    rng = np.random.default_rng(0)
    r, sizes = 12, (40, 7, 5)
    xs = [rng.normal(size=(m, r)) for m in sizes]
    ys = [rng.normal(size=m) for m in sizes]
    mu, v = np.linalg.eigh(xs[0].T @ xs[0])
    data = icm.ICMData(0, mu, [x @ v for x in xs], ys)
    c = np.tril(rng.normal(size=(3, 3))) + 2 * np.eye(3)
    b, noise = c @ c.T, np.array([0.1, 0.3, 0.05])
    lv = np.concatenate([[f] * m for f, m in enumerate(sizes)])
    x, y = np.concatenate(data.xs), np.concatenate(ys)
    k = b[lv][:, lv] * (x @ x.T) + np.diag(noise[lv])
    assert icm.neg_log_ml(data, b, noise) == pytest.approx(np.linalg.slogdet(k)[1] + y @ np.linalg.solve(k, y), rel=1e-10)
    post, xt = icm.posterior(data, b, noise), rng.normal(size=(3, r))
    for f in range(3):
        kst = b[f][lv] * (xt @ x.T)
        np.testing.assert_allclose(xt @ post.mean[f], kst @ np.linalg.solve(k, y), atol=1e-9)
        cov = xt @ (np.diag(post.diag[f]) - post.z[f] @ post.z[f].T) @ xt.T
        np.testing.assert_allclose(cov, b[f, f] * xt @ xt.T - kst @ np.linalg.solve(k, kst.T), atol=1e-9)
    for level in (0, 1):  # the largest level (downdate) and a smaller one (refit)
        rows = np.flatnonzero(lv == level)
        folds = np.arange(len(rows)) % 3
        held = icm.kfold_level(data, b, noise, level, folds)
        for fold in range(3):
            va = rows[folds == fold]
            tr = np.setdiff1d(np.arange(len(y)), va)
            np.testing.assert_allclose(held[folds == fold], k[np.ix_(va, tr)] @ np.linalg.solve(k[np.ix_(tr, tr)], y[tr]), atol=1e-9)
    _, g_c, g_n = icm._nll(data, c, noise, grad=True)
    eye = np.eye(3)
    num_c = np.array([[(icm._nll(data, c + 1e-6 * np.outer(eye[i], eye[j]), noise) - icm._nll(data, c - 1e-6 * np.outer(eye[i], eye[j]), noise))
                       / 2e-6 for j in range(3)] for i in range(3)])
    num_n = np.array([(icm._nll(data, c, noise + 1e-7 * eye[f]) - icm._nll(data, c, noise - 1e-7 * eye[f])) / 2e-7 for f in range(3)])
    np.testing.assert_allclose(g_c, num_c, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g_n, num_n, rtol=1e-5, atol=1e-4)


def test_per_atom_target(frames):
    target = Target("q", per="atom")
    lo = label_frames(frames[:30], "q", "scalar", "atom")
    hi = [a.copy() for a in label_frames(frames[30:40], "q", "scalar", "atom")]
    for a in lo:
        a.info["level"] = "lo"
    for a in hi:
        a.arrays["q"] = 0.5 * a.arrays["q"]
        a.info["level"] = "hi"
    model = fit_model(icm_kind("level", ["lo", "hi"], "hi"), target, load_dataset(lo + hi, target), CONFIG, seed=0)
    rec = model.metadata["multifidelity"]["blocks"][0]
    # non-nested, 10 high structures: measured correlation 0.985 (truth 1), ratio 0.54 (truth 0.5)
    assert rec["correlation"][0][1] > 0.97 and rec["amplitude_ratio_to_first"][1] == pytest.approx(0.5, rel=0.12), rec
    test = label_frames(frames[60:], "q", "scalar", "atom")
    truth = np.concatenate([0.5 * a.arrays["q"] for a in test])
    pred = model.predict(test)
    assert pred.values.shape == (len(truth), 1) and np.all(pred.std > 0)
    lo_err = np.sqrt(np.mean((model.predict(test, fidelity="lo").values[:, 0] - 2 * truth) ** 2))
    assert np.sqrt(np.mean((pred.values[:, 0] - truth) ** 2)) < 0.75 * lo_err  # ~ half the cheap level's error
