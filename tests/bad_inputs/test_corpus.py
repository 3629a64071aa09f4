"""Every bad input gets one clear line: the corpus of cases.py through the real CLI entry point.

For each case: the exit code, the expected fragment in the error line, no traceback, the message
on one line, and nothing modified or left behind in the case's directory (inputs unchanged, no
output, no temporary file)."""

from __future__ import annotations

import pytest

from psilearn.cli.main import main

from .cases import CASES
from .conftest import snapshot


def test_the_corpus_is_large_and_named_uniquely():
    ids = [c.id for c in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_gets_one_clear_line(case, case_dir, capsys):
    if case.make is not None:
        case.make(case_dir)
    before = snapshot(case_dir)
    try:
        code = main(list(case.argv))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == case.code, f"exit code {code}; stderr: {err}"
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "no error message"
    assert case.expect in lines[-1], f"expected {case.expect!r} in the error line, got: {err}"
    assert lines[-1].startswith("psilearn "), err
    assert snapshot(case_dir) == before, "an input was modified or an output left behind"
