"""`psilearn active` through the CLI entry: a run, and one clear line for each bad input."""

from __future__ import annotations

import json

import pytest

from psilearn.cli.main import main

from ._common import CFG_YAML, POOL


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CFG_YAML)
    return str(path)


def _args(cfg, out, *extra, pool=POOL, init="4", batch="3", budget="10"):
    return ["active", pool, "--target", "dipole_moment", "--tensor", "i", "--oracle", "dipole_moment", "--init", init,
            "--batch", batch, "--budget", budget, "--config", cfg, "-o", str(out), *extra]


def _error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("psilearn")]
    assert len(err) == 1, err
    return err[0]


def test_cli_run_and_resume_refusal(cfg, tmp_path, capsys):
    out = tmp_path / "m.model"
    assert main(_args(cfg, out, "--seed", "1")) == 0
    captured = capsys.readouterr()
    assert "round 2: fitted on 10" in captured.err and "saved" in captured.out
    assert main(_args(cfg, tmp_path / "m2.model", "--seed", "2", "--state-dir", str(tmp_path / "m.model.active"))) == 2
    msg = _error(capsys)
    assert "other options" in msg and "seed: 1 -> 2" in msg and "--overwrite" in msg
    assert main(_args(cfg, out, "--seed", "1")) == 2  # finished: the model is not replaced silently
    assert "a model already exists there; pass --overwrite" in _error(capsys)
    log = (tmp_path / "m.model.active" / "log.json").read_text()
    assert main(_args(cfg, out, "--seed", "1", "--overwrite")) == 0  # same options: refit from the log, same picks
    assert "resuming" in capsys.readouterr().err
    assert (tmp_path / "m.model.active" / "log.json").read_text() == log
    assert main(_args(cfg, out, "--seed", "2", "--overwrite")) == 0  # other options: start over
    assert "starting" in capsys.readouterr().err


@pytest.mark.parametrize("change, fragment", [
    ({"budget": "3"}, "--budget 3 is smaller than the initial set --init 4"),
    ({"init": "0"}, "--init must be >= 1"),
    ({"batch": "0"}, "--batch must be >= 1"),
    ({"budget": "60"}, "holds 50 structures, fewer than --budget 60"),
])
def test_bad_sizes(cfg, tmp_path, capsys, change, fragment):
    assert main(_args(cfg, tmp_path / "m.model", **change)) == 2
    assert fragment in _error(capsys)
    assert not (tmp_path / "m.model").exists() and not (tmp_path / "m.model.active").exists()


def test_unknown_kind_and_missing_source(cfg, tmp_path, capsys):
    assert main(_args(cfg, tmp_path / "m.model", "--model", "gpr2")) == 2
    assert "unknown model 'gpr2'" in _error(capsys)
    args = _args(cfg, tmp_path / "m.model")
    i = args.index("--oracle")
    del args[i:i + 2]
    assert main(args) == 2
    assert "either --oracle KEY" in _error(capsys)


def test_oracle_key_missing_in_a_frame(cfg, tmp_path, capsys):
    from psilearn.data import read_structures, write_structures

    frames = read_structures(POOL)[:20]
    del frames[7].info["dipole_moment"]
    pool = tmp_path / "pool.xyz"
    write_structures(str(pool), frames, format="extxyz")
    assert main(_args(cfg, tmp_path / "m.model", pool=str(pool))) == 2
    msg = _error(capsys)
    assert str(pool) in msg and "frame 7" in msg and "'dipole_moment'" in msg


def test_oracle_must_be_the_target(cfg, tmp_path, capsys):
    args = _args(cfg, tmp_path / "m.model")
    args[args.index("--oracle") + 1] = "alpha"
    assert main(args) == 2
    assert "--oracle 'alpha' must be the --target key 'dipole_moment'" in _error(capsys)


def test_calibration_neighbours_on_the_command_line(cfg, tmp_path, capsys):
    """--calibration-neighbours reaches the loop (its rounds say so), and a use it cannot serve is one line, exit 2."""
    out = tmp_path / "m.model"
    assert main(_args(cfg, out, "--calibration-neighbours", "3")) == 0
    log = json.loads((tmp_path / "m.model.active" / "log.json").read_text())
    assert log["options"]["calibration_neighbours"] == 3
    assert all("local calibration" in r["acquisition"] for r in log["rounds"][1:])
    capsys.readouterr()
    assert main(_args(cfg, tmp_path / "r.model", "--strategy", "random", "--calibration-neighbours", "3")) == 2
    assert "--calibration-neighbours must be >= 0, and goes with --strategy variance or targeted" in _error(capsys)
