"""README.md's "A short tour" runs as written: every command parses and every file it reads exists
(in the repository, in ../shared/data, or written by an earlier tour command); with `pytest -m slow`
the first three (fit, predict, evaluate: ~15 s) and the whole tour except DFT labeling (~5 min) run."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from psilearn.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
PATH_PREFIXES = ("../shared/data/", "src/psilearn/demo_data/", "examples/")
PATH_SUFFIXES = (".xyz", ".yaml", ".model", ".db", ".json", ".json.gz", ".csv", ".png")
OUTPUT_FLAGS = ("-o", "--output", "--db", "--plot", "--png")
LONG = {"label", "density"}  # DFT (and what reads DFT labels): parsed and path-checked, not run (GFN2-xTB labels run)
READS_DFT = ("dens.xyz", "dens.model")  # outputs of the DFT steps: commands reading them are not run either


def tour_commands() -> list[list[str]]:
    """The command lines of the tour's bash block (comments dropped), split as the shell would."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## A short tour", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [argv for line in block.splitlines() if (argv := shlex.split(line, comments=True))]


def _file(token: str) -> str | None:
    """The file a token names (without an @slice), or None when it is not a path."""
    name = token.split("@", 1)[0]
    return name if name.startswith(PATH_PREFIXES) or name.endswith(PATH_SUFFIXES) else None


def _real(argv: list[str]) -> list[str]:
    """argv with the tour's relative data paths made absolute (the tour runs from the repository root)."""
    out = []
    for tok in argv:
        if tok.startswith("../shared/data/"):
            tok = str(SHARED) + tok[len("../shared/data") :]
        elif tok.startswith(("src/psilearn/demo_data/", "examples/")):
            tok = str(ROOT / tok)
        out.append(tok)
    return out


def test_tour_commands_parse_and_name_existing_files():
    cmds = tour_commands()
    assert len(cmds) >= 10 and all(argv[0] == "psilearn" for argv in cmds)
    parser = build_parser()
    written: set[str] = set()
    for argv in cmds:
        try:
            args = parser.parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"README tour command does not parse: {shlex.join(argv)}")
        assert getattr(args, "func", None), shlex.join(argv)
        outputs = {argv[i + 1] for i, tok in enumerate(argv[:-1]) if tok in OUTPUT_FLAGS}
        for tok in argv[1:]:
            name = _file(tok)
            if name is None or tok in outputs or name in written:
                continue
            if name.startswith("../shared/data/") and not SHARED.is_dir():
                continue  # the public sets are not beside this checkout
            assert (ROOT / name).exists(), f"{shlex.join(argv)}: {name} does not exist and no earlier tour command writes it"
        if argv[1] == "split":  # -o PREFIX writes PREFIX_train.xyz, PREFIX_val.xyz, PREFIX_test.xyz
            outputs = {f"{prefix}_{part}.xyz" for prefix in outputs for part in ("train", "val", "test")}
        written |= outputs


def _run(argv: list[str], capsys) -> None:
    rc = main(_real(argv)[1:])
    err = capsys.readouterr().err
    assert rc == 0, f"{shlex.join(argv)} exited {rc}: {err[-2000:]}"


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_first_tour_commands_run_as_written(in_tmp, capsys):
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    cmds = tour_commands()[:3]
    assert [c[1] for c in cmds] == ["fit", "predict", "evaluate"]
    for argv in cmds:
        _run(argv, capsys)
    assert (in_tmp / "alpha.model" / "model.json").exists() and (in_tmp / "out.xyz").exists() and (in_tmp / "parity.png").exists()


@pytest.mark.slow
def test_whole_tour_runs_as_written(in_tmp, capsys):
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    for argv in tour_commands():
        if (argv[1] not in LONG or "gfn2" in argv) and not set(READS_DFT) & set(argv):  # GFN2-xTB labels take milliseconds
            _run(argv, capsys)
    assert (in_tmp / "nmr.json.gz").exists() and (in_tmp / "alpha-nn.model.loss.png").exists() and (in_tmp / "ir.csv").exists()
