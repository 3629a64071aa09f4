"""Registry entry for the spectrum model (``psilearn fit-spectrum``, ``psilearn.models.load``)."""

from __future__ import annotations

from psilearn.features import SoapConfig
from psilearn.models.spectra.config import SpectrumConfig
from psilearn.targets import Target


def build(target: Target, config: dict, seed: int = 0, progress: bool = False):
    """``config`` has optional sections ``soap`` and ``model`` (SpectrumConfig options)."""
    from psilearn.models.spectra.model import SpectrumModel

    if not target.is_spectrum:
        raise ValueError(f"--model spectrum needs a spectrum target with a grid; use `psilearn fit-spectrum` (target {target.key!r} has none)")
    model_cfg = {"seed": seed, **config.get("model", {})}
    return SpectrumModel(target, SoapConfig.from_dict(config.get("soap")), SpectrumConfig.from_dict(model_cfg), progress=progress)


def load_from(meta: dict, arrays: dict):
    from psilearn.models.spectra.io import load_spectrum_model

    return load_spectrum_model(meta, arrays)
