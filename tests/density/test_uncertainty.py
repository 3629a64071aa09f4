"""Predictive covariance of the density model (density.uncertainty): symmetric PSD, no charge variance
under the electron-count constraint, equivariant block norms, linear propagation to the dipole and ESP,
hold-out calibration on the fixture set, save/load, the memory guard and the CG refusal."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from tests.density._shared import SOAP

from psilearn.models.factory import fit_model


def _fit(data, **density):
    return fit_model("density", data.target, data, {"soap": SOAP, "density": {"n_sparse": 12, "uncertainty": True, **density}})


@pytest.fixture(scope="module")
def split(data):
    n = len(data)
    train = data.subset(np.arange(6, n))
    return train, [data.frames[i] for i in range(6)]


@pytest.fixture(scope="module")
def unc_model(split):
    return _fit(split[0])


def test_covariance_is_symmetric_psd_and_charge_is_certain(unc_model, split, data):
    frames = split[1]
    pred = unc_model.predict(frames, return_cov=True)
    free = unc_model.predict(frames, return_cov=True, conserve=False)
    for k, a in enumerate(frames):
        from psilearn.models.density.constraint import structure_metric

        cov, cov_free = pred.cov[k], free.cov[k]
        assert np.allclose(cov, cov.T, atol=0)
        eig = np.linalg.eigvalsh(cov_free)
        assert eig.min() > -1e-10 * eig.max() and eig.max() > 0
        assert np.linalg.eigvalsh(cov).min() > -1e-10 * eig.max()
        _, q = structure_metric(data.target, a)
        var_free, var = q @ cov_free @ q, q @ cov @ q
        assert var_free > 1e-12                       # without the constraint the count is uncertain
        assert abs(var) < 1e-9 * var_free and abs(var) < 1e-12 * (q @ q) * eig.max()   # with it, it is not (rounding)
        assert np.allclose(pred.std[k], np.sqrt(np.clip(np.diag(cov), 0, None)))


def test_uncertainty_is_equivariant(unc_model, split):
    from psilearn.models.density.uncertainty import block_norms

    a = split[1][0]
    b = a.copy()
    b.positions = (a.positions - a.get_center_of_mass()) @ Rotation.random(random_state=4).as_matrix().T + [0.4, 0.1, -0.3]
    va, vb = (unc_model.predict([x]).std[0] ** 2 for x in (a, b))
    na, nb = block_norms(unc_model.target, a, va), block_norms(unc_model.target, b, vb)
    assert np.abs(va - vb).max() > 1e-6 * va.max()   # individual components do change
    assert np.allclose(na, nb, rtol=1e-6, atol=1e-12 * na.max())
    # the dipole covariance rotates with the molecule: Sigma_mu(Rx) = R Sigma_mu(x) R^T
    from psilearn.observe.density.multipoles import dipole_covariance
    from psilearn.observe.density.structure import fitted_density

    rot = Rotation.random(random_state=4).as_matrix()
    sig = []
    for x in (a, b):
        p = unc_model.predict([x], return_cov=True)
        sig.append(dipole_covariance(fitted_density(x, p.coefficients[0], p.aux_basis), p.cov[0]))
    assert np.allclose(rot @ sig[0] @ rot.T, sig[1], rtol=1e-5, atol=1e-6 * np.abs(sig[0]).max())


def test_dipole_and_esp_std_are_the_linear_propagation_and_calibrated(unc_model, split, data):
    from dataclasses import replace

    from psilearn.observe.density.derive import DeriveOptions, derive_all, model_densities
    from psilearn.observe.density.esp import esp_of
    from psilearn.observe.density.multipoles import dipole, multipoles
    from psilearn.observe.density.structure import fitted_density

    frames = split[1]
    coef, bases, covs = model_densities(unc_model, frames, with_cov=True)
    pts = [np.array([[3.0, 0.5, 0.0], [-0.5, -3.5, 1.0]])]
    out, rows = derive_all(frames, coef, bases, DeriveOptions(esp_points=pts), progress=False, covariances=covs)
    z = []
    for k, a in enumerate(out):
        std = a.info["density_dipole_std"]
        assert std.shape == (3,) and np.all(std > 0) and rows[k]["dipole_std_debye"] > 0
        # the Jacobians of c -> mu and c -> V by finite differences (both are affine in c)
        dens = fitted_density(a, coef[k], bases[k])
        mu0, v0 = multipoles(dens)[0], esp_of(dens, pts[0])
        cols = [replace(dens, coefficients=coef[k] + np.eye(len(coef[k]))[p]) for p in range(len(coef[k]))]
        j_mu = np.stack([multipoles(d)[0] - mu0 for d in cols], axis=1)
        j_v = np.stack([esp_of(d, pts[0]) - v0 for d in cols], axis=1)
        assert np.allclose(np.sqrt(np.diag(j_mu @ covs[k] @ j_mu.T)), std, rtol=1e-6)
        assert np.allclose(np.sqrt(np.diag(j_v @ covs[k] @ j_v.T)), a.info["density_esp_std"], rtol=1e-6)
        j_q = np.stack([multipoles(d)[1].reshape(9) - multipoles(dens)[1].reshape(9) for d in cols], axis=1)
        assert np.allclose(np.sqrt(np.diag(j_q @ covs[k] @ j_q.T)), a.info["density_quadrupole_std"], rtol=1e-6, atol=1e-12)
        ref = dipole(a, data.coefficients(k), bases[k])
        z.extend((a.info["density_dipole"] - ref) / std)
    print(f"fixture dipole z-score std {np.std(z):.3f} over {len(z)} components")
    assert 0.05 < np.std(z) < 20, np.std(z)    # broad: 6 structures, 18 z-scores


def test_save_load_round_trip(unc_model, split, tmp_path):
    from psilearn.models import load

    unc_model.save(tmp_path / "m")
    back = load(tmp_path / "m")
    p0, p1 = unc_model.predict(split[1], return_cov=True), back.predict(split[1], return_cov=True)
    for a, b in zip(p0.cov, p1.cov):
        assert np.array_equal(a, b)
    assert back.posterior["sigma2"] == unc_model.posterior["sigma2"]


def test_refusals(unc_model, split, data, monkeypatch):
    from psilearn.errors import ConfigError, MemoryBudgetError

    with pytest.raises((ConfigError, ValueError), match="uncertainty"):
        _fit(split[0], solver="cg")
    plain = fit_model("density", data.target, data, {"soap": SOAP, "density": {"n_sparse": 8}})
    assert plain.predict(split[1][:1]).std is None
    with pytest.raises(ValueError, match="uncertainty: true"):
        plain.predict(split[1][:1], return_cov=True)
    n = unc_model.metadata["n_weights"]  # above the direct solve's 3 n^2 x 8 bytes, below the posterior's 4
    monkeypatch.setenv("PSILEARN_MEMORY_LIMIT", f"{int(3.6 * 8 * n * n / 0.8 / 1024)}K")
    with pytest.raises(MemoryBudgetError, match=r"^density-model normal equations and weight posterior \(density.uncertainty\) \(\d+ weights") as err:
        _fit(split[0])
    assert "\n" not in str(err.value)


def test_cli_density_from_an_uncertainty_model(unc_model, split, tmp_path, capsys):
    import ase.io

    from psilearn.cli.main import main as cli_main

    unc_model.save(tmp_path / "m")
    ase.io.write(tmp_path / "in.xyz", split[1][:2])
    out = tmp_path / "out.xyz"
    assert cli_main(["density", str(tmp_path / "m"), str(tmp_path / "in.xyz"), "-o", str(out), "--esp-surface", "-q"]) == 0
    assert "std|mu|(D)" in capsys.readouterr().out
    assert cli_main(["predict", str(tmp_path / "m"), str(tmp_path / "in.xyz"), "-o", str(tmp_path / "pred.xyz")]) == 0
    p = ase.io.read(tmp_path / "pred.xyz")
    assert p.info["density_coefficients_std"].shape == p.info["density_coefficients"].shape
    assert np.all(p.info["density_coefficients_std"] > 0)
    for a in ase.io.read(out, ":"):
        assert a.info["density_dipole_std"].shape == (3,) and np.all(a.info["density_dipole_std"] > 0)
        std = a.info["density_esp_surface_std"]
        assert std.shape == a.info["density_esp_surface"].shape and np.all(std > 0)


def test_hirshfeld_std_is_the_linear_propagation(water_pbe):
    """q = Z - H c is affine in c: with a rank-3 covariance V V^T, var q_A = sum_k (H v_k)_A^2, and
    H v_k = q(c) - q(c + v_k) by three more Hirshfeld integrations (exact up to the grid sum's rounding)."""
    from dataclasses import replace

    from psilearn.observe.density.derive import DeriveOptions, derive_structure
    from psilearn.observe.density.hirshfeld import hirshfeld_of
    from psilearn.observe.density.structure import fitted_density

    a = water_pbe.labelled
    c, basis = a.info["density_coefficients"], a.info["density_aux_basis"]
    dens = fitted_density(a, c, basis)
    v = np.random.default_rng(5).normal(scale=1e-3, size=(len(c), 3))
    q0 = hirshfeld_of(dens, grid_level=1)
    q, std = hirshfeld_of(dens, grid_level=1, cov=v @ v.T)
    assert np.allclose(q, q0, rtol=0, atol=1e-12)
    hv = np.stack([q0 - hirshfeld_of(replace(dens, coefficients=c + v[:, k]), grid_level=1) for k in range(3)], axis=1)
    assert np.all(std > 0) and np.allclose(std, np.sqrt((hv**2).sum(axis=1)), rtol=1e-8)
    out, row = derive_structure(0, a, c, basis, DeriveOptions(multipoles=False, hirshfeld=True), cov=v @ v.T)
    assert out.arrays["density_hirshfeld_charges_std"].shape == (3,) and np.all(out.arrays["density_hirshfeld_charges_std"] > 0)
