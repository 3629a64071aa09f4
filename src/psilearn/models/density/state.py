"""Model-file state of the density model.

Arrays: ``sparse_coef/Z`` (M_Z, C) the sparse environments' density-expansion coefficients in
farthest-point order (their lambda-SOAP blocks are rebuilt on load exactly as at fit time, ~20x
smaller than the blocks); ``proj/Z/l`` (M_{Z,l}(2l+1), D) the RKHS projectors; ``w/Z/l`` (D, n_l)
the weights; ``baseline/Z`` (n_{Z,0},); with ``density.uncertainty`` ``posterior/cholesky``
(n_weights, n_weights), the lower Cholesky factor of A + lambda I (sigma2, dof, lambda in the metadata).
Metadata: the soap and density options, the species, the
sparse counts per (Z, l). The Target (with the aux basis and every element's shells) is written by
:meth:`psilearn.models.base.Model.save` and restored by :meth:`psilearn.targets.Target.from_dict` (which dispatches ``kind: density``).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from psilearn.features import LambdaSoap, SoapConfig
from psilearn.models.density.config import DensityConfig
from psilearn.models.density.rkhs import SparseBasis, channel
from psilearn.targets import Target


def density_state(model) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, arrays) of a fitted :class:`~psilearn.models.density.DensityModel`."""
    if not model.weights:
        raise RuntimeError("model is not fitted")
    arrays: dict[str, np.ndarray] = {}
    for z, c in model.sparse_coefficients.items():
        arrays[f"sparse_coef/{z}"] = c
    for (z, l), p in model.basis.projectors.items():
        arrays[f"proj/{z}/{l}"] = p
        arrays[f"w/{z}/{l}"] = model.weights[(z, l)]
    for z, b in model.baseline.items():
        arrays[f"baseline/{z}"] = np.asarray(b)
    if model.posterior is not None:
        arrays["posterior/cholesky"] = model.posterior["cholesky"]
    meta = {
        "posterior": None if model.posterior is None else {k: v for k, v in model.posterior.items() if k != "cholesky"},
        "soap": model.soap.to_dict(),
        "config": asdict(model.config),
        "species": [int(z) for z in model.species],
        "sparse_counts": [[int(z), int(l), int(m)] for (z, l), m in sorted(model.basis.counts.items())],
    }
    return meta, arrays


def density_from_state(cls, meta: dict, arrays: dict[str, np.ndarray]):
    """The fitted ``cls`` from :func:`density_state`'s metadata and arrays."""
    target = Target.from_dict(meta["target"])
    model = cls(target, SoapConfig.from_dict(meta["soap"]), DensityConfig.from_dict(meta["config"]))
    model.species = [int(z) for z in meta["species"]]
    model.metadata = meta["training"]
    counts = {(z, l): m for z, l, m in meta["sparse_counts"]}
    model.sparse_coefficients = {z: arrays[f"sparse_coef/{z}"] for z in model.species}
    soap = LambdaSoap(model.soap, model.species)
    for z, c in model.sparse_coefficients.items():
        if c.shape[1] != soap.n_coefficients:
            raise ValueError(f"sparse coefficients of element {z} have {c.shape[1]} columns, the SOAP settings {soap.n_coefficients}")
    blocks: dict = {}
    for z, c in model.sparse_coefficients.items():
        for ch, b in soap.from_coefficients(c, sorted({channel(l) for _, l in counts})).items():
            blocks.setdefault(ch, {})[z] = b
    projectors = {key: arrays[f"proj/{key[0]}/{key[1]}"] for key in counts}
    model.basis = SparseBasis(blocks, counts, projectors, model.config.zeta)
    model.weights = {key: arrays[f"w/{key[0]}/{key[1]}"] for key in counts}
    model.baseline = {z: arrays[f"baseline/{z}"] for z in model.species}
    if meta.get("posterior") is not None:
        model.posterior = {**meta["posterior"], "cholesky": arrays["posterior/cholesky"]}
    for (z, l), w in model.weights.items():
        if w.shape[0] != projectors[(z, l)].shape[1] or w.shape[1] != target.block_index(_symbol(z), l).shape[0]:
            raise ValueError(f"weights of element {z}, l={l} do not match the projector or the target")
    return model


def _symbol(z: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[z]
