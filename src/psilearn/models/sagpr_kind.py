"""Registry entry for SA-GPR: building from a config dict and loading from a model file."""

from __future__ import annotations

from psilearn.features import SoapConfig
from psilearn.models.sagpr import SAGPR, SAGPRConfig
from psilearn.targets import Target


def build(target: Target, config: dict, seed: int = 0, progress: bool = False) -> SAGPR:
    """``config`` has optional sections ``soap`` and ``model`` (see psilearn.config)."""
    model_cfg = {"seed": seed, **config.get("model", {})}
    return SAGPR(target, SoapConfig.from_dict(config.get("soap")), SAGPRConfig.from_dict(model_cfg), progress=progress)


def load_from(meta: dict, arrays: dict):
    from psilearn.models.io import _load_sagpr

    return _load_sagpr(meta, arrays)
