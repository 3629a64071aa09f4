"""Registry entry of the QEq model kind (``psilearn fit --long-range qeq`` / ``--model qeq``)."""

from __future__ import annotations

from psilearn.features import SoapConfig
from psilearn.targets import Target


def build(target: Target, config: dict, seed: int = 0, progress: bool = False):
    """Unfitted :class:`~psilearn.models.longrange.model.QEqModel`; ``config`` has optional
    sections ``soap`` and ``model`` (QEq options, see :class:`~psilearn.models.longrange.model.QEqConfig`)."""
    from psilearn.models.longrange.model import QEqConfig, QEqModel

    model_cfg = {"seed": seed, **config.get("model", {})}
    return QEqModel(target, SoapConfig.from_dict(config.get("soap")), QEqConfig.from_dict(model_cfg), progress=progress)


def load_from(meta: dict, arrays: dict):
    from psilearn.models.longrange.persist import load_qeq

    return load_qeq(meta, arrays)
