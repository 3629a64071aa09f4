"""Local calibration of the joint posterior (--calibration-neighbours): the leave-one-out identity against explicit
refits, the neighbours' average, invariance under rotations, and the loop's use and refusals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from psilearn.active import run_active
from psilearn.active.calibration import calibrated_factors, local_amplitude, loo_z2, scale_factors
from psilearn.errors import ConfigError

from ._common import CONFIG, POOL, TEST, options, selected

#: a stated noise (sigma2 = 1e-2 s2): the demo dipoles' marginal-likelihood fit interpolates its labels, so that no
#: leave-one-out error is resolved in float64 (the last test)
NOISY = {**CONFIG, "model": {**CONFIG["model"], "regularization": 1e-2}}


def _bayes_linear(phi: np.ndarray, y: np.ndarray, s2: float, noise: float, rows: np.ndarray | None = None):
    """Posterior (mean, covariance) of the weights u ~ N(0, s2 I) of y = phi u + N(0, noise), on ``rows`` (all by default)."""
    rows = np.arange(len(phi)) if rows is None else rows
    cov = np.linalg.inv(phi[rows].T @ phi[rows] / noise + np.eye(phi.shape[1]) / s2)
    return cov @ phi[rows].T @ y[rows] / noise, cov


@pytest.mark.parametrize("per", [[1] * 7, [1, 3, 2, 1, 4, 2]])  # structures of one sample each, or of several (atoms)
def test_loo_z2_equals_explicit_leave_one_out_refits(per):
    rng = np.random.default_rng(0)
    n = sum(per)
    samples_of = np.split(np.arange(n), np.cumsum(per)[:-1])
    factors, residuals, explicit = [], [], np.zeros(len(per))
    for d, rank, s2, noise in ((1, 4, 2.0, 0.3), (5, 9, 0.7, 0.05)):  # two irreps: an l=0 and an l=2 column
        phi = rng.normal(size=(n * d, rank))
        y = phi @ rng.normal(scale=np.sqrt(s2), size=rank) + rng.normal(scale=np.sqrt(noise), size=n * d) + 0.4 * rng.normal(size=n * d)
        mean, cov = _bayes_linear(phi, y, s2, noise)
        r = phi @ np.linalg.cholesky(cov)  # R R^T = phi cov phi^T
        factors.append((r.reshape(n, d, rank), noise))
        residuals.append((y - phi @ mean).reshape(n, d))
        for s, samples in enumerate(samples_of):
            rows = (samples[:, None] * d + np.arange(d)).ravel()
            keep = np.setdiff1d(np.arange(n * d), rows)
            m_loo, c_loo = _bayes_linear(phi, y, s2, noise, keep)
            e = y[rows] - phi[rows] @ m_loo
            explicit[s] += e @ np.linalg.solve(phi[rows] @ c_loo @ phi[rows].T + noise * np.eye(len(rows)), e)
    dims = np.array([len(s) * 6 for s in samples_of])
    np.testing.assert_allclose(loo_z2(factors, residuals, samples_of), explicit / dims, rtol=1e-8)


def test_local_amplitude_averages_the_nearest_labelled():
    labelled = np.array([[0.0], [1.0], [10.0], [11.0]])
    z2 = np.array([1.0, 3.0, 5.0, 9.0])
    got = local_amplitude(z2, labelled, np.array([[0.4], [10.6], [5.0]]), 2)
    np.testing.assert_allclose(got[:2], [2.0, 7.0])
    assert got[2] in (2.0, 4.0)  # 1.0 is nearest; 0.0 and 10.0 tie for second
    np.testing.assert_allclose(local_amplitude(z2, labelled, np.array([[3.0]]), 10), [4.5])  # K above the labelled: all
    r = np.arange(24.0).reshape(2, 3, 4)
    (scaled, s2), = scale_factors([(r, 0.5)], np.array([4.0, 1.0]))
    np.testing.assert_allclose(scaled, r * np.array([2.0, 1.0])[:, None, None])
    assert s2 == 0.5


def _rotated(frames, key, q):
    out = []
    for a in frames:
        b = a.copy()
        b.positions = a.positions @ q.T
        b.info[key] = q @ np.asarray(a.info[key], float)
        out.append(b)
    return out


def test_calibration_is_invariant_under_rotations_and_reflections():
    """A fitted SA-GPR model: the labelled structures and the queries rotated and reflected (labels too) give the same
    leave-one-out z2 and amplitudes, and factors that rotate as the irreps."""
    from psilearn.data import load_dataset, read_structures
    from psilearn.features.invariants import structure_invariants
    from psilearn.models.factory import fit_model
    from psilearn.models.registry import model_class
    from psilearn.targets import Target

    target = Target("dipole_moment", tensor="i")
    frames = read_structures(POOL)
    train, query = frames[0::2], frames[1::5]  # every molecule in both
    model = fit_model(model_class("sagpr"), target, load_dataset(train, target), NOISY, seed=0)
    q = -Rotation.random(random_state=4).as_matrix()  # a rotation times the inversion
    runs = []
    for lab, qu in ((train, query), (_rotated(train, "dipole_moment", q), _rotated(query, "dipole_moment", q))):
        data = load_dataset(lab, target)
        desc = structure_invariants(list(qu) + list(lab))
        factors = model.posterior_factors(list(qu) + list(lab))
        runs.append(calibrated_factors(model, factors, np.arange(len(qu)), data, desc[: len(qu)], desc[len(qu):], 5))
    (f0, s0), (f1, s1) = runs
    assert s0 == s1 and s0["amplitude_range"][1] > 2 * s0["amplitude_range"][0]  # (rounded) and not uniform
    for (r0, _), (r1, _) in zip(f0, f1):
        # the covariance R R^T of a structure rotates with D = P Q P^T, P the Target's Cartesian -> irreps map
        p = model.target.to_irreps(np.eye(3)).T
        d = p @ q @ p.T
        c0 = np.einsum("nar,nbr->nab", r0, r0)
        c1 = np.einsum("nar,nbr->nab", r1, r1)
        np.testing.assert_allclose(c1, np.einsum("ia,nab,jb->nij", d, c0, d), atol=1e-8 * np.abs(c0).max())
    # the scaled variances themselves (amplitude times the model's own): equal to 1e-8, so the amplitudes are too
    (r0, _), (r1, _) = f0[0], f1[0]
    np.testing.assert_allclose(np.einsum("nar,nar->n", r1, r1), np.einsum("nar,nar->n", r0, r0), rtol=1e-8)


def test_loop_uses_the_calibration_and_refuses_what_it_cannot(tmp_path):
    _, log = run_active(options(strategy="targeted", focus=TEST, calibration_neighbours=5, config=NOISY), state_dir=str(tmp_path / "c"))
    rounds = log["rounds"][1:]
    assert rounds and all(r["acquisition"].startswith("model posterior, local calibration (5 neighbours") for r in rounds)
    assert log["options"]["calibration_neighbours"] == 5
    _, plain = run_active(options(strategy="targeted", focus=TEST, config=NOISY), state_dir=str(tmp_path / "p"))
    assert "calibration_neighbours" not in plain["options"]  # logs of runs without it stay as they were
    assert plain["rounds"][0]["selected"] == log["rounds"][0]["selected"]
    assert selected(plain) != selected(log)  # the amplitudes change the picks
    # a fit that interpolates its labels: no z2 is resolved, the round says so and selects on the plain posterior
    _, exact = run_active(options(strategy="variance", calibration_neighbours=5), state_dir=str(tmp_path / "x"))
    _, ref = run_active(options(strategy="variance"), state_dir=str(tmp_path / "y"))
    assert all("local calibration skipped: the fit interpolates its labels" in r["acquisition"] for r in exact["rounds"][1:])
    assert selected(exact) == selected(ref)
    with pytest.raises(ConfigError, match="--calibration-neighbours must be >= 0, and goes with --strategy variance or targeted"):
        run_active(options(strategy="random", calibration_neighbours=5), state_dir=str(tmp_path / "r"))
    with pytest.raises(ConfigError, match="--calibration-neighbours must be >= 0"):
        run_active(options(calibration_neighbours=-1), state_dir=str(tmp_path / "n"))
    with pytest.raises(ConfigError, match="--calibration-neighbours needs the model's joint posterior; model kind 'baseline'"):
        run_active(options(kind="baseline", calibration_neighbours=5), state_dir=str(tmp_path / "b"))
    assert not (tmp_path / "b").exists()
