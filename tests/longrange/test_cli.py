"""`psilearn fit --long-range qeq`, predict (charges next to the dipole), evaluate, and errors."""

import ase.io
import numpy as np
import pytest

from psilearn.cli.main import main

from ._mols import label_qeq, molecules, with_charges


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("lr_cli")
    frames = label_qeq(with_charges(molecules(11, 34)))
    ase.io.write(d / "train.xyz", frames[:26], format="extxyz")
    ase.io.write(d / "test.xyz", frames[26:], format="extxyz")
    (d / "small.yaml").write_text("soap: {cutoff: 3.5, max_radial: 4, max_angular: 3}\nmodel: {n_sparse: 40}\n")
    return d


def _fit(files, name, *extra):
    out = files / name
    rc = main(["fit", str(files / "train.xyz"), "--config", str(files / "small.yaml"), "--long-range", "qeq", "-o", str(out), *extra])
    assert rc == 0
    return out


def test_charges_model_predicts_charges_and_dipole(files, capsys):
    model = _fit(files, "q.model", "--target", "q", "--per", "atom", "--units", "e")
    assert "held-out estimate" in capsys.readouterr().out
    out = files / "q_pred.xyz"
    assert main(["predict", str(model), str(files / "test.xyz"), "-o", str(out)]) == 0
    frames = ase.io.read(out, ":")
    for a in frames:
        assert {"q", "q_std", "q_reference", "qeq_electronegativity"} <= set(a.arrays)
        assert a.arrays["q"].sum() == pytest.approx(a.info["charge"], abs=1e-6)  # extxyz keeps 8 decimals
        assert np.shape(a.info["qeq_dipole"]) == (3,) and "qeq_energy" in a.info
    assert main(["evaluate", str(model), str(files / "test.xyz")]) == 0


def test_dipole_model_writes_charges_next_to_dipole(files):
    model = _fit(files, "mu.model", "--target", "mu", "--tensor", "i", "--units", "e*A")
    out = files / "mu_pred.xyz"
    assert main(["predict", str(model), str(files / "test.xyz"), "-o", str(out)]) == 0
    for a in ase.io.read(out, ":"):
        assert np.shape(a.info["mu"]) == (3,) and np.shape(a.info["mu_std"]) == (3,)
        assert a.arrays["qeq_charges"].shape == (len(a),) and "qeq_charges_std" in a.arrays
        assert a.arrays["qeq_charges"].sum() == pytest.approx(a.info["charge"], abs=1e-6)  # extxyz keeps 8 decimals
        mu = a.arrays["qeq_charges"] @ (a.positions - a.get_center_of_mass())
        np.testing.assert_allclose(mu, a.info["mu"], atol=1e-6)  # the dipole is the charges' dipole (COM origin)


def test_dipole_and_charges_together(files):
    model = _fit(files, "both.model", "--target", "mu", "--tensor", "i", "--units", "e*A", "--charges-key", "q",
                 "--charge-weight", "0.5", "--dipole-origin", "com")
    out = files / "both_pred.xyz"
    assert main(["predict", str(model), str(files / "test.xyz"), "-o", str(out)]) == 0
    a = ase.io.read(out, "0")
    assert "q_reference" in a.arrays and "q" in a.arrays  # predicted charges under the training key


@pytest.mark.parametrize("args, message", [
    (["--target", "mu", "--tensor", "i"], "units"),
    (["--target", "q", "--per", "atom", "--charges-key", "q", "--no-lr"], "only apply with --long-range"),
    (["--target", "alpha", "--tensor", "ij=ji"], "no label"),
])
def test_clear_errors(files, capsys, args, message):
    lr = [] if "--no-lr" in args else ["--long-range", "qeq"]
    args = [x for x in args if x != "--no-lr"]
    rc = main(["fit", str(files / "train.xyz"), *lr, "-o", str(files / "bad.model"), *args])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_impossible_multiplicity_is_a_clear_error(files, tmp_path, capsys):
    frames = ase.io.read(files / "train.xyz", ":")
    frames[2].info["multiplicity"] = 2 if frames[2].numbers.sum() % 2 == frames[2].info["charge"] % 2 else 1
    ase.io.write(tmp_path / "bad.xyz", frames, format="extxyz")
    rc = main(["fit", str(tmp_path / "bad.xyz"), "--target", "q", "--per", "atom", "--long-range", "qeq",
               "--config", str(files / "small.yaml"), "-o", str(tmp_path / "m")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "frame 2" in err and "multiplicity" in err
