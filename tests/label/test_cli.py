import ase.io
import pytest

from psilearn.cli.main import main as cli_main

from .conftest import h2, water


def test_label_status_export_roundtrip(tmp_path, capsys):
    inp = tmp_path / "in.xyz"
    bad = h2(0.05)
    ase.io.write(inp, [water(), bad, h2()])
    db, out = tmp_path / "l.db", tmp_path / "out.xyz"
    rc = cli_main(["label", str(inp), "--method", "gfn2", "--observables", "energy,dipole,charges",
                          "--db", str(db), "--workers", "0", "-o", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 1  # one structure failed, and it is reported
    assert "FAILED structure 1" in text and "overlapping" in text
    frames = ase.io.read(out, ":")
    assert len(frames) == 2 and "mulliken_charges" in frames[0].arrays
    assert frames[0].info["method"] == "gfn2"
    assert cli_main(["db", "status", str(db)]) == 0
    text = capsys.readouterr().out
    assert "2 ok, 1 failed" in text and "atomic units" in text
    exp = tmp_path / "all.xyz"
    assert cli_main(["db", "export", str(db), "-o", str(exp), "--include-failed"]) == 0
    assert len(ase.io.read(exp, ":")) == 3


@pytest.mark.parametrize(
    "argv,words",
    [
        (["label", "missing.xyz", "--method", "gfn2"], "not found"),
        (["label", "{inp}", "--method", "pbe0"], "XC/BASIS"),
        (["label", "{inp}", "--method", "nofunctional/sto-3g"], "functional"),
        (["label", "{inp}", "--method", "gfn2", "--observables", "magnetisation"], "unknown observable"),
        (["label", "{inp}", "--method", "gfn2", "--observables", "spin"], "gfn2 cannot compute spin"),
        (["label", "{inp}", "--method", "gfn2", "--grid-level", "2"], "PySCF methods only"),
        (["db", "status", "missing.db"], "not found"),
        (["sample", "-o", "x.xyz"], "either an INPUT"),
        (["sample", "--smiles", "C1CC", "-o", "x.xyz"], "invalid SMILES"),
    ],
)
def test_bad_input_one_line_error(tmp_path, capsys, argv, words):
    inp = tmp_path / "in.xyz"
    ase.io.write(inp, water())
    argv = [a.replace("{inp}", str(inp)) for a in argv]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_sample_smiles_md_and_rattle(tmp_path):
    md = tmp_path / "md.xyz"
    assert cli_main(["sample", "--smiles", "O", "--mode", "md", "--steps", "20", "--stride", "5",
                            "-o", str(md)]) == 0
    frames = ase.io.read(md, ":")
    assert len(frames) == 4 and frames[-1].info["md_step"] == 20
    r = tmp_path / "r.xyz"
    assert cli_main(["sample", str(md), "--mode", "rattle", "-n", "2", "-o", str(r)]) == 0
    assert len(ase.io.read(r, ":")) == 8


def _deepmd_water(path, n=2):
    """A non-periodic DeePMD npy system of ``n`` water geometries (no box: a molecule)."""
    import numpy as np

    (path / "set.000").mkdir(parents=True)
    (path / "type.raw").write_text("0 1 1\n")
    (path / "type_map.raw").write_text("O\nH\n")
    (path / "nopbc").write_text("")
    base = water().positions.ravel()
    np.save(path / "set.000" / "coord.npy", np.stack([base + 0.01 * k for k in range(n)]))
    np.save(path / "set.000" / "energy.npy", np.arange(n, dtype=float))


def test_label_reads_what_fit_reads(tmp_path, capsys):
    """`label` reads structures with psilearn.data.read_structures, like `fit`: DeePMD npy systems,
    file@slice, and labels that ASE moves into a SinglePointCalculator are kept (fast GFN2-xTB)."""
    from psilearn.data import read_structures

    sysdir = tmp_path / "water_sys"
    _deepmd_water(sysdir)
    db, out = tmp_path / "l.db", tmp_path / "dp.xyz"
    assert cli_main(["label", str(sysdir), "--method", "gfn2", "--db", str(db), "--workers", "0", "-o", str(out),
                     "--no-progress"]) == 0
    frames = read_structures(str(out))
    assert len(frames) == 2 and all("total_energy" in a.info for a in frames)
    assert [a.info["energy"] for a in frames] == [0.0, 1.0]  # the DeePMD label travels with the structure
    inp = tmp_path / "in.xyz"
    mols = [water(), h2(), water()]
    mols[2].info["energy"] = -1.5  # ASE's extxyz reader moves this into a SinglePointCalculator
    ase.io.write(inp, mols, format="extxyz")
    sliced = tmp_path / "sliced.xyz"
    assert cli_main(["label", f"{inp}@1:", "--method", "gfn2", "--db", str(tmp_path / "s.db"), "--workers", "0",
                     "-o", str(sliced), "--no-progress"]) == 0
    frames = read_structures(str(sliced))
    assert [a.get_chemical_formula() for a in frames] == ["H2", "H2O"]
    assert frames[1].info["energy"] == -1.5 and "total_energy" in frames[1].info
    capsys.readouterr()
    assert cli_main(["label", str(tmp_path), "--method", "gfn2", "--workers", "0"]) == 2
    assert "not a DeePMD system" in capsys.readouterr().err


def test_one_table_of_xtb_methods():
    from psilearn.label.registry import make_labeler
    from psilearn.label.xtb_methods import XTB_METHODS, tblite_name, xtb_method

    assert XTB_METHODS == {"gfn2": "GFN2-xTB", "gfn1": "GFN1-xTB"}
    assert [xtb_method(m) for m in ("GFN2-xTB", "gfn1-xtb", "xtb", " GFN1 ", "pbe0/sto-3g")] == ["gfn2", "gfn1", "gfn2", "gfn1", None]
    assert tblite_name("gfn1") == "GFN1-xTB"
    assert make_labeler("GFN1-xTB").name == make_labeler("gfn1").name == "gfn1"
    with pytest.raises(ValueError, match="unknown xTB method"):
        tblite_name("dftb")


def test_registered_in_main_command_list():
    from psilearn.cli import main

    assert "psilearn.cli.label_cmds" in main.COMMAND_MODULES
