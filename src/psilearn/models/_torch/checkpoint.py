"""Training checkpoints: a directory with ``state.json`` and ``tensors.safetensors``, written atomically.

Never pickled: tensors (weights, EMA weights, best weights, AdamW moments) go to safetensors, every
other piece of state (epoch, learning rate, early-stopping counters, history) to JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

STATE, TENSORS = "state.json", "tensors.safetensors"


def optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state_dict into flat tensors and a JSON-able remainder."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt/{idx}/{k}"] = v.detach().reshape(-1).clone() if v.dim() == 0 else v.detach().clone()
                if v.dim() == 0:
                    scalars[f"{idx}/{k}"] = "0d"
            else:
                scalars[f"{idx}/{k}"] = v
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict) -> None:
    state: dict = {}
    for name, v in tensors.items():
        if not name.startswith("opt/"):
            continue
        _, idx, k = name.split("/", 2)
        zero_d = info["scalars"].get(f"{idx}/{k}") == "0d"
        state.setdefault(int(idx), {})[k] = v.reshape(()) if zero_d else v
    for key, v in info["scalars"].items():
        if v != "0d":
            idx, k = key.split("/", 1)
            state.setdefault(int(idx), {})[k] = v
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in info["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(path, state: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``state`` (JSON) and ``tensors`` to directory ``path``, replacing it atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / TENSORS))
        (tmp / STATE).write_text(json.dumps(state))
        if path.exists():
            old = path.with_name(path.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_checkpoint(path) -> tuple[dict, dict[str, torch.Tensor]] | None:
    """(state, tensors) from a checkpoint directory, or None if there is none."""
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / STATE).exists() or not (path / TENSORS).exists():
        return None
    return json.loads((path / STATE).read_text()), load_file(str(path / TENSORS))
