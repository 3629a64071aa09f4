"""Hamiltonian labels: what is stored, equivariance under rotations (proper and improper) and atom
permutations of relabelled SCFs, orbital energies from (H, S), and one-line refusals."""

import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.transform import Rotation

from psilearn.label.base import LabelError
from psilearn.targets import HamiltonianTarget

from .conftest import water

#: Measured (HF/def2-SVP water, conv_tol 1e-12): 2.3e-14 Ha proper, ~2e-14 Ha improper (largest |c| ~ 35 Ha).
ROTATION_TOL = 1e-10


def e3nn_d(L: int, parity: int, rotation: np.ndarray) -> np.ndarray:
    """e3nn's Wigner D of Irrep(L, parity), built in float64 (e3nn builds its generators in torch's
    default dtype: in float32 the D matrices are only good to ~1e-7)."""
    import torch
    from e3nn import o3

    from psilearn.targets.ao_basis import _float64

    with _float64():
        r = torch.as_tensor(np.asarray(rotation, dtype=np.float64))
        return o3.Irrep(L, parity).D_from_matrix(r).numpy()


def test_stored_layout(water_hf, labeler):
    info = water_hf.info
    assert info["hamiltonian"].shape == info["overlap"].shape == (24 * 24,)
    assert info["orbital_energies"].shape == info["mo_occ"].shape == (24,)
    assert info["mo_occ"].sum() == 10
    assert info["hamiltonian_basis"] == "def2-svp"
    assert info["hamiltonian_shells"] == "H:0,0,1;O:0,0,0,1,1,2"
    mol = labeler.build_mol(water())
    mf, _ = labeler.run_scf(mol)  # an independent SCF: the stored F and S are PySCF's, in its AO order
    assert np.abs(info["overlap"] - mol.intor("int1e_ovlp").ravel()).max() < 1e-14
    assert np.abs(info["hamiltonian"] - mf.get_fock().ravel()).max() < 1e-8
    assert np.abs(info["orbital_energies"] - mf.mo_energy).max() < 1e-7  # PySCF's: previous iteration's F


def test_eigenvalues_reproduce_orbital_energies(water_hf):
    n = 24
    h, s = water_hf.info["hamiltonian"].reshape(n, n), water_hf.info["overlap"].reshape(n, n)
    e = scipy.linalg.eigh(h, s, eigvals_only=True)
    assert np.abs(e - water_hf.info["orbital_energies"]).max() < 1e-8
    assert np.array_equal(h, h.T)


@pytest.mark.parametrize("improper", [False, True])
def test_rotation_transforms_each_irrep_by_wigner_d(water_hf, labeler, target, improper):
    rot = Rotation.random(random_state=3).as_matrix() * (-1.0 if improper else 1.0)
    moved = water()
    moved.positions = moved.positions @ rot.T
    relabelled = labeler.label(moved)
    ref = target.to_irreps(water_hf, water_hf.info["hamiltonian"])
    new = target.to_irreps(moved, relabelled.info["hamiltonian"])
    syms = moved.get_chemical_symbols()
    worst = 0.0
    for (i, j), vec in ref.items():
        for cb in target.pair_layout(syms[i], syms[j], onsite=i == j):
            expected = e3nn_d(cb.L, cb.p, rot) @ vec[cb.cols]
            worst = max(worst, np.abs(new[i, j][cb.cols] - expected).max())
    assert worst < ROTATION_TOL, worst


def test_permuting_atoms_permutes_blocks(water_hf, labeler, target):
    perm = [2, 0, 1]
    relabelled = labeler.label(water()[perm])
    ref = target.blocks(water_hf, water_hf.info["hamiltonian"])
    new = target.blocks(relabelled, relabelled.info["hamiltonian"])
    for (a, b), block in new.items():
        i, j = perm[a], perm[b]
        expected = ref[i, j] if i <= j else ref[j, i].T
        assert np.abs(block - expected).max() < 1e-8


def test_labels_define_the_target(water_hf, target):
    assert HamiltonianTarget.from_labels(water_hf) == HamiltonianTarget.from_basis("def2-svp", "OH")


def test_too_many_orbitals_refused_before_the_scf(monkeypatch):
    from psilearn.label import hamiltonian, make_labeler

    monkeypatch.setattr(hamiltonian, "MAX_AO", 10)
    lab = make_labeler("hf/def2-svp", "hamiltonian")
    monkeypatch.setattr(type(lab), "run_scf", lambda self, mol: pytest.fail("SCF run"))
    with pytest.raises(LabelError) as err:
        lab.label(water())
    assert err.value.stage == "hamiltonian" and "\n" not in str(err.value)
    assert "at most 10 atomic orbitals; this structure has 24 in def2-svp" in str(err.value)


def test_open_shell_and_unknown_basis_refused():
    from ase import Atoms

    from psilearn.label import make_labeler

    with pytest.raises(LabelError, match="closed-shell") as err:
        make_labeler("hf/sto-3g", "hamiltonian").label(Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]]))
    assert err.value.stage == "hamiltonian"
    with pytest.raises(LabelError) as err:
        make_labeler("hf/def2-nonsense", "hamiltonian").label(water())
    assert err.value.stage == "basis" and "\n" not in str(err.value), str(err.value)
    assert "unknown basis 'def2-nonsense'" in str(err.value)
