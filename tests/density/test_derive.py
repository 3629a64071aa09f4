"""Observables derived from fitted densities (psilearn.observe.density), each against an independent route.

Reference: the session's PBE/def2-SVP water (conftest.water_pbe): the labeler's coefficients and an SCF
of the same structure (its density matrix gives the independent dipole, quadrupole, ESP, Hirshfeld)."""

import warnings

import numpy as np
import pytest
from ase import Atoms, units

from psilearn.errors import DataError
from psilearn.label.multipoles import centre_of_mass_bohr, quadrupole_moment
from psilearn.observe.density import (
    DensityWarning,
    dipole,
    electrostatic_potential,
    fitted_density,
    hirshfeld_charges,
    quadrupole,
    scf_guess_cycles,
)
from psilearn.observe.density.multipoles import multipoles, traceless
from psilearn.observe.density.structure import density_values

from .conftest import AUX


def _c(run):
    return run.labelled.info["density_coefficients"]


@pytest.fixture(scope="module")
def fine_grid(water_pbe):
    from pyscf.dft import gen_grid

    g = gen_grid.Grids(water_pbe.mol)
    g.level = 5
    return g.build()


def test_dipole_is_the_labelers_fit_and_the_dft_dipole_within_the_fit_error(water_pbe):
    info = water_pbe.labelled.info
    mu = dipole(water_pbe.labelled, _c(water_pbe), AUX)
    err = np.linalg.norm(mu - info["dipole_moment"])
    assert abs(err - info["density_fit_dipole_error"]) < 1e-9 and err < 1e-3  # e*Bohr


def test_multipoles_equal_a_grid_integration_of_the_fitted_density(water_pbe, fine_grid):
    d = fitted_density(water_pbe.labelled, _c(water_pbe), AUX)
    origin = centre_of_mass_bohr(water_pbe.mol)
    w = fine_grid.weights * density_values(d.auxmol, d.coefficients, fine_grid.coords)
    r = fine_grid.coords - origin
    z, rz = water_pbe.mol.atom_charges(), water_pbe.mol.atom_coords() - origin
    mu_grid = z @ rz - w @ r
    second = np.einsum("k,ka,kb->ab", z, rz, rz) - np.einsum("g,ga,gb->ab", w, r, r)
    mu, theta = multipoles(d)
    assert abs(w.sum() - d.fitted_electrons) < 1e-7
    assert np.abs(mu - mu_grid).max() < 1e-7 and np.abs(theta - traceless(second)).max() < 1e-6


def test_quadrupole_matches_the_scf_within_the_fit_error(water_pbe):
    theta = quadrupole(water_pbe.labelled, _c(water_pbe), AUX)
    ref = quadrupole_moment(water_pbe.mol, water_pbe.mf.make_rdm1())
    assert np.allclose(theta, theta.T) and abs(np.trace(theta)) < 1e-12
    assert np.abs(theta - ref).max() < 0.05  # e*Bohr^2; measured 0.034 (the Coulomb fit's second-moment error)


def test_esp_matches_the_scf_density_matrix(water_pbe):
    a = water_pbe.labelled
    rng = np.random.default_rng(0)
    pts = a.positions.mean(0) + rng.normal(size=(300, 3)) * 2.0
    dist = np.linalg.norm(pts[:, None] - a.positions[None], axis=-1).min(1)
    pts, dist = pts[dist > 0.5], dist[dist > 0.5]
    v = electrostatic_potential(a, _c(water_pbe), AUX, pts)
    mol, b = water_pbe.mol, pts / units.Bohr
    electronic = -np.einsum("gij,ij->g", mol.intor("int1e_grids", grids=b), water_pbe.mf.make_rdm1())
    nuclear = (mol.atom_charges() / np.linalg.norm(b[:, None] - mol.atom_coords()[None], axis=-1)).sum(1)
    err = np.abs(v - (nuclear + electronic))
    assert err.max() < 3e-3 and err[dist > 2.0].max() < 5e-4  # Hartree/e; measured 1.5e-3 and 3e-4


def test_esp_far_away_is_the_multipole_expansion(water_pbe):
    a = water_pbe.labelled
    d = fitted_density(a, _c(water_pbe), AUX)
    mu, _ = multipoles(d)
    origin = centre_of_mass_bohr(water_pbe.mol)
    direction = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    r = 60.0  # Bohr
    v = electrostatic_potential(a, _c(water_pbe), AUX, ((origin + r * direction) * units.Bohr)[None])
    net = 10 - d.fitted_electrons  # the fit's tiny excess charge, e
    assert abs(v[0] - (net / r + mu @ direction / r**2)) < 2e-6


def test_cube_round_trip_and_electron_count(water_pbe, tmp_path):
    from ase.io.cube import read_cube_data

    from psilearn.observe.density.cube import box_grid, write_density_cube, write_esp_cube

    d = fitted_density(water_pbe.labelled, _c(water_pbe), AUX)
    n = write_density_cube(tmp_path / "w.cube", d, spacing=0.1, margin=3.0)
    data, atoms = read_cube_data(str(tmp_path / "w.cube"))
    grid = box_grid(d.atoms, 0.1, 3.0)
    assert data.shape == grid.shape and np.abs(atoms.positions - d.atoms.positions).max() < 1e-5
    assert abs(data.sum() * grid.voxel_bohr3 - n) < 1e-4 and abs(n - 10) < 0.1  # measured 10.056 (O core on a 0.1 A grid)
    k = np.unravel_index(np.argmax(data), data.shape)
    point = grid.origin + np.array(k) * grid.spacing
    assert abs(density_values(d.auxmol, d.coefficients, point[None] / units.Bohr)[0] - data[k]) < 1e-5 * data[k]
    esp = write_esp_cube(tmp_path / "e.cube", d, spacing=0.4, margin=2.0)
    back, _ = read_cube_data(str(tmp_path / "e.cube"))
    assert np.allclose(back, esp, rtol=1e-5)


def test_hirshfeld_sums_to_the_charge_and_matches_the_labeler(water_pbe):
    from psilearn.label.hirshfeld import hirshfeld_charges as scf_hirshfeld

    q = hirshfeld_charges(water_pbe.labelled, _c(water_pbe), AUX, basis="def2-svp")
    d = fitted_density(water_pbe.labelled, _c(water_pbe), AUX)
    ref = scf_hirshfeld(water_pbe.mol, water_pbe.mf.make_rdm1(), water_pbe.mf.grids)
    assert abs(q.sum() + (d.fitted_electrons - 10)) < 1e-4
    assert np.abs(q - ref).max() < 1e-3 and q[0] < -0.2  # e; measured 1.6e-4


def test_coulomb_matrix_is_pyscfs_density_fitted_j(water_pbe):
    from pyscf import dft

    from psilearn.label.density import fit_coefficients
    from psilearn.observe.density.fock import coulomb_matrix

    mol, dm = water_pbe.mol, water_pbe.mf.make_rdm1()
    c = fit_coefficients(mol, water_pbe.auxmol, dm)
    j_ref = dft.RKS(mol).density_fit(auxbasis=AUX).get_j(mol, dm)
    assert np.abs(coulomb_matrix(mol, water_pbe.auxmol, c) - j_ref).max() < 1e-8


def test_scf_guess_from_the_exact_fit_saves_cycles(water_pbe):
    r = scf_guess_cycles(water_pbe.labelled, _c(water_pbe), AUX, "pbe/def2-svp", conv_tol=1e-9)
    assert r.converged_guess and r.converged_default and abs(r.energy_guess - r.energy_default) < 1e-7
    assert r.cycles_guess < r.cycles_default  # measured 4 vs 7


def test_errors_are_one_line(water_pbe):
    a, c = water_pbe.labelled, _c(water_pbe)
    with pytest.raises(DataError, match=r"H2O: 100 density coefficients, but this structure has \d+ functions"):
        dipole(a, c[:100], AUX)
    cell = a.copy()
    cell.cell, cell.pbc = np.eye(3) * 10, True
    with pytest.raises(DataError, match="molecules only"):
        dipole(cell, c, AUX)
    with pytest.raises(DataError, match="element Li has no functions in auxiliary basis 'cc-pvdz-jkfit'"):
        dipole(Atoms("LiH", positions=[[0, 0, 0], [0, 0, 1.6]]), np.zeros(10), "cc-pvdz-jkfit")
    with pytest.raises(DataError, match="ESP point 0 is on atom 1"):
        electrostatic_potential(a, c, AUX, a.positions[1:2])
    with pytest.raises(DataError, match="needs a PySCF method"):
        scf_guess_cycles(a, c, AUX, "gfn2")
    with pytest.raises(DataError, match="meta-GGA"):
        scf_guess_cycles(a, c, AUX, "tpss/sto-3g")
    with pytest.warns(DensityWarning, match="holds 8.000 electrons but the structure .* has 10"):
        fitted_density(a, c * 0.8, AUX)
    for err in (lambda: dipole(a, c, "nosuch-jkfit"), lambda: dipole(a, ["x"] * len(c), AUX)):
        with pytest.raises(DataError) as exc:
            err()
        assert "\n" not in str(exc.value)


def test_no_warning_for_the_labels(water_pbe):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted_density(water_pbe.labelled, _c(water_pbe), AUX)


def test_scf_guess_open_shell_converges_to_the_same_state():
    """UKS: the same orbitals for both spins, occupied 5 alpha / 4 beta (OH radical, measured 8 -> 7 cycles)."""
    from psilearn.label import make_labeler

    a = make_labeler("pbe/def2-svp", "density").label(Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]]))
    assert a.info["multiplicity"] == 2
    r = scf_guess_cycles(a, a.info["density_coefficients"], AUX, "pbe/def2-svp")
    assert r.converged_guess and abs(r.energy_guess - r.energy_default) < 1e-6 and r.cycles_guess <= r.cycles_default


@pytest.mark.parametrize("xc", ["pbe", "lda,vwn"])
def test_xc_matrix_is_the_derivative_of_the_xc_energy(water_pbe, xc):
    """Tr(V_xc[rho_fit] dD) = d/de E_xc[rho_fit + e rho(dD)] (central difference on the same grid)."""
    from pyscf.dft import gen_grid, numint

    from psilearn.observe.density.fock import xc_matrix

    mol, aux, c = water_pbe.mol, water_pbe.auxmol, _c(water_pbe)
    grids = gen_grid.Grids(mol)
    grids.level = 1
    grids.build()
    ni = numint.NumInt()
    xctype = ni._xc_type(xc)
    d = np.random.default_rng(1).normal(size=(mol.nao, mol.nao)) * 0.01
    d = d + d.T
    deriv = 1 if xctype == "GGA" else 0
    ao, ao_aux = ni.eval_ao(mol, grids.coords, deriv=deriv), ni.eval_ao(aux, grids.coords, deriv=deriv)
    rho_fit = ao_aux @ c if not deriv else np.einsum("xgp,p->xg", ao_aux, c)
    rho_d = numint.eval_rho(mol, ao, d, xctype=xctype)

    def energy(e):
        rho = rho_fit + e * rho_d
        exc = ni.eval_xc_eff(xc, rho, deriv=0, xctype=xctype)[0]
        return grids.weights @ (exc * (rho[0] if deriv else rho))

    h = 1e-4
    fd = (energy(h) - energy(-h)) / (2 * h)
    tr = np.einsum("ij,ij", xc_matrix(ni, xc, grids, mol, aux, c), d)
    assert abs(fd) > 1e-3 and abs(tr - fd) < 1e-8  # measured (pbe) 0.0927488 both, 2e-11 apart
