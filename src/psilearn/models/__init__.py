"""Models sharing one protocol: fit(Dataset) -> self, predict(frames) -> Prediction, save(path);
``load(path)`` reads any of them back."""

from psilearn.models.io import ModelFileError, load
from psilearn.models.prediction import Prediction
from psilearn.models.sagpr import SAGPR, SAGPRConfig

__all__ = ["SAGPR", "SAGPRConfig", "Prediction", "load", "ModelFileError"]
