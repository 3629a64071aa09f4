"""`psilearn fit --hamiltonian` and `psilearn predict` of a hamiltonian model: the labeler's layout,
derived observables, the SCF guess, one-line errors."""

import ase.io
import numpy as np
import scipy.linalg
import yaml

from psilearn.cli.main import main as cli_main

from .conftest import TINY


def test_fit_predict_derive_and_guess(tmp_path, capsys, sto3g_waters):
    train, test, cfg = tmp_path / "train.xyz", tmp_path / "test.xyz", tmp_path / "h.yaml"
    ase.io.write(train, sto3g_waters[:12])
    ase.io.write(test, sto3g_waters[12:])
    config = {k: dict(v) for k, v in TINY.items()}
    config["nn_train"]["epochs"] = 30
    cfg.write_text(yaml.safe_dump(config))
    model, out = tmp_path / "h.model", tmp_path / "pred.xyz"
    assert cli_main(["fit", str(train), "--hamiltonian", "--model", "nn", "--target", "hamiltonian", "--config", str(cfg), "-o", str(model)]) == 0
    text = capsys.readouterr().out
    assert "H entry MAE" in text and "uHa" in text and "cutoff 5 A alone" in text
    assert cli_main(["predict", str(model), str(test), "-o", str(out), "--scf-guess", "hf/sto-3g"]) == 0
    text = capsys.readouterr().out
    assert "cycles in total vs" in text
    frames = ase.io.read(out, ":")
    assert len(frames) == 4
    for a, ref in zip(frames, sto3g_waters[12:]):
        info = a.info
        n = 7
        f, s = info["hamiltonian"].reshape(n, n), ref.info["overlap"].reshape(n, n)
        assert np.array_equal(f, f.T)
        assert np.array_equal(info["hamiltonian_reference"], ref.info["hamiltonian"])
        assert np.allclose(info["orbital_energies"], scipy.linalg.eigh(f, s, eigvals_only=True), atol=1e-10)
        assert np.isclose(info["gap"], info["lumo"] - info["homo"])
        assert abs(a.arrays["mulliken_charges"].sum()) < 1e-8
        assert info["dipole_moment"].shape == (3,) and info["scf_cycles_guess"] >= 1
        # a trained model is closer to the labels than the untrained scale of F
        assert np.abs(f - ref.info["hamiltonian"].reshape(n, n)).mean() < 0.1 * np.abs(ref.info["hamiltonian"]).mean()


def test_cli_errors(tmp_path, capsys, sto3g_waters):
    train = tmp_path / "train.xyz"
    ase.io.write(train, sto3g_waters[:4])
    rc = cli_main(["fit", str(train), "--hamiltonian", "--target", "hamiltonian", "--tensor", "ij", "-o", str(tmp_path / "m")])
    assert rc != 0 and "--hamiltonian fits the hamiltonian-sagpr model kind; it does not take --tensor" in capsys.readouterr().err
    rc = cli_main(["fit", str(train), "--density", "--hamiltonian", "--target", "hamiltonian", "-o", str(tmp_path / "m")])
    assert rc != 0 and "--density fits the density model kind; it does not take --hamiltonian" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("nn_train: {uncertainty: llpr}\n")
    rc = cli_main(["fit", str(train), "--hamiltonian", "--model", "nn", "--target", "hamiltonian", "--config", str(cfg), "-o", str(tmp_path / "m")])
    assert rc != 0 and "uncertainty" in capsys.readouterr().err
    nolabel = tmp_path / "plain.xyz"
    ase.io.write(nolabel, [a.__class__(a.symbols, a.positions) for a in sto3g_waters[:3]])
    rc = cli_main(["fit", str(nolabel), "--hamiltonian", "--target", "hamiltonian", "-o", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert rc != 0 and "hamiltonian_basis" in err and "Traceback" not in err


def test_evaluate_and_guess_basis(tmp_path, capsys, sto3g_waters):
    from psilearn.evaluation import evaluate
    from psilearn.models.registry import model_class

    from .test_model import fit

    model, _ = fit(sto3g_waters[:10], 3)
    path = tmp_path / "h.model"
    model.save(path)
    test = tmp_path / "test.xyz"
    ase.io.write(test, sto3g_waters[10:])
    m = evaluate(str(path), str(test))
    assert m["n_structures"] == 6 and m["hamiltonian"]["h_mae"] > 0 and 0 < m["hamiltonian"]["coefficient_cosine"] <= 1
    assert cli_main(["evaluate", str(path), str(test)]) == 0
    assert "H entry MAE" in capsys.readouterr().out
    rc = cli_main(["predict", str(path), str(test), "-o", str(tmp_path / "p.xyz"), "--scf-guess", "hf/def2-svp"])
    assert rc != 0 and "predicts F in basis 'sto-3g', not 'def2-svp'" in capsys.readouterr().err
    assert model_class("hamiltonian").kind == "hamiltonian"
