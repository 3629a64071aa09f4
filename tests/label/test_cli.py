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
        (["label", "{inp}", "--method", "gfn2", "--observables", "spin"], "unknown observable"),
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


def test_registered_in_main_command_list():
    from psilearn.cli import main

    assert "psilearn.cli.label_cmds" in main.COMMAND_MODULES
