"""IR and Raman spectra from synthetic time series: peak positions, rotation invariance, errors."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from psilearn.data.errors import DataError
from psilearn.observe import SpectrumOptions, autocorrelation, ir_spectrum, raman_spectrum, rotational_invariants
from psilearn.observe.correlation import C_CM_PER_FS

DT = 0.5  # fs


def _omega(nu_cm1):
    return 2 * np.pi * C_CM_PER_FS * nu_cm1  # rad/fs


def harmonic_dipoles(n=4000, dt=DT, modes=((1600.0, 1.0), (3700.0, 0.5)), noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) * dt
    m = np.zeros((n, 3))
    dirs = [np.array([1.0, 0.2, 0.0]), np.array([0.0, 0.3, 1.0])]
    for (nu, amp), d in zip(modes, dirs):
        m += amp * np.cos(_omega(nu) * t + rng.uniform(0, 2 * np.pi))[:, None] * d
    return m + np.array([0.5, -0.2, 0.1]) + noise * rng.normal(size=m.shape)


def test_ir_of_harmonic_dipole_peaks_at_the_right_wavenumbers():
    spec = ir_spectrum(harmonic_dipoles(noise=1e-3), SpectrumOptions(timestep_fs=DT))
    peaks = np.sort(spec.peak_positions(n_peaks=2))
    assert peaks == pytest.approx([1600.0, 3700.0], abs=2.0)
    assert spec.columns["ir"].max() == pytest.approx(1.0)
    assert spec.meta["timestep_fs"] == DT


def test_ir_peak_does_not_depend_on_sampling_interval():
    for dt in (0.25, 1.0, 2.0):
        spec = ir_spectrum(harmonic_dipoles(n=int(2000 / dt), dt=dt, modes=((1200.0, 1.0),)), SpectrumOptions(timestep_fs=dt, max_cm1=4000))
        assert spec.peak_positions(n_peaks=1)[0] == pytest.approx(1200.0, abs=3.0)


def test_ir_relative_intensities_follow_omega_squared_amplitude_squared():
    # derivative ACF: band strength ~ (omega * |d|A)^2; harmonic QCF keeps the classical ratio
    m = harmonic_dipoles(n=8000, modes=((1000.0, 1.0), (2000.0, 1.0)))
    spec = ir_spectrum(m, SpectrumOptions(timestep_fs=DT))
    nu, y = spec.wavenumber_cm1, spec.columns["ir"]
    h1 = y[np.argmin(np.abs(nu - 1000))]
    h2 = y[np.argmin(np.abs(nu - 2000))]
    d1, d2 = np.linalg.norm([1.0, 0.2, 0.0]) ** 2, np.linalg.norm([0.0, 0.3, 1.0]) ** 2
    assert h2 / h1 == pytest.approx(4.0 * d2 / d1, rel=0.05)


def test_quantum_corrections_reweight_but_keep_positions():
    m = harmonic_dipoles()
    ref = ir_spectrum(m, SpectrumOptions(timestep_fs=DT, qcf="harmonic"))
    for q in ("standard", "none"):
        s = ir_spectrum(m, SpectrumOptions(timestep_fs=DT, qcf=q, temperature_k=300))
        assert np.sort(s.peak_positions(prominence=1e-3, n_peaks=2)) == pytest.approx([1600, 3700], abs=3.0)
    hi = ir_spectrum(m, SpectrumOptions(timestep_fs=DT, qcf="schofield"))
    assert hi.peak_positions(n_peaks=1)[0] == pytest.approx(3700, abs=3.0)  # exp(x/2) boosts high bands
    lo = ir_spectrum(m, SpectrumOptions(timestep_fs=DT, qcf="none"))
    i, j = np.argmin(np.abs(ref.wavenumber_cm1 - 3700)), np.argmin(np.abs(ref.wavenumber_cm1 - 1600))
    ratio = [s.columns["ir"][i] / s.columns["ir"][j] for s in (hi, ref, lo)]
    assert ratio[0] > ratio[1] > ratio[2]


def test_autocorrelation_matches_direct_average():
    x = np.random.default_rng(3).normal(size=(50, 3))
    acf = autocorrelation(x, 10)
    direct = [np.mean(np.sum(x[: 50 - k] * x[k:], axis=1)) for k in range(11)]
    assert acf == pytest.approx(direct, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("bad, msg", [
    (np.full((100, 3), np.nan), "NaN"),
    (np.zeros((100, 2)), "3 numbers per step"),
    (np.zeros((4, 3)), "at least 8 time steps"),
])
def test_ir_rejects_bad_series(bad, msg):
    with pytest.raises(DataError, match=msg):
        ir_spectrum(bad, SpectrumOptions(timestep_fs=DT))


def test_ir_rejects_bad_options():
    m = harmonic_dipoles(n=100)
    with pytest.raises(ValueError, match="timestep"):
        ir_spectrum(m, SpectrumOptions(timestep_fs=0.0))
    with pytest.raises(ValueError, match="window"):
        ir_spectrum(m, SpectrumOptions(timestep_fs=DT, window="triangle"))
    with pytest.raises(ValueError, match="quantum correction"):
        ir_spectrum(m, SpectrumOptions(timestep_fs=DT, qcf="magic"))
    with pytest.raises(ValueError, match="correlation length"):
        ir_spectrum(m, SpectrumOptions(timestep_fs=DT, correlation_fs=1000.0))


def polarizability_series(n=4000, nu_iso=1000.0, nu_aniso=2500.0, seed=0):
    """alpha(t) = a(t) 1 + beta(t): trace oscillates at nu_iso, a traceless part at nu_aniso."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * DT
    base = rng.normal(size=(3, 3))
    base = 5 * np.eye(3) + 0.3 * (base + base.T)
    q = rng.normal(size=(3, 3))
    q = q + q.T
    q -= np.trace(q) / 3 * np.eye(3)
    return (base[None] + 0.2 * np.cos(_omega(nu_iso) * t)[:, None, None] * np.eye(3)
            + 0.1 * np.cos(_omega(nu_aniso) * t + 0.3)[:, None, None] * q)


def test_raman_invariants_are_rotation_invariant():
    alpha = polarizability_series(n=50)
    a, g2 = rotational_invariants(alpha)
    for seed in range(3):
        r = Rotation.random(random_state=seed).as_matrix()
        ar, g2r = rotational_invariants(np.einsum("ij,njk,lk->nil", r, alpha, r))
        assert ar == pytest.approx(a, rel=1e-12)
        assert g2r == pytest.approx(g2, rel=1e-10)
    # also with 9 numbers per frame, row-major
    assert rotational_invariants(alpha.reshape(50, 9))[1] == pytest.approx(g2)


def test_raman_spectra_rotation_invariant_and_separate_iso_from_aniso():
    alpha = polarizability_series()
    opts = SpectrumOptions(timestep_fs=DT)
    spec = raman_spectrum(alpha, opts)
    r = Rotation.random(random_state=7).as_matrix()
    rot = raman_spectrum(np.einsum("ij,njk,lk->nil", r, alpha, r), opts)
    for k in spec.columns:
        assert rot.columns[k] == pytest.approx(spec.columns[k], abs=1e-9)
    assert spec.peak_positions("isotropic", n_peaks=1)[0] == pytest.approx(1000.0, abs=3.0)
    assert spec.peak_positions("anisotropic", n_peaks=1)[0] == pytest.approx(2500.0, abs=3.0)
    nu = spec.wavenumber_cm1
    # the isotropic band is absent from the depolarised (VH) spectrum
    i1000 = np.argmin(np.abs(nu - 1000))
    assert spec.columns["perpendicular"][i1000] < 1e-3 * spec.columns["parallel"][i1000]


def test_raman_rejects_wrong_shape_and_nan():
    with pytest.raises(DataError, match="9 numbers per step"):
        raman_spectrum(np.zeros((100, 6)), SpectrumOptions(timestep_fs=DT))
    alpha = polarizability_series(n=100)
    alpha[10, 0, 0] = np.nan
    with pytest.raises(DataError, match="step"):
        raman_spectrum(alpha, SpectrumOptions(timestep_fs=DT))


def test_spectrum_csv_roundtrip(tmp_path):
    spec = ir_spectrum(harmonic_dipoles(n=400), SpectrumOptions(timestep_fs=DT), units="e*Bohr")
    path = tmp_path / "ir.csv"
    spec.to_csv(str(path))
    lines = path.read_text().splitlines()
    assert any("timestep_fs: 0.5" in l for l in lines)
    data = np.loadtxt(path, delimiter=",", comments="#", skiprows=sum(l.startswith("#") for l in lines) + 1)
    assert data.shape == (len(spec.wavenumber_cm1), 2)


def test_independent_trajectories_are_averaged():
    runs = [harmonic_dipoles(n=1000 + 100 * k, seed=k) for k in range(3)]
    spec = ir_spectrum(runs, SpectrumOptions(timestep_fs=DT))
    assert spec.meta["n_trajectories"] == 3 and spec.meta["correlation_fs"] == 500 * DT
    assert np.sort(spec.peak_positions(n_peaks=2)) == pytest.approx([1600, 3700], abs=5)
    alpha = [polarizability_series(n=800, seed=k) for k in range(2)]
    assert raman_spectrum(alpha, SpectrumOptions(timestep_fs=DT)).meta["n_trajectories"] == 2
