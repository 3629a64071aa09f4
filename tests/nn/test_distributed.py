"""Data-parallel training (PyTorch DDP, gloo on CPU): two processes give the run of one process.

The training set and batch size leave the last global batch with a single structure, so one rank
has nothing of its own there (it runs a zero-weighted structure to join the gradient reduction);
per-atom targets make the ranks' sample counts differ, which a per-rank mean would get wrong (and
so, again, do labels on only some atoms: the count is of labelled atoms).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core._synth import label_frames, molecules
from psilearn.data import load_dataset
from psilearn.targets import Target

from ._ddp import free_port, run_two
from .conftest import tiny_model

ATOM = Target("y", tensor="i", per="atom")
TRAIN = dict(epochs=3, batch_size=3, dtype="float64", val_fraction=0.25)  # 10 training structures: batches 3, 3, 3, 1


def _frames(masked: bool = False):
    frames = label_frames(molecules(5, 13), "y", "vector", "atom")
    if masked:  # labels on the heavy atoms only (NaN on H): the ranks' labelled-atom counts differ
        for a in frames:
            a.arrays["has_tensor"] = (a.numbers != 1).astype(int)
            a.arrays["y"][a.numbers == 1] = np.nan
    return frames


def _fit(checkpoint_dir: str | None = None, masked: bool = False):
    torch.set_num_threads(1)
    data = load_dataset(_frames(masked), ATOM, label_mask="has_tensor" if masked else None)
    return tiny_model(ATOM, train=TRAIN, checkpoint_dir=checkpoint_dir).fit(data)


def _result(model) -> dict:
    pred = model.predict(_frames())
    return {"weights": {k: v.clone() for k, v in model.nets[0].state_dict().items()}, "values": pred.values,
            "std": pred.std, "history": model.metadata["history"], "members": model.metadata["members"]}


def _rank_fit(rank: int, tmp: str, masked: bool) -> dict:
    return _result(_fit(checkpoint_dir=f"{tmp}/ckpt{rank}", masked=masked))


@pytest.mark.parametrize("masked", [False, True], ids=["all-atoms", "label-mask"])
def test_two_gloo_processes_train_the_same_network_as_one(tmp_path, masked):
    one = _result(_fit(masked=masked))
    ranks = run_two(_rank_fit, (str(tmp_path), masked), tmp_path)
    assert ranks[0]["members"][0]["processes"] == 2 and "processes" not in one["members"][0]
    assert one["history"][-1]["train_loss"] != one["history"][0]["train_loss"]  # it trained
    for two in ranks:  # both ranks hold the network of the one-process run
        for k, w in one["weights"].items():
            np.testing.assert_allclose(two["weights"][k].numpy(), w.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)
        np.testing.assert_allclose(two["values"], one["values"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(two["std"], one["std"], rtol=1e-7, atol=1e-12)  # LLPR: a matrix inverse
        for h1, h2 in zip(one["history"], two["history"]):
            assert h2["train_loss"] == pytest.approx(h1["train_loss"], rel=1e-10) and h2["val_loss"] == pytest.approx(h1["val_loss"], rel=1e-10)
    # only rank 0 wrote its checkpoint
    assert (tmp_path / "ckpt0" / "member0" / "state.json").exists() and not (tmp_path / "ckpt1").exists()


def test_one_process_is_not_distributed():
    from psilearn.models._torch import distributed

    assert not distributed.launched() and not distributed.active() and distributed.is_main()
    assert distributed.world_size() == 1 and distributed.all_sum([1.0, 2.0], torch.device("cpu")) == [1.0, 2.0]


def test_launch_seen_in_the_environment(monkeypatch):
    from psilearn.cli.main import distributed_launch, secondary_rank

    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(k, raising=False)
    assert not distributed_launch() and not secondary_rank()
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_PROCID", "3")  # an srun job step without MASTER_ADDR is not a DDP launch
    assert not distributed_launch() and not secondary_rank()
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    assert distributed_launch() and secondary_rank()
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun's variables win
    monkeypatch.setenv("RANK", "0")
    assert distributed_launch() and not secondary_rank()


def test_tune_refused_under_a_launch(tmp_path, monkeypatch, capsys):
    from ase.io import write

    from psilearn.cli.main import main

    write(tmp_path / "train.xyz", label_frames(molecules(5, 4), "y", "vector", "structure"))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["fit", str(tmp_path / "train.xyz"), "--target", "y", "--tensor", "i", "--tune", "5", "-o", str(tmp_path / "m")]) == 2
    assert "--tune runs in one process" in capsys.readouterr().err and not (tmp_path / "m").exists()


def _launch(how: str, args: list[str], env: dict) -> tuple[str, str]:
    """Two processes of `psilearn ARGS`: through torchrun, or as a plain `srun -n 2` would start them
    (SLURM_NTASKS/SLURM_PROCID/SLURM_LOCALID with MASTER_ADDR). Returns (stdout, stderr) of all."""
    port = str(free_port())
    if how == "torchrun":
        run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", port,
                              "-m", "psilearn.cli.main", *args], capture_output=True, text=True, env=env, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        return run.stdout, run.stderr
    procs = [subprocess.Popen([sys.executable, "-m", "psilearn.cli.main", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**env, "SLURM_NTASKS": "2", "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r), "MASTER_ADDR": "127.0.0.1",
                                   "MASTER_PORT": port}) for r in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    return "".join(o for o, _ in outs), "".join(e for _, e in outs)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["torchrun", "srun"])
def test_two_process_cli_fit_matches_one_process(tmp_path, how):
    """`torchrun --nproc_per_node 2 -m psilearn.cli.main fit ...` (or srun's variables): one model
    written, by rank 0, equal to the one-process fit's; the result lines printed once."""
    from ase.io import write

    from psilearn.cli.main import main
    from psilearn.models import load

    write(tmp_path / "train.xyz", label_frames(molecules(5, 13), "y", "vector", "structure"))
    (tmp_path / "nn.yaml").write_text("nn: {cutoff: 3.5, channels: 4, layers: 2, correlation: 2, lmax: 2, n_basis: 6, radial_hidden: 16}\n"
                                      "nn_train: {epochs: 3, batch_size: 3, val_fraction: 0.25, threads: 1, dtype: float64}\n")
    args = ["fit", str(tmp_path / "train.xyz"), "--target", "y", "--tensor", "i", "--model", "nn", "--config", str(tmp_path / "nn.yaml")]
    assert main([*args, "-o", str(tmp_path / "one")]) == 0
    import psilearn

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(Path(psilearn.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    out, err = _launch(how, [*args, "-o", str(tmp_path / "two")], env)
    assert out.count("saved to") == 1 and err.count("fitting y") == 1
    frames = label_frames(molecules(5, 13), "y", "vector", "structure")
    one, two = load(tmp_path / "one"), load(tmp_path / "two")
    assert two.metadata["members"][0]["processes"] == 2
    np.testing.assert_allclose(two.predict(frames).values, one.predict(frames).values, rtol=1e-9, atol=1e-12)
