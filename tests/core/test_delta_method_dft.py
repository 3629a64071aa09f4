"""`--baseline-method XC/BASIS` for a Cartesian tensor: Δ-learning of the polarizability on an HF/STO-3G
baseline that psilearn computes with its PySCF labeler. The baseline is checked against an independent
route (finite differences of the SCF dipole in a uniform field, written here with PySCF directly), and
the Δ model's prediction against O(3) rotations of the input (the labeler recomputes the baseline of the
rotated frames, so this also tests that the labeled polarizability rotates as a tensor)."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from psilearn.data import read_structures
from psilearn.models import load

pytest.importorskip("pyscf")

MOLECULES = str(importlib.resources.files("psilearn") / "demo_data" / "molecules.xyz")
TRAIN, TEST = f"{MOLECULES}@::40", f"{MOLECULES}@25:125:40"  # 8 training frames, 3 new ones
CFG = "soap: {cutoff: 4.0, max_radial: 4, max_angular: 3}\nmodel: {n_sparse: 20}\n"


def _finite_field_alpha(atoms, step: float = 1e-3) -> np.ndarray:
    """alpha_ab = d mu_a / d F_b (Bohr^3) of RHF/STO-3G by central differences: the field enters the core
    Hamiltonian as +F.r for the electrons (charge -1), independently of psilearn's CPHF route."""
    from pyscf import gto, scf

    mol = gto.M(atom=[(s, p) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)], basis="sto-3g",
                unit="Angstrom", charge=int(atoms.info.get("charge", 0)), verbose=0)
    r = mol.intor("int1e_r")
    h0 = scf.hf.get_hcore(mol)
    alpha = np.zeros((3, 3))
    for b in range(3):
        mus = []
        for sign in (1.0, -1.0):
            mf = scf.RHF(mol)
            mf.conv_tol = 1e-12
            mf.get_hcore = lambda *_, f=sign * step: h0 + f * r[b]
            mf.kernel()
            mus.append(mf.dip_moment(unit="AU", verbose=0))
        alpha[:, b] = (mus[0] - mus[1]) / (2 * step)
    return alpha


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from psilearn.cli.main import main

    tmp = tmp_path_factory.mktemp("dftbase")
    cfg = tmp / "c.yaml"
    cfg.write_text(CFG)
    model = tmp / "alpha.model"
    assert main(["fit", TRAIN, "--target", "alpha", "--tensor", "ij=ji", "--units", "Bohr^3",
                 "--baseline-method", "hf/sto-3g", "--config", str(cfg), "-o", str(model)]) == 0
    return load(model)


def test_records_the_pyscf_method(fitted):
    from psilearn.label.registry import make_labeler

    bm = fitted.baseline_method
    assert (bm.method, bm.observable, bm.label) == ("hf/sto-3g", "polarizability", "alpha")
    assert bm.method_hash == make_labeler("hf/sto-3g", ("polarizability",)).method_hash()


def test_baseline_matches_an_independent_finite_field_route(fitted):
    new = read_structures(TEST)
    p = fitted.predict(new)
    for a, base, total, corr in zip(new, p.baseline, p.values, p.correction):
        ref = _finite_field_alpha(a)
        np.testing.assert_allclose(np.asarray(base).reshape(3, 3), ref, atol=2e-4 * np.abs(ref).max())
        np.testing.assert_allclose(np.asarray(total), np.asarray(base) + np.asarray(corr), atol=1e-12)
        # STO-3G polarizabilities are far too small; the learned correction carries most of the PBE0 value
        assert np.trace(np.asarray(total).reshape(3, 3)) > 1.5 * np.trace(ref)


def test_prediction_rotates_and_reflects_as_a_tensor(fitted):
    new = read_structures(TEST)
    rot = Rotation.random(random_state=3).as_matrix() @ np.diag([1.0, 1.0, -1.0])  # an improper rotation
    moved = []
    for a in new:
        b = a.copy()
        b.positions = (a.positions - a.positions.mean(0)) @ rot.T + np.array([1.0, -2.0, 0.5])
        b.info = {k: v for k, v in a.info.items() if k in ("charge", "multiplicity")}
        moved.append(b)
    p, q = fitted.predict(new), fitted.predict(moved)
    for x, y in zip(p.values, q.values):
        x, y = np.asarray(x).reshape(3, 3), np.asarray(y).reshape(3, 3)
        np.testing.assert_allclose(y, rot @ x @ rot.T, atol=1e-5 * np.abs(x).max())
        np.testing.assert_allclose(y, y.T, atol=1e-10)
