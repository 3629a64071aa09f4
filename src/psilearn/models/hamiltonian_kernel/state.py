"""Model-file state of the ``hamiltonian-sagpr`` kind.

Per block type NAME (``O-H-pair``, ``H-H-onsite``, ...): ``NAME/sparse`` (M, C) the sparse centres'
expansion coefficients (their lambda-SOAP blocks are rebuilt on load exactly as at fit time), and per
channel ``NAME/L<L>p<+1|-1>/{starts,coef,mean,reg,s2}``. Metadata: the soap and model options, the
species, and per block type its key, irreps length and training count. The Target is written by
:meth:`psilearn.models.base.Model.save`.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from psilearn.features import SoapConfig
from psilearn.features.pair_soap import PairSoap
from psilearn.models.hamiltonian_kernel.blocks import BlockTypeFit, Channel
from psilearn.models.hamiltonian_kernel.config import HamiltonianKernelConfig
from psilearn.targets import Target

_FIELDS = ("starts", "coef", "mean", "reg", "s2")


def _prefix(key) -> str:
    from psilearn.models.hamiltonian_kernel.model import _name

    return _name(key)


def kernel_state(model) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, arrays) of a fitted HamiltonianKernelModel."""
    if not model.fits:
        raise RuntimeError("model is not fitted")
    arrays: dict[str, np.ndarray] = {}
    types = []
    for key, fit in model.fits.items():
        name = _prefix(key)
        arrays[f"{name}/sparse"] = fit.sparse
        chans = []
        for c in fit.channels:
            tag = f"{name}/L{c.L}p{c.parity:+d}"
            for f in _FIELDS:
                arrays[f"{tag}/{f}"] = np.asarray(getattr(c, f))
            chans.append([c.L, c.parity])
        types.append({"key": [int(key[0]), int(key[1]), bool(key[2])], "size": fit.size, "n_train": fit.n_train, "coverage": fit.coverage,
                      "channels": chans})
    meta = {"soap": model.soap.to_dict(), "config": asdict(model.config), "species": [int(z) for z in model.species],
            "block_types": types}
    return meta, arrays


def kernel_from_state(cls, meta: dict, arrays: dict[str, np.ndarray]):
    """The fitted model from :func:`kernel_state`'s metadata and arrays; ValueError when the arrays do
    not match the SOAP settings or the Target's blocks."""
    target = Target.from_dict(meta["target"])
    model = cls(target, SoapConfig.from_dict(meta["soap"]), HamiltonianKernelConfig.from_dict(meta["config"]))
    model.species = [int(z) for z in meta["species"]]
    model.metadata = meta["training"]
    n_coef = PairSoap(model.soap, model.species).n_coefficients
    from ase.data import chemical_symbols

    for t in meta["block_types"]:
        key = (int(t["key"][0]), int(t["key"][1]), bool(t["key"][2]))
        name = _prefix(key)
        fit = BlockTypeFit(key, int(t["size"]), arrays[f"{name}/sparse"], n_train=int(t["n_train"]), coverage=float(t["coverage"]))
        if fit.sparse.shape[1] != n_coef:
            raise ValueError(f"{name}: sparse coefficients have {fit.sparse.shape[1]} columns, the SOAP settings {n_coef}")
        layout = target.pair_layout(chemical_symbols[key[0]], chemical_symbols[key[1]], onsite=key[2])
        if fit.size != sum(2 * b.L + 1 for b in layout):
            raise ValueError(f"{name}: {fit.size} irreps per block, the target's basis has {sum(2 * b.L + 1 for b in layout)}")
        for L, p in t["channels"]:
            tag = f"{name}/L{L}p{int(p):+d}"
            c = Channel(int(L), int(p), *(arrays[f"{tag}/{f}"] for f in _FIELDS))
            if c.coef.shape != (len(fit.sparse) * (2 * c.L + 1), len(c.starts)):
                raise ValueError(f"{tag}: weights of shape {c.coef.shape} do not match {len(fit.sparse)} sparse centres")
            fit.channels.append(c)
        model.fits[key] = fit
    return model
