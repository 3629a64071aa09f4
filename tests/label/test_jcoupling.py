"""J coupling labels (issue 16): FC+SD against finite-field spin densities, DSO against grid
integration of the textbook formula, HD against experiment, rotation and atom-order equivariance,
storage round trips and clear per-structure errors."""

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

from psilearn.label.base import LabelError
from psilearn.label.jcoupling import coupling_pairs, hz_per_au, reduced_couplings
from psilearn.label.pyscf_labeler import PySCFLabeler

from .conftest import h2, water

#: CODATA 2018: deuteron magnetic moment 0.8574382338 mu_N, I = 1 (PySCF's table has no 2H)
G_DEUTERON = 0.8574382338


def skewed_water() -> Atoms:
    """Water with one H moved off the molecular plane: no pair tensor has accidental symmetry."""
    return Atoms("OH2", positions=[[0.0, 0.0, 0.117], [0.0, 0.757, -0.467], [0.12, -0.74, -0.49]])


def formaldehyde() -> Atoms:
    """Distorted H2CO: RHF/6-31G is triplet-unstable here (lowest triplet Hessian eigenvalue -0.0088 E_h)."""
    return Atoms("COH2", positions=[[0.0, 0.0, 0.0], [0.05, 0.02, 1.21], [0.94, 0.1, -0.55], [-0.9, -0.08, -0.6]])


def distorted_ammonia() -> Atoms:
    """NH3 without symmetry: four magnetic nuclei (14N, 1H), six pairs, triplet-stable at RHF/6-31G."""
    return Atoms("NH3", positions=[[0.0, 0.0, 0.1165], [0.0, 0.9397, -0.2718], [0.85, -0.42, -0.30], [-0.80, -0.50, -0.25]])


def _rhf(atoms, xc="hf", basis="6-31g", grid_level=3):
    lab = PySCFLabeler(xc, basis, grid_level=grid_level)
    mf, _ = lab.run_scf(lab.build_mol(atoms))
    return mf


def test_coupling_pairs_cutoff_and_isotopes():
    pos = np.array([[0, 0, 0], [0, 0, 1.0], [0, 0, 2.5], [0, 0, 3.0]])
    pairs, g, used = coupling_pairs(["C", "H", "Ar", "H"], pos, 3.0)
    assert pairs.tolist() == [[0, 1], [0, 3], [1, 3]]  # Ar has no magnetic isotope; C-H at exactly 3.0 kept
    assert used == "C:13C;H:1H;Ar:Ar (no magnetic isotope)" and g[2] == 0
    assert coupling_pairs(["C", "H", "Ar", "H"], pos, 2.9)[0].tolist() == [[0, 1], [1, 3]]


@pytest.mark.parametrize("xc,rows", [("hf", (0, 1, 2)), ("pbe0", (2,))])  # PBE0: one row (6 UKS runs), for time
def test_fc_sd_against_finite_field_spin_densities(xc, rows):
    """Independent route for the FC+SD term: psilearn's own FC+SD integrals S_xw(A) (the hfc operator,
    magnetic._spin_dipolar_integrals, not pyscf-properties' int1e_sa01sp) added with +-lam/2 (s = sigma/2)
    to the alpha/beta core Hamiltonian of a UHF/UKS run; by Hellmann-Feynman
    K_xy(A, B) = alpha^4 sum_w d/dlam_xw(A) <S_yw(B)/2 (D_alpha - D_beta)>, central differences,
    lam = 1e-4 a.u. Checks the triplet response, the spin-dipolar algebra and the tensor index order."""
    from pyscf import dft, scf
    from pyscf.data import nist

    from psilearn.label.magnetic import _spin_dipolar_integrals

    atoms = skewed_water()
    mf = _rhf(atoms, xc, grid_level=1)  # the UKS runs use the same (coarse, for time) grid
    mol = mf.mol
    pairs = np.array([[0, 1], [0, 2]])
    fcsd = reduced_couplings(mf, pairs, conv_tol=1e-11)["fcsd"] / nist.ALPHA**4
    ints = {ia: _spin_dipolar_integrals(mol, ia) / 2 for ia in range(3)}

    def spin_response(op, lam):
        u = scf.UHF(mol) if xc == "hf" else dft.UKS(mol, xc=xc).set(grids=mf.grids)
        h = u.get_hcore()
        base = type(u).energy_elec
        u.get_hcore = lambda *a, **k: np.array([h + lam * op, h - lam * op])
        u.energy_elec = lambda dm=None, h1e=None, vhf=None: (base(u, dm, h, vhf)[0] + lam * np.einsum("ij,ji", op, dm[0] - dm[1]), 0)
        u.conv_tol, u.conv_tol_grad, u.max_cycle, u.verbose = 1e-12, 1e-9, 200, 0
        dm = mf.make_rdm1() / 2
        u.kernel(dm0=(dm, dm))
        assert u.converged
        da, db = u.make_rdm1()
        return {b: np.einsum("ywij,ji->yw", ints[b], da - db) for b in (1, 2)}

    lam = 1e-4
    fd = {1: np.zeros((3, 3)), 2: np.zeros((3, 3))}
    for x in rows:
        for w in range(3):
            plus, minus = spin_response(ints[0][x, w], lam), spin_response(ints[0][x, w], -lam)
            for b in (1, 2):
                fd[b][x] += (plus[b][:, w] - minus[b][:, w]) / (2 * lam)
    for k, b in enumerate((1, 2)):
        scale = np.abs(fcsd[k]).max()
        assert np.abs(fd[b][rows, :] - fcsd[k][rows, :]).max() < 1e-3 * scale, (b, fd[b], fcsd[k])
        assert np.abs(fcsd[k] - np.eye(3) * np.trace(fcsd[k]) / 3).max() > 1e-2 * scale  # anisotropic: SD is there


def test_dso_against_grid_integration_of_the_textbook_formula():
    """K_DSO(A, B)_ab = alpha^4 <[(r_A.r_B) delta_ab - (r_B)_a (r_A)_b] / (r_A^3 r_B^3)>, from
    <A_A . A_B> with A_K = alpha^2 mu_K x r_K / r_K^3, integrated on a level-7 Becke grid. pyscf-properties
    returns the transpose; psilearn's tensor must match the formula, including its antisymmetric part."""
    from pyscf import dft
    from pyscf.data import nist

    mf = _rhf(distorted_ammonia())
    mol = mf.mol
    pairs = np.array([[0, 1], [0, 2], [1, 3], [2, 3]])
    dso = reduced_couplings(mf, pairs)["dso"] / nist.ALPHA**4
    grids = dft.gen_grid.Grids(mol)
    grids.level = 7
    grids.build()
    ao = mol.eval_gto("GTOval", grids.coords)
    rho = np.einsum("gp,pq,gq->g", ao, mf.make_rdm1(), ao)
    for k, (i, j) in enumerate(pairs):
        ra, rb = grids.coords - mol.atom_coord(i), grids.coords - mol.atom_coord(j)
        w = grids.weights * rho / (np.linalg.norm(ra, axis=1) ** 3 * np.linalg.norm(rb, axis=1) ** 3)
        ref = np.eye(3) * np.einsum("g,gx,gx", w, ra, rb) - np.einsum("g,ga,gb->ab", w, rb, ra)
        tol = 1e-5 * np.abs(ref).max()
        assert np.abs(dso[k] - ref).max() < tol, (i, j)
        assert np.abs(ref - ref.T).max() > 100 * tol  # the transposed tensor would fail


def test_hd_coupling_against_experiment():
    """J(HD) = 43 Hz (gas phase). B3LYP/aug-cc-pVTZ at r = 0.7414 A: J(HH) * g_D/g_H = 42.2 Hz here;
    with all four terms and psilearn's Hz conversion a wrong factor (2, alpha, g) would be far off."""
    out = PySCFLabeler("b3lyp", "aug-cc-pvtz", observables=("jcoupling",)).label(h2(0.7414))
    assert out.info["jcoupling_pairs"].tolist() == [0, 1] and out.info["jcoupling_isotopes"] == "H:1H"
    j = out.info["jcoupling"].reshape(3, 3)
    j_hd = out.info["jcoupling_iso"][0] * G_DEUTERON / 5.58569468
    assert j_hd == pytest.approx(43.0, rel=0.05)
    assert np.trace(j) / 3 == pytest.approx(out.info["jcoupling_iso"][0], rel=1e-12)
    assert j[0, 0] == pytest.approx(j[1, 1], rel=1e-8) and abs(j[0, 1]) < 1e-6 and j[2, 2] < j[0, 0]  # axial


def test_rotation_and_atom_order():
    lab = PySCFLabeler("hf", "6-31g", observables=("jcoupling",))
    a = distorted_ammonia()
    rot = Rotation.from_euler("zyx", [0.7, -1.1, 2.3]).as_matrix()
    b = a.copy()
    b.positions = (a.positions - a.positions.mean(axis=0)) @ rot.T + [0.3, -1.2, 2.0]
    la, lb = lab.label(a), lab.label(b)
    assert la.info["jcoupling_pairs"].tolist() == [0, 1, 0, 2, 0, 3, 1, 2, 1, 3, 2, 3]
    j0, j1 = la.info["jcoupling"].reshape(-1, 3, 3), lb.info["jcoupling"].reshape(-1, 3, 3)
    scale = np.abs(j0).max()
    assert np.abs(np.einsum("ab,kbc,dc->kad", rot, j0, rot) - j1).max() < 1e-6 * scale
    assert np.abs(j0 - j1).max() > 1e-2 * scale
    assert lb.info["jcoupling_iso"] == pytest.approx(la.info["jcoupling_iso"], rel=1e-6, abs=1e-6 * scale)
    perm = [3, 1, 0, 2]  # new atom k is old atom perm[k]
    lc = lab.label(a[perm])
    new_of = {old: new for new, old in enumerate(perm)}
    pairs_c = [tuple(p) for p in lc.info["jcoupling_pairs"].reshape(-1, 2)]
    j2 = lc.info["jcoupling"].reshape(-1, 3, 3)
    antisym = 0.0
    for k, (i, j) in enumerate(la.info["jcoupling_pairs"].reshape(-1, 2)):
        ni, nj = new_of[i], new_of[j]
        t = j2[pairs_c.index((ni, nj))] if ni < nj else j2[pairs_c.index((nj, ni))].T
        assert np.abs(t - j0[k]).max() < 1e-4 * scale, (i, j)
        antisym = max(antisym, np.abs(j0[k] - j0[k].T).max())
    assert antisym > 1e-3 * scale  # 10x the tolerance: a missing transpose would fail


def test_extxyz_and_database_round_trip_of_one_pair(tmp_path):
    from psilearn.data import read_structures, write_structures
    from psilearn.label.campaign import run_campaign
    from psilearn.label.store import LabelStore

    lab = PySCFLabeler("hf", "sto-3g", observables=("jcoupling",))
    out = lab.label(h2())
    write_structures(tmp_path / "o.xyz", [out], format="extxyz")
    back = read_structures(tmp_path / "o.xyz")[0]
    summary = run_campaign([h2()], lab, tmp_path / "l.db", workers=0, progress=False)
    assert summary.done == 1
    store = LabelStore(tmp_path / "l.db", create=False)
    stored = store.to_atoms(next(store.rows(label_status="ok")))
    for frame in (back, stored):
        assert isinstance(frame.info["jcoupling_iso"], np.ndarray) and frame.info["jcoupling_iso"].shape == (1,)
        assert frame.info["jcoupling_pairs"].dtype.kind == "i" and frame.info["jcoupling_pairs"].tolist() == [0, 1]
        assert frame.info["jcoupling"].shape == (9,)
        assert frame.info["jcoupling"] == pytest.approx(out.info["jcoupling"], rel=1e-6)
        assert frame.info["jcoupling_iso"] == pytest.approx(out.info["jcoupling_iso"], rel=1e-6)
        assert frame.info["jcoupling_isotopes"] == "H:1H" and frame.info["jcoupling_cutoff"] == 4.0


@pytest.mark.parametrize("atoms,words", [
    (Atoms("CH3", positions=[[0, 0, 0], [0, 1.08, 0], [0.94, -0.54, 0], [-0.94, -0.54, 0]], info={"multiplicity": 2}),
     "closed-shell"),
    (Atoms("Kr2", positions=[[0, 0, 0], [0, 0, 4.0]]), "no hyperfine isotope data for element Kr"),
    (Atoms("Ar2", positions=[[0, 0, 0], [0, 0, 3.7]]), "no pair of magnetic nuclei within 4 A"),
])
def test_clear_per_structure_errors(atoms, words):
    with pytest.raises(LabelError, match=words) as err:
        PySCFLabeler("hf", "sto-3g", observables=("jcoupling",)).label(atoms)
    assert err.value.stage == "jcoupling" and len(str(err.value).splitlines()) == 1


def test_density_fitting_is_used_and_close():
    exact = PySCFLabeler("hf", "6-31g", observables=("jcoupling",)).label(water()).info["jcoupling_iso"]
    fitted = PySCFLabeler("hf", "6-31g", observables=("jcoupling",), density_fit=True).label(water()).info["jcoupling_iso"]
    rel = np.abs(fitted - exact).max() / np.abs(exact).max()
    assert 1e-7 < rel < 1e-3


def test_triplet_instability_is_refused():
    """-h^T A^-1 h > 0 for some FC/SD right-hand side proves the triplet Hessian A indefinite."""
    with pytest.raises(LabelError, match="triplet-unstable") as err:
        PySCFLabeler("hf", "6-31g", observables=("jcoupling",)).label(formaldehyde())
    assert err.value.stage == "jcoupling" and "pyscf-properties" not in str(err.value)


def test_cutoff_ecp_and_campaign_continues(tmp_path):
    from psilearn.label.campaign import run_campaign

    with pytest.raises(LabelError, match="no pair of magnetic nuclei within 0.5 A"):
        PySCFLabeler("hf", "sto-3g", observables=("jcoupling",), jcoupling_cutoff=0.5).label(h2())
    from pyscf import gto

    from psilearn.label.jcoupling import check_jcoupling_mol

    with pytest.raises(LabelError, match="effective core potentials"):  # the labeler builds no ECP; the API refuses one
        check_jcoupling_mol(gto.M(atom="H 0 0 0; I 0 0 1.61", basis="def2-svp", ecp="def2-svp", verbose=0))
    with pytest.raises(ValueError, match="jcoupling_cutoff must be > 0"):
        PySCFLabeler("hf", "sto-3g", observables=("jcoupling",), jcoupling_cutoff=0)
    lab = PySCFLabeler("hf", "sto-3g", observables=("jcoupling",), jcoupling_cutoff=1.2)
    assert lab.spec()["jcoupling_cutoff"] == 1.2 and "jcoupling_cutoff" not in PySCFLabeler("hf", "sto-3g").spec()
    summary = run_campaign([water(), Atoms("Ar2", positions=[[0, 0, 0], [0, 0, 3.7]])], lab, tmp_path / "l.db",
                           workers=0, progress=False)
    assert summary.done == 1 and summary.failed == 1 and "no pair" in summary.failures[0][3]


def test_cli_cutoff_flag(tmp_path, capsys):
    import ase.io

    from psilearn.cli.main import main as cli_main
    from psilearn.data import read_structures

    inp, out = tmp_path / "in.xyz", tmp_path / "out.xyz"
    ase.io.write(inp, water())
    argv = ["label", str(inp), "--method", "hf/sto-3g", "--db", str(tmp_path / "l.db"), "--workers", "0", "--no-progress"]
    assert cli_main(argv + ["--observables", "jcoupling", "--jcoupling-cutoff", "1.2", "-o", str(out)]) == 0
    frame = read_structures(out)[0]
    assert frame.info["jcoupling_pairs"].tolist() == [0, 1, 0, 2] and frame.info["jcoupling_cutoff"] == 1.2
    assert hz_per_au() == pytest.approx(4.879e8, rel=1e-3)
    capsys.readouterr()
    assert cli_main(argv + ["--jcoupling-cutoff", "1.2"]) == 2
    assert "--jcoupling-cutoff applies to --observables jcoupling only" in capsys.readouterr().err
