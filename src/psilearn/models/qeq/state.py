"""Saving and loading QEq models in psilearn's model-file format (JSON metadata + npz, no pickle).

Written by :meth:`psilearn.models.base.Model.save` with the container of :mod:`psilearn.models.io` (atomic writes, checksums of every array and of
the metadata). Arrays: ``sparse/Z`` (M_Z, 1, Q) and ``sparse_state/Z`` (M_Z, 2) per element,
``dipole_sparse/Z`` (M_Z, 3, Q1) with atomic dipoles, ``gp/P`` (M', r), ``gp/S2`` (r,),
``fit/coef`` (M',), ``fit/d`` (r,) with M' = M (+ 3 M with atomic dipoles).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np


def qeq_state(model) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, arrays) of a fitted kernel QEq model."""
    if model.gp is None:
        raise RuntimeError("model is not fitted")
    arrays: dict[str, np.ndarray] = {
        "gp/P": model.gp.P, "gp/S2": model.gp.S2, "fit/coef": model.column.coef, "fit/d": model.column.d,
    }
    for z in model.kernel.species:
        arrays[f"sparse/{z}"] = model.kernel.sparse[z]
        arrays[f"sparse_state/{z}"] = model.kernel.sparse_state[z]
        if model.dipole_kernel is not None:
            arrays[f"dipole_sparse/{z}"] = model.dipole_kernel.sparse1[z]
    meta = {
        "soap": model.soap.to_dict(),
        "config": asdict(model.config),
        "species": model.species,
        "baseline_chi_eV": {str(k): v for k, v in model.baseline.items()},
        "fit": {"reg": model.column.reg, "s2": model.column.s2, "noise": model.noise,
                "state_width": model.kernel.state_width, "dipole_factor": model.dipole_factor,
                "atomic_dipole_scale": None if model.dipole_kernel is None else model.dipole_kernel.scale},
        "units": {"chi": "eV/e", "charges": "e", "positions": "Angstrom", "energy": "eV",
                  "dipoles": model.target.units if model.is_dipole else "e*Angstrom",
                  "dipole_origin": model.config.origin},
    }
    return meta, arrays


def qeq_from_state(cls, meta: dict, arrays: dict[str, np.ndarray]):
    """The fitted ``cls`` (QEqModel) from :func:`qeq_state`'s metadata and arrays."""
    from psilearn.features import SoapConfig
    from psilearn.models._kernel.gpr import ColumnFit, SparseGP
    from psilearn.models.qeq.chi_kernel import ChiKernel
    from psilearn.models.qeq.config import QEqConfig
    from psilearn.targets import Target

    model = cls(Target.from_dict(meta["target"]), SoapConfig.from_dict(meta["soap"]), QEqConfig.from_dict(meta["config"]))
    model.species = [int(z) for z in meta["species"]]
    model.baseline = {int(k): float(v) for k, v in meta["baseline_chi_eV"].items()}
    fit = meta["fit"]
    sparse = {z: arrays[f"sparse/{z}"] for z in model.species}
    states = {z: arrays[f"sparse_state/{z}"] for z in model.species}
    model.kernel = ChiKernel(model.config.zeta, sparse, states, fit["state_width"])
    if model.config.atomic_dipoles:
        from psilearn.models.qeq.atomic_dipoles import AtomicDipoleKernel

        model.dipole_kernel = AtomicDipoleKernel(model.config.zeta, {z: arrays[f"dipole_sparse/{z}"] for z in model.species},
                                                 sparse, float(fit["atomic_dipole_scale"]))
    model.gp = SparseGP(arrays["gp/P"], arrays["gp/S2"])
    model.column = ColumnFit(float(fit["reg"]), float(fit["s2"]), arrays["fit/coef"], arrays["fit/d"])
    model.noise = {k: float(v) for k, v in fit["noise"].items()}
    model.metadata = meta["training"]
    if set(model.baseline) != set(model.species):
        raise ValueError("baseline elements differ from the model's elements")
    n_cols = model.kernel.n_sparse + (model.dipole_kernel.n_columns if model.dipole_kernel is not None else 0)
    if model.gp.P.shape[0] != n_cols or model.column.coef.shape[0] != n_cols:
        raise ValueError("GP arrays do not match the sparse environments")
    return model
