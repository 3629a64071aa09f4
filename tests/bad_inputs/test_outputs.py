"""Nothing lost: outputs never replace inputs, models or databases (without --overwrite), are
written atomically, and a crash or Ctrl-C mid-write leaves the old file intact and no partial one."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import ase.io
import numpy as np
import pytest

from psilearn.cli.main import main
from psilearn.data import read_structures, write_structures
from psilearn.data.outputs import atomic_write, check_output, check_outputs, is_sqlite, open_atomic
from psilearn.errors import DataError
from psilearn.models import load
from psilearn.models.io import ModelFileError

from .conftest import snapshot


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_predict_in_place_is_refused_and_the_input_unchanged(case_dir, capsys):
    before = sha("good.xyz")
    assert main(["predict", "e.model", "good.xyz", "-o", "good.xyz"]) == 2
    assert "the output is also an input" in capsys.readouterr().err
    assert sha("good.xyz") == before


def test_db_export_onto_itself_is_refused_and_the_database_intact(case_dir, capsys):
    before = sha("labels.db")
    assert main(["db", "export", "labels.db", "-o", "labels.db"]) == 2
    assert "the output is also an input" in capsys.readouterr().err
    assert sha("labels.db") == before and is_sqlite("labels.db")
    assert main(["db", "status", "labels.db"]) == 0  # still a working database
    assert main(["db", "export", "labels.db", "-o", "export/labels.xyz"]) == 0  # missing directory created
    assert len(read_structures("export/labels.xyz")) == 2


def test_existing_model_refused_without_overwrite_and_replaced_with_it(case_dir, capsys):
    fit = ["fit", "good.xyz", "--target", "dipole_moment", "--tensor", "i", "--model", "baseline", "-o", "e.model"]
    before = snapshot(case_dir / "e.model")
    assert main(fit) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert snapshot(case_dir / "e.model") == before and load("e.model").target.key == "total_energy"
    assert main([*fit, "--overwrite"]) == 0
    assert load("e.model").target.key == "dipole_moment"
    assert not [p for p in case_dir.iterdir() if p.name.startswith(".")], "temporary directories left behind"


def test_model_save_refuses_to_replace_unless_told(case_dir):
    model = load("e.model")
    with pytest.raises(ModelFileError, match="already exists"):
        model.save("e.model")
    model.save("e.model", overwrite=True)
    model.save("sub/dir/copy.model")  # missing directories created
    assert load("sub/dir/copy.model").target == model.target


def test_crash_while_saving_a_model_keeps_the_old_one(case_dir, monkeypatch):
    model = load("e.model")
    before = snapshot(case_dir / "e.model")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        model.save("e.model", overwrite=True)
    assert snapshot(case_dir / "e.model") == before
    assert not [p for p in case_dir.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("error", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_crash_mid_write_leaves_the_old_file_and_no_partial_one(case_dir, monkeypatch, error):
    frames = read_structures("good.xyz")
    write_structures("out.xyz", frames[:2])
    before = sha("out.xyz")
    real_write = ase.io.write

    def half_then_crash(path, images, **kwargs):
        real_write(path, images[:1], **kwargs)  # part of the output is on disk ...
        raise error  # ... when the writer dies

    monkeypatch.setattr(ase.io, "write", half_then_crash)
    with pytest.raises(type(error)):
        write_structures("out.xyz", frames)
    with pytest.raises(type(error)):
        write_structures("new.xyz", frames)
    assert sha("out.xyz") == before
    assert not os.path.exists("new.xyz")
    assert not [p.name for p in case_dir.iterdir() if "psilearn-tmp" in p.name]


def test_crash_in_the_cli_leaves_no_output(case_dir, monkeypatch, capsys):
    def crash(*args, **kwargs):
        with open(args[0], "w") as fh:
            fh.write("2\n")  # a truncated extxyz
        raise KeyboardInterrupt

    monkeypatch.setattr(ase.io, "write", crash)
    assert main(["predict", "e.model", "good.xyz", "-o", "pred.xyz"]) == 130
    assert sorted(p.name for p in case_dir.iterdir() if "pred" in p.name) == []


def test_atomic_text_and_figure_writers(case_dir):
    with open_atomic("a/b/table.csv") as fh:
        fh.write("x,y\n")
    assert Path("a/b/table.csv").read_text() == "x,y\n"
    with pytest.raises(ValueError), open_atomic("a/b/table.csv") as fh:
        fh.write("partial")
        raise ValueError("crash")
    assert Path("a/b/table.csv").read_text() == "x,y\n"
    with atomic_write("plot.png") as tmp:
        assert tmp.endswith("plot.png") and Path(tmp).parent == Path(".")  # same directory, same suffix
        Path(tmp).write_bytes(b"png")
    assert Path("plot.png").read_bytes() == b"png"
    assert oct(Path("plot.png").stat().st_mode & 0o777) != oct(0o600)


def test_check_output_rules(case_dir):
    check_output("good.xyz")  # an ordinary file is replaced
    for bad, inputs, kind, words in [
        ("good.xyz", ["good.xyz@:2"], "file", "also an input"),
        ("e.model", [], "model", "pass --overwrite"),
        ("good.xyz", [], "model", "not a psilearn model"),
        ("labels.db", [], "file", "SQLite database"),
        ("good.xyz", [], "database", "not an SQLite database"),
        ("afile/x", [], "file", "is a file, not a directory"),
        ("e.model", [], "file", "is a directory (a psilearn model)"),
        ("afile", [], "directory", "not a directory"),
    ]:
        with pytest.raises(DataError, match=words.replace("(", r"\(").replace(")", r"\)")):
            check_output(bad, inputs, kind=kind)
    check_output("e.model", kind="model", overwrite=True)
    check_output("labels.db", kind="database")  # appending to a label database is its normal use
    check_output("labels.db", kind="file", overwrite=True)
    with pytest.raises(DataError, match="the same path as -o"):
        check_outputs({"-o": ("x.csv", "file"), "--csv": ("./x.csv", "file")})
