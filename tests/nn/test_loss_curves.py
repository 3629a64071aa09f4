"""`psilearn fit --model nn` writes MODEL.loss.csv and MODEL.loss.png beside the model (every
ensemble member); the model directory itself is unchanged and loads as before."""

from __future__ import annotations

import csv
import json

import yaml

from core._synth import label_frames, molecules
from psilearn.cli.main import main
from psilearn.data import write_structures
from psilearn.evaluation.loss_curves import training_histories, write_loss_curves

from .conftest import TINY_NET, TINY_TRAIN


def test_fit_writes_loss_curves_of_every_member(tmp_path, capsys):
    write_structures(tmp_path / "train.xyz", label_frames(molecules(1, 12), "mu", "vector", "structure"))
    cfg = tmp_path / "nn.yaml"
    cfg.write_text(yaml.safe_dump({"nn": TINY_NET, "nn_train": {**TINY_TRAIN, "epochs": 3, "uncertainty": "ensemble", "ensemble_size": 2}}))
    model = tmp_path / "mu.model"
    assert main(["fit", str(tmp_path / "train.xyz"), "--target", "mu", "--tensor", "i", "--model", "nn", "--config", str(cfg),
                 "-o", str(model), "--device", "cpu"]) == 0
    assert "loss curves: " in capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / "mu.model.loss.csv")))
    assert [(r["member"], r["epoch"]) for r in rows] == [(str(k), str(e)) for k in range(2) for e in range(1, 4)]
    assert all(float(r["train_loss"]) > 0 and float(r["val_loss"]) > 0 and float(r["lr"]) > 0 for r in rows)
    png = (tmp_path / "mu.model.loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert sorted(p.name for p in model.iterdir()) == ["arrays.npz", "model.json"]  # siblings, not inside the model
    meta = json.loads((model / "model.json").read_text())["training"]
    assert len(training_histories(meta)) == 2

    from psilearn.observe.chemiscope_export import export_chemiscope

    s = export_chemiscope(str(model), str(tmp_path / "train.xyz"), tmp_path / "mu.json")
    assert "default SOAP settings" in s["map"] and "mu_norm_std" in s["properties"]


def test_legacy_and_non_iterative_metadata(tmp_path):
    hist = [{"epoch": 1, "lr": 1e-3, "train_loss": 1.0, "val_loss": 2.0}, {"epoch": 2, "lr": 1e-3, "train_loss": 0.5, "val_loss": None}]
    # psilearn <= 0.2.0 kept the first member's history only, at the top level
    csv_path, png_path = write_loss_curves({"members": [{"epochs": 2}], "history": hist}, tmp_path / "old.model/")
    assert csv_path.name == "old.model.loss.csv" and png_path.exists()
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "member,epoch,train_loss,val_loss,lr" and lines[2].split(",")[3] == ""
    assert write_loss_curves({"heldout_metrics": {}}, tmp_path / "k.model") is None
    assert not (tmp_path / "k.model.loss.csv").exists()
