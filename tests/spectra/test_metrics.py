"""Spectral metrics, shifts, fingerprints, peak errors, PCA/clustering and harmonic analysis."""

import numpy as np
import pytest

from psilearn.data.errors import DataError
from psilearn.observe import (
    FingerprintSpec,
    apply_shift,
    best_shift,
    compare_spectra,
    cosine,
    fingerprint_similarity,
    peak_position_error,
    pearson,
    relative_integrated_error,
    rmse,
    shift_aligned_rmse,
)
from psilearn.observe.harmonic import broadened, normal_modes
from psilearn.spectral.pca import choose_clusters, fit_pca, kmeans

GRID = np.linspace(-10, 10, 401)


def gauss(mu, s=0.8, a=1.0):
    return a * np.exp(-0.5 * ((GRID - mu) / s) ** 2)


def spectrum(shift=0.0):
    return gauss(-3 + shift) + 0.6 * gauss(2 + shift, 1.2)


def test_identical_spectra_score_perfectly():
    y = spectrum()
    m = compare_spectra(GRID, y, y, max_shift=2.0)["mean"]
    assert m["rmse"] == 0 and m["relative_integrated_error"] == 0
    assert m["pearson"] == pytest.approx(1) and m["cosine"] == pytest.approx(1)
    assert m["tanimoto"] == 1 and m["peak_position_error"] == pytest.approx(0, abs=1e-9)
    assert m["best_shift"] == pytest.approx(0, abs=1e-9)


def test_known_values():
    y = spectrum()
    assert relative_integrated_error(GRID, y, 1.1 * y) == pytest.approx(0.1)
    assert cosine(y, 3 * y) == pytest.approx(1)
    assert pearson(y, -y) == pytest.approx(-1)
    assert rmse(y, y + 0.5) == pytest.approx(0.5)
    assert peak_position_error(GRID, y, spectrum(0.37)) == pytest.approx(0.37, abs=0.01)


def test_batch_shapes():
    ys = np.stack([spectrum(s) for s in (0.0, 0.5, 1.0)])
    r = rmse(ys, ys[::-1])
    assert r.shape == (3,) and r[1] == 0
    assert fingerprint_similarity(GRID, ys, ys[::-1]).shape == (3,)


def test_shift_recovered_below_grid_spacing():
    y = spectrum()
    for s in (-1.234, 0.05, 2.71):
        moved = apply_shift(GRID, y, s)
        assert moved == pytest.approx(spectrum(s), abs=2e-3)
        assert best_shift(GRID, y, moved, max_shift=4.0) == pytest.approx(s, abs=0.01)
    err, s = shift_aligned_rmse(GRID, spectrum(0.8), y, max_shift=2.0)
    assert s == pytest.approx(0.8, abs=0.01) and err < 1e-3


def test_tanimoto_decreases_with_mismatch():
    y = spectrum()
    sims = [fingerprint_similarity(GRID, y, spectrum(s)) for s in (0.0, 0.3, 1.0, 3.0)]
    assert sims[0] == 1 and all(a > b for a, b in zip(sims, sims[1:]))
    coarse = FingerprintSpec(n_bins=8, n_levels=4)
    assert fingerprint_similarity(GRID, y, spectrum(0.3), coarse) >= sims[1] - 1e-12


@pytest.mark.parametrize("bad, msg", [
    (np.full(401, np.nan), "NaN"),
    (np.zeros(400), "400 points per spectrum but the grid has 401"),
    (np.zeros((2, 2, 401)), "expected shape"),
])
def test_metrics_reject_bad_spectra(bad, msg):
    with pytest.raises(DataError, match=msg):
        relative_integrated_error(GRID, spectrum(), bad)


def test_grid_must_increase():
    with pytest.raises(DataError, match="increasing"):
        relative_integrated_error(GRID[::-1], spectrum(), spectrum())


def test_pca_and_clusters_separate_two_families():
    rng = np.random.default_rng(0)
    a = [spectrum(rng.normal(0, 0.05)) + 0.01 * rng.normal(size=len(GRID)) for _ in range(15)]
    b = [gauss(0, 2.0) + 0.01 * rng.normal(size=len(GRID)) for _ in range(10)]
    y = np.array(a + b)
    pca = fit_pca(y, 0.95)
    assert 1 <= len(pca.components) <= 10
    assert pca.inverse(pca.scores) == pytest.approx(y, abs=0.2)
    labels = kmeans(pca.scores, 2)
    assert len(set(labels[:15])) == 1 and len(set(labels[15:])) == 1 and labels[0] != labels[-1]
    k, _ = choose_clusters(pca.scores, 5)
    assert k == 2


def test_harmonic_diatomic_frequency_and_intensity():
    # H-F-like diatomic along z: k = 0.6 Ha/Bohr^2, masses 1 and 19 amu
    k, m = 0.6, np.array([1.008, 18.998])
    h = np.zeros((6, 6))
    h[2, 2] = h[5, 5] = k
    h[2, 5] = h[5, 2] = -k
    pos = np.array([[0, 0, 0], [0, 0, 1.73]])
    q = 0.4  # charges +q, -q: d mu_z / d z_k = q_k
    apt = np.zeros((2, 3, 3))
    apt[0] = q * np.eye(3)
    apt[1] = -q * np.eye(3)
    modes = normal_modes(h, m, pos, apt)
    mu = m[0] * m[1] / m.sum()
    from psilearn.observe.harmonic import AU_TO_CM1, KM_MOL_PER_E2_AMU

    assert len(modes.wavenumber_cm1) == 1  # a linear molecule keeps 3N - 5 = 1 mode
    assert modes.wavenumber_cm1[0] == pytest.approx(np.sqrt(k / mu) * AU_TO_CM1, rel=1e-10)
    assert AU_TO_CM1 == pytest.approx(5140.487, rel=1e-5)
    assert modes.ir_km_mol[0] == pytest.approx(KM_MOL_PER_E2_AMU * q**2 / mu, rel=1e-10)
    assert KM_MOL_PER_E2_AMU == pytest.approx(974.88, rel=1e-3)
    grid = np.linspace(0, 8000, 8001)
    line = broadened(modes.wavenumber_cm1, modes.ir_km_mol, grid, 20.0)
    assert np.trapezoid(line, grid) == pytest.approx(modes.ir_km_mol[0], rel=0.02)
