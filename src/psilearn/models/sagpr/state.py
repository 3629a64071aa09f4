"""Model-file state of SA-GPR: sparse environments, feature projections and per-channel GP fits.

Arrays: ``scales`` (n_blocks,); ``sparse/l/sigma/Z`` (M_Z, 2l+1, Q) sparse lambda-SOAP
environments (``-1/0/Z``: their electronic states with ``global_state``); ``proj/l/sigma/Z`` (Q, K)
feature compression; per channel ``chC/P`` (M', r), ``chC/S2`` (r,) and per irrep occurrence
``chC/bB/coef``, ``chC/bB/d``. The layout is that of format version 1 (psilearn 0.1.0).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from psilearn.features import SoapConfig
from psilearn.models._kernel.gpr import ColumnFit, SparseGP
from psilearn.targets import Target


def sagpr_state(model) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, arrays) of a fitted :class:`~psilearn.models.sagpr.SAGPR`."""
    if not model.channels:
        raise RuntimeError("model is not fitted")
    arrays: dict[str, np.ndarray] = {"scales": np.asarray(model.scales)}
    for (l, s), per_z in model.sparse.items():
        for z, x in per_z.items():
            arrays[f"sparse/{l}/{s}/{z}"] = x
    for (l, s), per_z in model.projections.items():
        for z, v in per_z.items():
            arrays[f"proj/{l}/{s}/{z}"] = v
    channels = []
    for ci, cm in enumerate(model.channels):
        arrays[f"ch{ci}/P"] = cm.gp.P
        arrays[f"ch{ci}/S2"] = cm.gp.S2
        cols = []
        for bi, col in cm.columns:
            arrays[f"ch{ci}/b{bi}/coef"] = col.coef
            arrays[f"ch{ci}/b{bi}/d"] = col.d
            cols.append({"block": bi, "reg": col.reg, "s2": col.s2})
        channels.append({"l": cm.channel[0], "sigma": cm.channel[1], "columns": cols})
    meta = {
        "soap": model.soap.to_dict(),
        "config": asdict(model.config),
        "species": model.species,
        "baseline": {str(k): v for k, v in model.baseline.items()},
        "channels": channels,
    }
    return meta, arrays


def sagpr_from_state(cls, meta: dict, arrays: dict[str, np.ndarray]):
    """The fitted ``cls`` (SAGPR) from :func:`sagpr_state`'s metadata and arrays."""
    from psilearn.models.sagpr.config import SAGPRConfig
    from psilearn.models.sagpr.model import ChannelModel

    model = cls(Target.from_dict(meta["target"]), SoapConfig.from_dict(meta["soap"]), SAGPRConfig.from_dict(meta["config"]))
    model.species = [int(z) for z in meta["species"]]
    model.baseline = {int(k): float(v) for k, v in meta["baseline"].items()}
    model.scales = arrays["scales"]
    model.metadata = meta["training"]
    model.sparse = {}
    for name, x in arrays.items():
        if name.startswith("sparse/") or name.startswith("proj/"):
            kind, l, s, z = name.split("/")
            store = model.sparse if kind == "sparse" else model.projections
            store.setdefault((int(l), int(s)), {})[int(z)] = x
    for ci, ch in enumerate(meta["channels"]):
        gp = SparseGP(arrays[f"ch{ci}/P"], arrays[f"ch{ci}/S2"])
        cols = [
            (c["block"], ColumnFit(c["reg"], c["s2"], arrays[f"ch{ci}/b{c['block']}/coef"], arrays[f"ch{ci}/b{c['block']}/d"]))
            for c in ch["columns"]
        ]
        model.channels.append(ChannelModel((ch["l"], ch["sigma"]), gp, cols))
    if set(model._channel_list()) != {cm.channel for cm in model.channels}:
        raise ValueError("channels do not match the target")
    return model
