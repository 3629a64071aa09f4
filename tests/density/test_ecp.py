"""Effective core potentials: HI with PBE/def2-SVP puts 28 of iodine's electrons in an ECP.

The fitted density holds only the 26 others, so every derived observable must use the effective
nuclear charges Z - core (I: 25) and the density model must conserve 26 electrons, not 54."""

import ase.io
import numpy as np
import pytest
from ase import Atoms

from psilearn.data import density_target, load_density_dataset
from psilearn.errors import DataError
from psilearn.observe.density import debye, dipole, electrostatic_potential, hirshfeld_charges
from psilearn.observe.density.multipoles import multipoles
from psilearn.observe.density.structure import fitted_density
from psilearn.targets import DensityTarget

from ._shared import SOAP

AUX = "def2-universal-jkfit"


def _hi(d: float = 1.61, tilt: float = 0.1) -> Atoms:
    return Atoms("HI", positions=[[0.2, -0.1, 0.05], [0.2 + tilt, 0.0, 0.05 + d]])


@pytest.fixture(scope="module")
def hi_pbe():
    """The labeler's HI (PBE/def2-SVP, density, dipole, charges) and its SCF's Mole and density matrix."""
    from psilearn.label import make_labeler

    lab = make_labeler("pbe/def2-svp", "dipole,charges,density")
    atoms = _hi()
    mol = lab.build_mol(atoms)
    mf, _ = lab.run_scf(mol)
    return lab.label(atoms), mol, mf.make_rdm1()


def test_pyscf_ecp_facts(hi_pbe):
    """Measured, not remembered: with mol.ecp the Mole carries Z - 28 on I and 26 electrons."""
    _, mol, _ = hi_pbe
    assert [mol.atom_nelec_core(i) for i in range(2)] == [0, 28]
    assert mol.atom_charges().tolist() == [1, 25] and mol.nelectron == 26


def test_labels_record_the_core_and_derived_values_use_the_valence_charges(hi_pbe):
    labelled, mol, dm = hi_pbe
    info = labelled.info
    c, basis = info["density_coefficients"], info["density_aux_basis"]
    assert labelled.arrays["density_core_electrons"].tolist() == [0, 28]
    assert abs(info["density_electrons"] - 26) < 1e-3
    density = fitted_density(labelled, c, basis)
    assert density.n_electrons == 26 and density.nuclear_charges.tolist() == [1.0, 25.0]
    # the derived dipole of the reference fit equals the SCF dipole within the fit's own dipole error
    err = np.linalg.norm(dipole(labelled, c, basis) - info["dipole_moment"])
    assert err <= info["density_fit_dipole_error"] + 1e-8 and debye(err) < 0.01
    # the full Z (no core record) is off by 28 e times the distance to the centre of mass
    with pytest.warns(UserWarning):  # 26 fitted electrons against 54
        full_z = fitted_density(labelled, c, basis, core_electrons=[0, 0])
    wrong = np.linalg.norm(multipoles(full_z)[0] - info["dipole_moment"])
    assert wrong > 100 * err  # 0.68 e*Bohr (1.7 D): iodine sits near the centre of mass
    # Hirshfeld charges sum to the fit's electron-count error; the labeler's own (SCF density) agree
    q = hirshfeld_charges(labelled, c, basis)
    assert abs(q.sum() + (info["density_electrons"] - 26)) < 1e-3
    assert np.abs(q - labelled.arrays["hirshfeld_charges"]).max() < 0.01
    # ESP 3 A out: the fitted density's against the SCF's (nuclei Z - core, int1e_rinv with dm)
    pts = labelled.positions.mean(axis=0) + 3.0 * np.eye(3)
    esp = electrostatic_potential(labelled, c, basis, pts)
    ref = []
    for p in pts / 0.52917721092:
        with mol.with_rinv_origin(p):
            v = mol.intor("int1e_rinv")
        ref.append(mol.atom_charges() @ (1 / np.linalg.norm(mol.atom_coords() - p, axis=1)) - np.einsum("ij,ji", v, dm))
    assert np.abs(esp - np.array(ref)).max() < 1e-3  # measured 3.4e-4 Ha/e (1 % near I); with Z = 53: ~7


def test_files_without_the_record(hi_pbe, tmp_path):
    labelled, _, _ = hi_pbe
    old = labelled.copy()
    del old.arrays["density_core_electrons"]
    ase.io.write(tmp_path / "old.xyz", old)
    with pytest.raises(DataError, match=r"no 'density_core_electrons' recorded, but I has an effective core potential in basis 'def2-svp'") as exc:
        load_density_dataset(str(tmp_path / "old.xyz"))
    assert "\n" not in str(exc.value)
    with pytest.raises(DataError, match="effective core potential"):
        fitted_density(old, old.info["density_coefficients"], AUX)
    # light elements without the record load as before (zero core electrons)
    water = Atoms("OH2", positions=[[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]])
    with pytest.warns(UserWarning, match="holds 0.000 electrons but the structure .charge .0. has 10"):
        zero = fitted_density(water, np.zeros(DensityTarget.from_basis(AUX, ["H", "O"]).size(water)), AUX)
    assert zero.core_electrons.tolist() == [0, 0, 0]


def test_target_records_the_core(hi_pbe):
    labelled, _, _ = hi_pbe
    t = density_target([labelled])
    assert t.core_electrons == (("I", 28),) and t.core_of(labelled).tolist() == [0, 28]
    assert DensityTarget.from_dict(t.to_dict()) == t
    d = t.to_dict()
    d.pop("core_electrons")  # a model file written before ECPs were recorded: all-electron
    assert DensityTarget.from_dict(d).core_of(labelled).tolist() == [0, 0]
    other = labelled.copy()
    other.arrays["density_core_electrons"] = np.array([0, 46])
    with pytest.raises(DataError, match=r"I has 46 ECP core electrons, but 28"):
        density_target([labelled, other])
    with pytest.raises(DataError, match="labelled with 46 ECP core electrons, but the target expects 28"):
        load_density_dataset([other], t)


def test_model_conserves_the_valence_count_and_cli_derives(tmp_path):
    from psilearn.cli.main import main as cli_main
    from psilearn.label import make_labeler
    from psilearn.models.factory import fit_model

    lab = make_labeler("hf/def2-svp", "dipole,density", grid_level=1)
    frames = [lab.label(_hi(d, t)) for d, t in ((1.55, 0.0), (1.6, 0.1), (1.65, -0.1), (1.7, 0.05), (1.58, 0.2))]
    data = load_density_dataset(frames)
    model = fit_model("density", data.target, data.subset(range(4)), {"soap": SOAP, "density": {"regularization": 1e-6}})
    pred = model.predict(frames[4])
    assert abs(pred.electrons[0] - 26) < 1e-10  # the valence count, not 54
    assert model.predict(frames[4], conserve=False).electrons[0] != pytest.approx(26, abs=1e-10)
    ase.io.write(tmp_path / "hi.xyz", frames)
    model.save(tmp_path / "m")
    assert cli_main(["predict", str(tmp_path / "m"), str(tmp_path / "hi.xyz"), "-o", str(tmp_path / "p.xyz")]) == 0
    out = ase.io.read(tmp_path / "p.xyz", index=":")
    assert all(a.arrays["density_core_electrons"].tolist() == [0, 28] for a in out)
    assert load_density_dataset(str(tmp_path / "p.xyz")).target.core_electrons == (("I", 28),)
    bare = [Atoms(a.symbols, positions=a.positions) for a in frames]  # structures without labels
    ase.io.write(tmp_path / "bare.xyz", bare)
    assert cli_main(["density", str(tmp_path / "m"), str(tmp_path / "bare.xyz"), "-o", str(tmp_path / "d.xyz"), "--quiet"]) == 0
    derived = ase.io.read(tmp_path / "d.xyz", index=":")
    for a, ref in zip(derived, frames):
        assert abs(a.info["density_fitted_electrons"] - 26) < 1e-8
        assert np.linalg.norm(a.info["density_dipole"] - ref.info["dipole_moment"]) < 0.05


def test_scf_guess_uses_the_ecp(hi_pbe):
    from psilearn.observe.density.scf_guess import scf_guess_cycles

    labelled, _, _ = hi_pbe
    c = labelled.info["density_coefficients"]
    r = scf_guess_cycles(labelled, c, AUX, "pbe/def2-svp")
    assert r.converged_guess and abs(r.energy_guess - r.energy_default) < 1e-7
    assert r.cycles_guess < r.cycles_default
    with pytest.raises(DataError, match=r"the SCF's basis puts 0 electrons of atom 1 \(I\) in an ECP, but the density was fitted with 28"):
        scf_guess_cycles(labelled, c, AUX, "pbe/sto-3g")


def test_delta_baseline_with_other_ecps_is_refused(hi_pbe):
    """A Δ-density baseline must hold the same electrons: its own core record (KEY_core_electrons)
    is checked against the target's; without one it is taken to be the frame's."""
    from psilearn.models.fidelity.delta_fields import field_baselines

    labelled, _, _ = hi_pbe
    a = labelled.copy()
    a.info["density_coefficients_base"] = a.info["density_coefficients"] * 1.01
    t = density_target([labelled])
    (same,) = field_baselines([a], t, "density_coefficients_base", "density")
    assert np.allclose(same, a.info["density_coefficients_base"])
    a.arrays["density_coefficients_base_core_electrons"] = np.array([0, 0])  # e.g. an all-electron baseline
    with pytest.raises(DataError, match=r"labelled with 0 ECP core electrons, but the target expects 28 .* must be in the same"):
        field_baselines([a], t, "density_coefficients_base", "density")
