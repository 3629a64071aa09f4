"""Model-file state of SA-GPR: sparse environments, feature projections and per-channel GP fits.

Arrays: ``scales`` (n_blocks,); the sparse environments either as ``sparse_coef/Z`` (M_Z, C), their
density-expansion coefficients, from which loading rebuilds their lambda-SOAP blocks exactly
(metadata ``sparse_storage: coefficients``, psilearn >= 0.2: ~20x smaller), or as the blocks
themselves ``sparse/l/sigma/Z`` (M_Z, 2l+1, Q) (psilearn 0.1.0); ``sparse/-1/0/Z``: their electronic
states with ``global_state``; ``proj/l/sigma/Z`` (Q, K) feature compression; per channel ``chC/P``
(M', r) (float32 from 0.2 when the variance of every training row then changes by < 1e-5 relative,
checked at fit (:meth:`SparseGP.choose_precision`); float64 otherwise, as with a tiny regularisation,
where float32 rounding made variances negative; the mean never changes),
``chC/S2`` (r,) and per irrep occurrence ``chC/bB/coef``, ``chC/bB/d``. With ``covariance_storage:
training`` (metadata ``covariance_storage``) P, S2 and d are left out and the training environments
are stored instead, as ``train/numbers``, ``train/structure``, ``train/coef/Z`` (and ``train/states``):
see :mod:`psilearn.models.sagpr.covariance`.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from psilearn.features import SoapConfig
from psilearn.models._kernel.gpr import ColumnFit, SparseGP
from psilearn.models._kernel.sparse import rebuild_sparse
from psilearn.models._kernel.state_kernel import SPARSE_STATE_KEY
from psilearn.targets import Target


def sagpr_state(model) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, arrays) of a fitted :class:`~psilearn.models.sagpr.SAGPR`."""
    if not model.channels:
        raise RuntimeError("model is not fitted")
    arrays: dict[str, np.ndarray] = {"scales": np.asarray(model.scales)}
    compact = bool(model.sparse_coefficients)
    for (l, s), per_z in model.sparse.items():
        if compact and (l, s) != SPARSE_STATE_KEY:
            continue
        for z, x in per_z.items():
            arrays[f"sparse/{l}/{s}/{z}"] = x
    for z, c in model.sparse_coefficients.items():
        arrays[f"sparse_coef/{z}"] = c
    for (l, s), per_z in model.projections.items():
        for z, v in per_z.items():
            arrays[f"proj/{l}/{s}/{z}"] = v
    from_training = bool(model.training_envs)
    for name, x in model.training_envs.items():
        arrays[f"train/{name}"] = x
    channels = []
    for ci, cm in enumerate(model.channels):
        if not from_training:
            arrays[f"ch{ci}/P"] = cm.gp.P.astype(np.float32) if compact and not cm.gp.float64 else cm.gp.P
            arrays[f"ch{ci}/S2"] = cm.gp.S2
        cols = []
        for bi, col in cm.columns:
            arrays[f"ch{ci}/b{bi}/coef"] = col.coef
            if not from_training:
                arrays[f"ch{ci}/b{bi}/d"] = col.d
            cols.append({"block": bi, "reg": col.reg, "s2": col.s2})
        channels.append({"l": cm.channel[0], "sigma": cm.channel[1], "columns": cols})
    config = asdict(model.config)
    if config["magnetic_moments"] == "none":  # files without moments stay as before the option
        del config["magnetic_moments"]
    meta = {
        "soap": model.soap.to_dict(),
        "config": config,
        "species": model.species,
        "baseline": {str(k): v for k, v in model.baseline.items()},
        "channels": channels,
    }
    if compact:
        meta["sparse_storage"] = "coefficients"
    if model.config.magnetic_moments != "none":  # what predict needs besides the structures
        meta["required_inputs"] = {"arrays": {"initial_magmoms": model.config.magnetic_moments}}
    if from_training:
        meta["covariance_storage"] = "training"
    return meta, arrays


def sagpr_from_state(cls, meta: dict, arrays: dict[str, np.ndarray]):
    """The fitted ``cls`` (SAGPR) from :func:`sagpr_state`'s metadata and arrays."""
    from psilearn.models.sagpr.config import SAGPRConfig
    from psilearn.models.sagpr.model import ChannelModel

    model = cls(Target.from_dict(meta["target"]), SoapConfig.from_dict(meta["soap"]), SAGPRConfig.from_dict(meta["config"]))
    model.species = [int(z) for z in meta["species"]]
    model.baseline = {int(k): [float(x) for x in np.atleast_1d(v)] for k, v in meta["baseline"].items()}
    model.scales = arrays["scales"]
    model.metadata = meta["training"]
    model.sparse = {}
    for name, x in arrays.items():
        if name.startswith("sparse/") or name.startswith("proj/"):
            kind, l, s, z = name.split("/")
            store = model.sparse if kind == "sparse" else model.projections
            store.setdefault((int(l), int(s)), {})[int(z)] = x
    if meta.get("sparse_storage") == "coefficients":
        rebuild_sparse(model, {int(k.split("/")[1]): v for k, v in arrays.items() if k.startswith("sparse_coef/")})
    from_training = meta.get("covariance_storage") == "training"
    if from_training:  # the covariance basis is rebuilt on the first prediction with std
        model.training_envs = {k[len("train/"):]: v for k, v in arrays.items() if k.startswith("train/")}
    for ci, ch in enumerate(meta["channels"]):
        if from_training:
            gp = SparseGP(None, None)
        else:  # a float64 P in the file: the fit found float32 would change the variance; kept so when saved again
            p = arrays[f"ch{ci}/P"]
            gp = SparseGP(np.asarray(p, dtype=np.float64), arrays[f"ch{ci}/S2"], p.dtype == np.float64)
        cols = [
            (c["block"], ColumnFit(c["reg"], c["s2"], arrays[f"ch{ci}/b{c['block']}/coef"],
                                   None if from_training else arrays[f"ch{ci}/b{c['block']}/d"]))
            for c in ch["columns"]
        ]
        model.channels.append(ChannelModel((ch["l"], ch["sigma"]), gp, cols))
    if set(model._channel_list()) != {cm.channel for cm in model.channels}:
        raise ValueError("channels do not match the target")
    return model
