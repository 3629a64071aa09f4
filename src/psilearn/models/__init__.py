"""Models sharing one protocol (:class:`psilearn.models.base.Model`): fit(Dataset) -> self,
predict(frames) -> Prediction, to_state/from_state for model files; ``load(path)`` reads any of
them back through the registry (:mod:`psilearn.models.registry`).

Kernel models import featomic; network models import torch and e3nn, lazily (on first use of
their names here), so that ``from psilearn.models import load`` stays light.
"""

from importlib import import_module

from psilearn.data.prediction import Prediction
from psilearn.models.base import Model
from psilearn.models.io import ModelFileError, load
from psilearn.models.registry import MODEL_KINDS

# every registered model class (from the registry, so a new kind is exported by its registry line)
# and the option classes of the built-in kinds
_LAZY = {spec.split(":")[1]: spec.split(":")[0] for spec, _ in MODEL_KINDS.values()}
_LAZY.update({
    "SAGPRConfig": "psilearn.models.sagpr", "NetworkConfig": "psilearn.models.nn", "TrainConfig": "psilearn.models.nn",
    "QEqConfig": "psilearn.models.qeq", "QEqNNConfig": "psilearn.models.qeq", "SpectrumConfig": "psilearn.models.spectrum",
})
__all__ = ["Model", "Prediction", "load", "ModelFileError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'psilearn.models' has no attribute {name!r}")
