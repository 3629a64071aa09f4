"""The `psilearn` command: fit -> predict -> evaluate -> learning-curve, and one-line errors."""

import json

import ase.io
import numpy as np
import pytest

from psilearn.cli.main import main

from ._synth import SMALL_MODEL, SMALL_SOAP, label_frames, molecules


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    frames = molecules(31, 24)
    frames = label_frames(frames, "alpha", "sym2", "structure")
    frames = label_frames(frames, "q", "scalar", "atom")
    ase.io.write(d / "train.xyz", frames[:16], format="extxyz")
    ase.io.write(d / "test.xyz", frames[16:], format="extxyz")
    unlabelled = [a.copy() for a in frames[16:]]
    for a in unlabelled:
        a.info.pop("alpha")
        del a.arrays["q"]
    ase.io.write(d / "new.xyz", unlabelled, format="extxyz")
    soap = ", ".join(f"{k}: {v}" for k, v in SMALL_SOAP.items())
    model = ", ".join(f"{k}: {v}" for k, v in SMALL_MODEL.items())
    (d / "small.yaml").write_text(f"soap: {{{soap}}}\nmodel: {{{model}}}\n")
    return d


@pytest.fixture(scope="module")
def alpha_model(files):
    out = files / "alpha.model"
    rc = main(["fit", str(files / "train.xyz"), "--target", "alpha", "--tensor", "ij=ji", "--units", "au",
               "--config", str(files / "small.yaml"), "-o", str(out)])
    assert rc == 0
    return out


def test_fit_writes_model(alpha_model):
    assert (alpha_model / "model.json").is_file() and (alpha_model / "arrays.npz").is_file()
    meta = json.loads((alpha_model / "model.json").read_text())
    assert meta["target"]["tensor"] == "ij=ji" and meta["target"]["units"] == "au"
    assert meta["soap"]["max_radial"] == SMALL_SOAP["max_radial"]
    assert meta["config"]["n_sparse"] == SMALL_MODEL["n_sparse"]


def test_predict(files, alpha_model, capsys):
    out = files / "pred.xyz"
    assert main(["predict", str(alpha_model), str(files / "test.xyz"), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    pred = ase.io.read(out, ":")
    ref = ase.io.read(files / "test.xyz", ":")
    assert len(pred) == len(ref) == 8
    for p, r in zip(pred, ref):
        assert np.asarray(p.info["alpha"]).shape == (9,)
        assert np.asarray(p.info["alpha_std"]).shape == (9,)
        assert np.all(np.asarray(p.info["alpha_std"]) > 0)
        np.testing.assert_allclose(p.info["alpha_reference"], r.info["alpha"])
        t = np.asarray(p.info["alpha"]).reshape(3, 3)
        np.testing.assert_allclose(t, t.T, atol=1e-6 * np.abs(t).max())
        np.testing.assert_allclose(p.positions, r.positions)


def test_predict_unlabelled_no_reference(files, alpha_model):
    out = files / "pred_new.xyz"
    assert main(["predict", str(alpha_model), str(files / "new.xyz") + "@:3", "-o", str(out)]) == 0
    pred = ase.io.read(out, ":")
    assert len(pred) == 3
    assert all("alpha_reference" not in p.info and np.asarray(p.info["alpha"]).shape == (9,) for p in pred)


def test_evaluate_json(files, alpha_model, capsys):
    capsys.readouterr()
    png = files / "parity.png"
    assert main(["evaluate", str(alpha_model), str(files / "test.xyz"), "--json", "--plot", str(png)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    metrics = json.loads(out[-1])
    for key in ("cartesian", "channels", "calibration"):
        assert key in metrics
    assert set(metrics["channels"]) == {"0e", "2e"}
    assert metrics["n_samples"] == 8
    for m in [metrics["cartesian"], *metrics["channels"].values()]:
        assert m["rmse"] >= m["mae"] >= 0
    c = metrics["calibration"]
    assert 0 <= c["within_1sigma"] <= c["within_2sigma"] <= 1
    assert png.stat().st_size > 1000


def test_evaluate_table(files, alpha_model, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(alpha_model), str(files / "test.xyz")]) == 0
    out = capsys.readouterr().out
    assert "RMSE" in out and "Cartesian" in out and "within 2 sigma" in out


def test_learning_curve(files, capsys):
    png = files / "lc.png"
    capsys.readouterr()
    rc = main(["learning-curve", str(files / "train.xyz"), str(files / "test.xyz"), "--target", "alpha", "--tensor", "ij=ji",
               "--sizes", "6,16", "--config", str(files / "small.yaml"), "--plot", str(png), "--json"])
    assert rc == 0
    assert png.is_file() and png.stat().st_size > 1000
    curve = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert curve["sizes"] == [6, 16]
    assert set(curve["pct_rmse"]) == {"Cartesian", "0e", "2e"}
    assert all(len(v) == 2 for v in curve["pct_rmse"].values())


def test_learning_curve_bad_sizes(files, capsys):
    rc = main(["learning-curve", str(files / "train.xyz"), str(files / "test.xyz"), "--target", "alpha", "--tensor", "ij=ji",
               "--sizes", "5,100", "--config", str(files / "small.yaml")])
    assert rc == 2
    assert "--sizes" in capsys.readouterr().err


def test_per_atom_fit_predict(files):
    model = files / "q.model"
    assert main(["fit", str(files / "train.xyz"), "--target", "q", "--per", "atom", "--config", str(files / "small.yaml"), "-o", str(model)]) == 0
    out = files / "q_pred.xyz"
    assert main(["predict", str(model), str(files / "test.xyz"), "-o", str(out)]) == 0
    ref = ase.io.read(files / "test.xyz", ":")
    for p, r in zip(ase.io.read(out, ":"), ref):
        assert p.arrays["q"].shape == (len(p),)
        assert p.arrays["q_std"].shape == (len(p),)
        np.testing.assert_allclose(p.arrays["q_reference"], r.arrays["q"])
        assert "q" not in p.info


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1, f"expected a one-line error, got:\n{err}"
    assert "error" in lines[0]
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    assert "Traceback" not in err


def test_fit_missing_key(files, tmp_path, capsys):
    capsys.readouterr()
    rc = main(["fit", str(files / "train.xyz"), "--target", "polarisability", "--tensor", "ij=ji", "-o", str(tmp_path / "m")])
    assert rc == 2
    _one_line_error(capsys, "train.xyz", "polarisability")
    assert not (tmp_path / "m").exists()


def test_fit_missing_file(tmp_path, capsys):
    capsys.readouterr()
    rc = main(["fit", str(tmp_path / "absent.xyz"), "--target", "alpha", "-o", str(tmp_path / "m")])
    assert rc == 2
    _one_line_error(capsys, "absent.xyz")


def test_predict_missing_input(files, alpha_model, tmp_path, capsys):
    capsys.readouterr()
    rc = main(["predict", str(alpha_model), str(tmp_path / "ghost.xyz"), "-o", str(tmp_path / "o.xyz")])
    assert rc == 2
    _one_line_error(capsys, "ghost.xyz")


def test_predict_missing_model(files, tmp_path, capsys):
    capsys.readouterr()
    rc = main(["predict", str(tmp_path / "nomodel"), str(files / "test.xyz"), "-o", str(tmp_path / "o.xyz")])
    assert rc == 2
    _one_line_error(capsys, "nomodel")


def test_evaluate_missing_key(files, alpha_model, capsys):
    capsys.readouterr()
    rc = main(["evaluate", str(alpha_model), str(files / "new.xyz")])
    assert rc == 2
    _one_line_error(capsys, "new.xyz", "alpha")


def test_bad_tensor_formula(files, tmp_path, capsys):
    capsys.readouterr()
    rc = main(["fit", str(files / "train.xyz"), "--target", "alpha", "--tensor", "ij=jk", "-o", str(tmp_path / "m")])
    assert rc == 2
    _one_line_error(capsys, "ij=jk")


@pytest.mark.parametrize("cmd", ["fit", "predict", "evaluate", "learning-curve"])
def test_subcommand_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("fit", "predict", "evaluate", "learning-curve"):
        assert cmd in out
