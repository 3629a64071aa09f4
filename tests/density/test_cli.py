"""`psilearn label --observables density` through the campaign machinery (store, resume, export)."""

import ase.io
import numpy as np
import pytest
from ase import Atoms

from psilearn.cli.main import main as cli_main
from psilearn.data import load_dataset, load_density_dataset
from psilearn.label import LabelStore, make_labeler, run_campaign

from .conftest import water


def _label(tmp_path, *extra, frames=None):
    inp, db, out = tmp_path / "in.xyz", tmp_path / "l.db", tmp_path / "out.xyz"
    ase.io.write(inp, frames or [water()])
    argv = ["label", str(inp), "--method", "hf/def2-svp", "--observables", "density", "--db", str(db),
            "--workers", "0", "-o", str(out), "--no-progress", *extra]
    return cli_main(argv), db, out


def test_label_export_load_and_resume(tmp_path, capsys):
    lih = Atoms("LiH", positions=[[0, 0, 0], [0, 0, 1.6]])
    rc, db, out = _label(tmp_path, "--aux-basis", "cc-pvdz-jkfit", frames=[water(), lih])
    text = capsys.readouterr().out
    assert rc == 1 and "(density): element Li has no functions in auxiliary basis 'cc-pvdz-jkfit'" in text
    ds = load_density_dataset(str(out))
    assert len(ds) == 1 and ds.target.aux_basis == "cc-pvdz-jkfit" and ds.target.metric == "coulomb"
    info = ds.frames[0].info
    assert abs(info["density_electrons"] - 10) < 5e-3 and 0 < info["density_fit_l2"] < 0.05
    meta = LabelStore(db).db.metadata
    spec = next(iter(meta["methods"].values()))["spec"]
    assert spec["density_aux_basis"] == "cc-pvdz-jkfit" and spec["grid_level"] == 3  # HF: grid for the errors
    assert "density_coefficients" in meta["units"]
    rc, _, _ = _label(tmp_path, "--aux-basis", "cc-pvdz-jkfit", frames=[water(), lih])
    assert "0 labelled now, 2 already in the database" in capsys.readouterr().out


def test_unknown_aux_basis_is_one_line_before_any_scf(tmp_path, capsys):
    rc, _, _ = _label(tmp_path, "--aux-basis", "nosuch-jkfit")
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "unknown auxiliary basis 'nosuch-jkfit'" in err


def test_density_options_need_the_density_observable(tmp_path, capsys):
    inp = tmp_path / "in.xyz"
    ase.io.write(inp, [water()])
    for method, words in (("hf/sto-3g", "--aux-basis applies to --observables density only"),
                          ("gfn2", "--aux-basis applies to PySCF methods only")):
        rc = cli_main(["label", str(inp), "--method", method, "--aux-basis", "cc-pvdz-jkfit", "--workers", "0",
                       "--db", str(tmp_path / "x.db"), "--no-progress"])
        assert rc == 2 and words in capsys.readouterr().err


def test_method_hash_unchanged_without_density():
    """Existing databases resume: the density options enter the method spec only with density."""
    plain = make_labeler("pbe0/def2-svp", "energy,dipole").spec()
    assert "density_aux_basis" not in plain and "density_metric" not in plain
    with_density = make_labeler("pbe0/def2-svp", "energy,density", density_metric="overlap").spec()
    assert with_density["density_metric"] == "overlap"


@pytest.mark.slow
def test_dask_campaign(tmp_path):
    frames = [water(seed) for seed in range(2)]
    lab = make_labeler("hf/def2-svp", "density")
    s = run_campaign(frames, lab, tmp_path / "d.db", workers=1, progress=False)
    assert s.failed == 0
    out = tmp_path / "o.xyz"
    LabelStore(tmp_path / "d.db").export(out)
    ds = load_dataset(str(out), load_density_dataset(str(out)).target)
    assert len(ds) == 2 and np.isfinite(ds.values).all()
