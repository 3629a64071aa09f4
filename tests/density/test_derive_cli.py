"""`psilearn density SOURCE IN -o OUT` end to end on a labelled file, and its one-line refusals."""

import ase.io
import numpy as np
import pytest
from ase import Atoms

from psilearn.cli.main import main as cli_main
from psilearn.data.prediction import DensityPrediction, Prediction
from psilearn.errors import DataError
from psilearn.observe.density.derive import model_densities


@pytest.fixture
def labelled(water_pbe, tmp_path):
    path = tmp_path / "in.xyz"
    ase.io.write(path, [water_pbe.labelled])
    return path


def test_density_from_labels_end_to_end(labelled, tmp_path, capsys):
    pts = tmp_path / "pts.xyz"
    ase.io.write(pts, Atoms("X2", positions=[[4, 0, 0], [0, 0, -5]]))
    before = labelled.read_bytes()
    out, cubes = tmp_path / "out.xyz", tmp_path / "cubes"
    rc = cli_main(["density", "labels", str(labelled), "-o", str(out), "--esp", str(pts), "--cube", str(cubes),
                   "--spacing", "0.3", "--margin", "2", "--esp-grid", "--hirshfeld", "--scf-guess", "pbe/def2-svp", "-q"])
    text = capsys.readouterr().out
    assert rc == 0 and labelled.read_bytes() == before
    a = ase.io.read(out)
    info = a.info
    assert np.linalg.norm(info["density_dipole"] - info["dipole_moment"]) < 1e-3
    assert info["density_quadrupole"].shape == (9,) and info["density_esp"].shape == (2,)
    assert abs(a.arrays["density_hirshfeld_charges"].sum()) < 1e-3
    assert info["density_scf_cycles_guess"] < info["density_scf_cycles_default"]
    assert sorted(p.name for p in cubes.iterdir()) == ["0000_H2O.cube", "0000_H2O_esp.cube"]
    assert "H2O" in text and "saved" in text and "from PySCF's default guess" in text


def test_refusals_are_one_line(labelled, water_pbe, tmp_path, capsys):
    def run(*argv):
        rc = cli_main(["density", *argv, "-q"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.count("\n") == 0, err
        return err

    assert "the output is also an input" in run("labels", str(labelled), "-o", str(labelled))
    bad = water_pbe.labelled.copy()
    bad.info["density_coefficients"] = bad.info["density_coefficients"][:-3]
    ase.io.write(tmp_path / "short.xyz", [bad])
    assert "frame 0: H2O: " in run("labels", str(tmp_path / "short.xyz"), "-o", str(tmp_path / "o.xyz"))
    cell = water_pbe.labelled.copy()
    cell.cell, cell.pbc = np.eye(3) * 12, True
    ase.io.write(tmp_path / "cell.xyz", [cell])
    assert "molecules only" in run("labels", str(tmp_path / "cell.xyz"), "-o", str(tmp_path / "o.xyz"))
    ase.io.write(tmp_path / "plain.xyz", [Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])])
    assert "no 'density_coefficients'" in run("labels", str(tmp_path / "plain.xyz"), "-o", str(tmp_path / "o.xyz"))
    assert "--esp-grid writes ESP cube files" in run("labels", str(labelled), "-o", str(tmp_path / "o.xyz"), "--esp-grid")
    assert not (tmp_path / "o.xyz").exists()


class _Stub:
    def __init__(self, pred):
        self.pred, self.target = pred, type("T", (), {"key": "dipole_moment"})()

    def predict(self, frames, return_std=True):
        return self.pred


def test_model_source_needs_a_density_prediction(water_pbe):
    c = water_pbe.labelled.info["density_coefficients"]
    coefs, bases = model_densities(_Stub(DensityPrediction([c], "def2-universal-jkfit", "coulomb")), [water_pbe.labelled])
    assert np.array_equal(coefs[0], c) and bases == ["def2-universal-jkfit"]
    wrong = Prediction(np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(DataError, match="predicts 'dipole_moment', not density-fitting coefficients"):
        model_densities(_Stub(wrong), [water_pbe.labelled])
