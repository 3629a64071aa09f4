"""Model-file state of the spectrum model (written by Model.save with the container of psilearn.models.io)."""

from __future__ import annotations

import numpy as np


def spectrum_state(model) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, arrays) of a fitted spectrum model."""
    if model.fit_ is None:
        raise RuntimeError("model is not fitted")
    t = model.transform
    arrays = {
        "gp/P": model.gp.P,
        "gp/S2": model.gp.S2,
        "fit/coef": model.fit_.coef,
        "fit/s2": model.fit_.s2,
        "transform/baseline": t.baseline,
    }
    for z, x in model.sparse[(0, 1)].items():
        arrays[f"sparse/{z}"] = x
    if t.components is not None:
        arrays["transform/pca_mean"] = t.pca_mean
        arrays["transform/components"] = t.components
    if model.train_shifts is not None:
        arrays["train_shifts"] = np.asarray(model.train_shifts)
    meta = {
        "soap": model.soap.to_dict(),
        "config": model.config.to_dict(),
        "species": model.species,
        "centre_species": model.centre_species,
        "baseline_species": model.baseline_species,
        "reg": model.fit_.reg,
        "scale": t.scale,
    }
    return meta, arrays


def spectrum_from_state(cls, meta: dict, arrays: dict):
    """The fitted ``cls`` (SpectrumModel) from :func:`spectrum_state`'s metadata and arrays."""
    from psilearn.features import SoapConfig
    from psilearn.models._kernel.gpr import SparseGP
    from psilearn.models.spectrum.config import SpectrumConfig
    from psilearn.models.spectrum.regression import ColumnsFit
    from psilearn.models.spectrum.transform import TargetTransform
    from psilearn.targets import Target

    model = cls(Target.from_dict(meta["target"]), SoapConfig.from_dict(meta["soap"]), SpectrumConfig.from_dict(meta["config"]))
    model.species = [int(z) for z in meta["species"]]
    model.centre_species = [int(z) for z in meta["centre_species"]]
    model.baseline_species = [int(z) for z in meta["baseline_species"]]
    model.sparse = {(0, 1): {int(z): arrays[f"sparse/{z}"] for z in model.centre_species}}
    model.gp = SparseGP(arrays["gp/P"], arrays["gp/S2"])
    model.fit_ = ColumnsFit(float(meta["reg"]), arrays["fit/coef"], arrays["fit/s2"])
    model.transform = TargetTransform(arrays["transform/baseline"], float(meta["scale"]),
                                      arrays.get("transform/pca_mean"), arrays.get("transform/components"))
    model.train_shifts = arrays.get("train_shifts")
    model.metadata = meta["training"]
    if model.transform.baseline.shape[1] != model.target.size or model.fit_.coef.shape[1] != model.transform.n_columns:
        raise ValueError("array shapes do not match the target grid")
    return model
