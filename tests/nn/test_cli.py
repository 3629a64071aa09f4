"""`psilearn fit --model nn --config nn.yaml`, predict, evaluate, learning-curve and the ASE
calculator work with the nn kind through the same surfaces as the kernel model."""

from __future__ import annotations

import json

import numpy as np
import yaml

from core._synth import label_frames, molecules
from psilearn.cli.main import main
from psilearn.data import read_structures, write_structures

from .conftest import TINY_NET, TINY_TRAIN


def _setup(tmp_path):
    train = label_frames(molecules(1, 12), "alpha", "sym2", "structure")
    test = label_frames(molecules(2, 4), "alpha", "sym2", "structure")
    write_structures(tmp_path / "train.xyz", train)
    write_structures(tmp_path / "test.xyz", test)
    cfg = tmp_path / "nn.yaml"
    cfg.write_text(yaml.safe_dump({"nn": TINY_NET, "nn_train": {**TINY_TRAIN, "epochs": 3, "checkpoint_every": 2}}))
    return cfg


def test_fit_predict_evaluate_resume_learning_curve(tmp_path, capsys):
    cfg = _setup(tmp_path)
    model = tmp_path / "alpha.model"
    args = ["fit", str(tmp_path / "train.xyz"), "--target", "alpha", "--tensor", "ij=ji", "--model", "nn",
            "--config", str(cfg), "-o", str(model), "--device", "cpu"]
    assert main(args) == 0
    assert (tmp_path / "alpha.model.ckpt" / "member0" / "state.json").exists()
    assert "held-out estimate" in capsys.readouterr().out
    # --resume of a finished run reproduces the same model
    first = read_structures(str(tmp_path / "test.xyz"))
    from psilearn.models import load

    before = load(model).predict(first).values
    assert main(args + ["--resume", "-o", str(tmp_path / "again.model"), "--checkpoint-dir", str(tmp_path / "alpha.model.ckpt")]) == 0
    assert np.array_equal(load(tmp_path / "again.model").predict(first).values, before)
    # the checkpoints of a run are neither replaced silently nor written over an input
    capsys.readouterr()
    assert main(args[:-4] + ["-o", str(tmp_path / "third.model"), "--checkpoint-dir", str(tmp_path / "alpha.model.ckpt")]) == 2
    assert "holds the checkpoints of an earlier training run; pass --resume" in capsys.readouterr().err
    assert main(args[:-4] + ["-o", str(tmp_path / "third.model"), "--checkpoint-dir", str(tmp_path / "train.xyz")]) == 2
    assert "the output is also an input" in capsys.readouterr().err
    assert not (tmp_path / "third.model").exists()

    assert main(["predict", str(model), str(tmp_path / "test.xyz"), "-o", str(tmp_path / "out.xyz")]) == 0
    out = read_structures(str(tmp_path / "out.xyz"))
    assert np.asarray(out[0].info["alpha"]).shape == (9,) and "alpha_std" in out[0].info
    capsys.readouterr()
    assert main(["evaluate", str(model), str(tmp_path / "test.xyz"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert np.isfinite(m["cartesian"]["pct_rmse"]) and 0 <= m["calibration"]["within_1sigma"] <= 1
    assert main(["learning-curve", str(tmp_path / "train.xyz"), str(tmp_path / "test.xyz"), "--target", "alpha",
                 "--tensor", "ij=ji", "--model", "nn", "--config", str(cfg), "--sizes", "4,8"]) == 0
    assert "learning curve" in capsys.readouterr().out
    # run flags are refused for models that do not train iteratively
    assert main(["fit", str(tmp_path / "train.xyz"), "--target", "alpha", "--tensor", "ij=ji", "--model", "sagpr",
                 "-o", str(tmp_path / "k.model"), "--resume"]) == 2


def test_ase_calculator_unchanged(tmp_path):
    from psilearn.calculator import PsilearnCalculator
    from psilearn.models import load
    from psilearn.targets import Target

    from .conftest import fit_tiny

    frames = label_frames(molecules(1, 8), "mu", "vector", "structure")
    model = fit_tiny(frames, Target("mu", tensor="i"))
    model.save(tmp_path / "mu.model")
    atoms = molecules(3, 1)[0]
    atoms.calc = PsilearnCalculator({"dipole": str(tmp_path / "mu.model")}, units={"dipole": "e*A"})  # no units recorded
    mu = atoms.get_dipole_moment()
    assert mu.shape == (3,)
    assert np.allclose(mu, load(tmp_path / "mu.model").predict([atoms]).values[0])
    assert atoms.calc.results["dipole_std"].shape == (3,)
