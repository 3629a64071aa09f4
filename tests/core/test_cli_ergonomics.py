"""CLI ergonomics: warnings print as one line without a source line; --quiet (before or after the
command) drops progress bars and info lines but keeps results, warnings and errors."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from ase.build import molecule

from psilearn.cli.main import main
from psilearn.data import write_structures

from ._synth import SMALL_MODEL, SMALL_SOAP, label_frames, molecules


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ergonomics")
    frames = []
    for i in range(6):  # spectra without a recorded grid: a GridWarning when read
        a = molecule("H2O")
        a.rattle(0.05, seed=i)
        a.info["dos"] = np.exp(-((np.arange(30) - 10 - i) ** 2) / 4.0)
        frames.append(a)
    write_structures(d / "nogrid.xyz", frames)
    write_structures(d / "train.xyz", label_frames(molecules(5, 12), "alpha", "sym2", "structure"))
    soap = ", ".join(f"{k}: {v}" for k, v in SMALL_SOAP.items())
    (d / "small.yaml").write_text(f"soap: {{{soap}}}\nmodel: {{n_sparse: {SMALL_MODEL['n_sparse']}}}\n")
    return d


def _pca(files, *extra) -> subprocess.CompletedProcess:
    """`psilearn pca` on spectra without a grid, in a fresh interpreter: what a user sees (pytest
    records warnings raised in-process instead of letting them print)."""
    argv = [*extra, "pca", str(files / "nogrid.xyz"), "--key", "dos", "--clusters", "2", "--n-components", "2"]
    return subprocess.run([sys.executable, "-m", "psilearn.cli.main", *argv], capture_output=True, text=True, timeout=300)


def test_warning_prints_one_line_without_source(files):
    res = _pca(files)
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("psilearn: warning: ") and "no grid recorded" in lines[0]
    assert "warnings.warn" not in res.stderr and "GridWarning" not in res.stderr and ".py:" not in res.stderr
    assert "2 components explain" in res.stdout


def test_warnings_stay_recordable_in_process(files, capsys):
    before = (warnings.showwarning, warnings.formatwarning)
    with pytest.warns(UserWarning, match="no grid recorded"):
        assert main(["pca", str(files / "nogrid.xyz"), "--key", "dos", "--clusters", "2", "--n-components", "2"]) == 0
    assert (warnings.showwarning, warnings.formatwarning) == before  # restored after the command


def _fit(files, *extra):
    return main(["fit", str(files / "train.xyz"), "--target", "alpha", "--tensor", "ij=ji", "--config", str(files / "small.yaml"),
                 "-o", str(files / "alpha.model"), *extra])


def test_quiet_drops_progress_and_info_lines(files, capsys):
    assert _fit(files) == 0
    out, err = capsys.readouterr()
    assert "fitting alpha" in err and "saved to" in out
    for args in (["--quiet"], ["-q"]):  # after the command
        assert _fit(files, *args, "--overwrite") == 0
        out, err = capsys.readouterr()
        assert err == "" and "saved to" in out and "held-out estimate" in out
    assert main(["--quiet", "predict", str(files / "alpha.model"), str(files / "train.xyz"), "-o", str(files / "p.xyz")]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "predicted alpha" in out


def test_quiet_keeps_warnings_and_errors(files, capsys):
    res = _pca(files, "--quiet")
    assert res.returncode == 0 and res.stderr.startswith("psilearn: warning: ") and len(res.stderr.splitlines()) == 1
    assert main(["fit", str(files / "missing.xyz"), "--target", "alpha", "-o", str(files / "m.model"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "psilearn fit: error:" in err
