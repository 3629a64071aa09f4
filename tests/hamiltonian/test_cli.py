"""`psilearn label --observables hamiltonian` through the campaign machinery (store, report, export)."""

import ase.io
import numpy as np
import scipy.linalg
from ase.build import molecule

from psilearn.cli.main import main as cli_main
from psilearn.label import LabelStore, make_labeler
from psilearn.targets import HamiltonianTarget

from .conftest import water


def test_label_export_and_refuse_large(tmp_path, capsys, monkeypatch):
    from psilearn.label import hamiltonian

    monkeypatch.setattr(hamiltonian, "MAX_AO", 10)  # water has 7 AOs in sto-3g, methanol 14
    inp, db, out = tmp_path / "in.xyz", tmp_path / "l.db", tmp_path / "out.xyz"
    ase.io.write(inp, [water(), molecule("CH3OH")])
    rc = cli_main(["label", str(inp), "--method", "hf/sto-3g", "--observables", "hamiltonian,orbitals", "--db", str(db),
                   "--workers", "0", "-o", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 1 and "(hamiltonian): hamiltonian labels hold at most 10 atomic orbitals; this structure has 14" in text
    (atoms,) = ase.io.read(out, ":")
    target = HamiltonianTarget.from_labels(atoms)
    assert target == HamiltonianTarget.from_basis("sto-3g", "OH")
    n = target.n_ao(atoms)
    h, s = atoms.info["hamiltonian"].reshape(n, n), atoms.info["overlap"].reshape(n, n)
    assert np.abs(scipy.linalg.eigh(h, s, eigvals_only=True) - atoms.info["orbital_energies"]).max() < 1e-10
    assert atoms.info["homo"] == atoms.info["orbital_energies"][4]  # orbitals use the same energies
    assert "hamiltonian" in LabelStore(db).db.metadata["units"]


def test_method_hash_unchanged_without_hamiltonian():
    assert "hamiltonian_conv_tol_grad" not in make_labeler("hf/def2-svp", "energy").spec()
    assert make_labeler("hf/def2-svp", "energy,hamiltonian").spec()["hamiltonian_conv_tol_grad"] == 1e-8


def test_xtb_refuses_hamiltonian(tmp_path, capsys):
    inp = tmp_path / "in.xyz"
    ase.io.write(inp, [water()])
    rc = cli_main(["label", str(inp), "--method", "gfn2", "--observables", "hamiltonian", "--workers", "0",
                   "--db", str(tmp_path / "x.db"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "hamiltonian" in err
