"""Fitting the density model's weights: stream the structures once, choose lambda, solve.

Structures are featurised in batches of ``soap.batch_size``; each structure's metric S_s (PySCF,
:func:`psilearn.label.density.aux_metric`) and RKHS features enter the normal equations of its part
(training or validation with ``regularization: cv``). Direct solve: the parts are dense normal
matrices (n_weights^2 each, independent of the number of structures) and the features are dropped;
CG (:mod:`psilearn.models.density.cg`): the parts keep the features and metrics, never A, on disk
(``cg_storage: disk``, deleted after the fit) or in RAM.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from ase.data import chemical_symbols

from psilearn.data.memory import check_allocation, fits, gb
from psilearn.errors import MemoryBudgetError
from psilearn.models.density.cg import CGSolver, StructureOperator, cg_bytes
from psilearn.models.density.cg_store import DiskStore, MemoryStore
from psilearn.models.density.constraint import metric_in_irreps, structure_metric
from psilearn.models.density.normal import (
    WEIGHTS_HINT,
    LeastSquares,
    NormalEquations,
    WeightLayout,
    choose_regularization,
    fit_bytes,
    mean_diagonal,
    solve,
    structure_features,
    structure_rows,
)
from psilearn.models.density.uncertainty import posterior_bytes, weight_posterior

log = logging.getLogger("psilearn")


def validation_split(n: int, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out structures: round(fraction x n), at least 1, at most n - 1."""
    n_val = min(max(1, int(round(fraction * n))), n - 1)
    mask = np.zeros(n, bool)
    mask[np.random.default_rng(seed).permutation(n)[:n_val]] = True
    return mask


def accumulate(model, soap, data, layout: WeightLayout, parts: list[LeastSquares], part_of: np.ndarray) -> None:
    """Add every structure of ``data`` to ``parts[part_of[s]]``."""
    from tqdm.auto import tqdm

    frames, target = data.frames, model.target
    bs = max(1, model.soap.batch_size)
    for start in tqdm(range(0, len(frames), bs), desc="density normal equations", unit="batch",
                      disable=not model.progress, leave=False):
        batch = frames[start : start + bs]
        feats = soap.compute(batch, model.channels())
        phis = {key: model.basis.features(feats, *key) for key in model.basis.projectors}
        for k, atoms in enumerate(batch):
            s_idx = start + k
            s, _ = structure_metric(target, atoms)
            s = metric_in_irreps(target, atoms, s)
            c = target.to_irreps(atoms, data.coefficients(s_idx))
            y = c - model.baseline_vector(atoms)
            rows = structure_rows(target, atoms.get_chemical_symbols(), atoms.numbers)
            parts[part_of[s_idx]].add(layout, structure_features(phis, feats, k), rows, s, y, c)
        del feats, phis  # before the next batch's lambda-SOAP: one batch's features at a time, not two


def choose_solver(model, data, layout: WeightLayout, widths: dict, cv: bool) -> str:
    """'direct' or 'cg' (``density.solver``; 'auto': direct when :func:`fit_bytes` fits the available
    memory and ``direct_max_gb``, else cg). The chosen solver's estimate is then checked (one-line
    :class:`MemoryBudgetError` if even that does not fit)."""
    cfg = model.config
    direct = fit_bytes(layout.size, cv)
    solver = cfg.solver
    if cfg.uncertainty:  # the posterior needs the dense A; never silently fall back to CG
        direct = max(direct, posterior_bytes(layout.size))
        solver = "direct"
    if solver == "auto":
        capped = cfg.direct_max_gb == 0 or direct <= cfg.direct_max_gb * 1e9
        solver = "direct" if capped and fits(direct) else "cg"
        log.info("density model: %s solve (direct would need %s; density.direct_max_gb %g)", solver, gb(direct), cfg.direct_max_gb)
    if solver == "direct":
        extra = " and weight posterior (density.uncertainty)" if cfg.uncertainty else ""
        check_allocation(direct, f"density-model normal equations{extra} ({layout.size} weights: {layout.size}^2 x 8 bytes per matrix)",
                         WEIGHTS_HINT)
    else:
        atoms = {z: int(sum(np.sum(a.numbers == z) for a in data.frames)) for z in model.species}
        ram, disk = cg_bytes(layout, widths, atoms, [model.target.size(a) for a in data.frames], model.target, cfg.cg_storage)
        where = "on disk" if cfg.cg_storage == "disk" else "in memory"
        check_allocation(ram, f"density-model CG solve ({layout.size} weights, features and metrics of {len(data)} structures {where})",
                         WEIGHTS_HINT if cfg.cg_storage == "disk" else WEIGHTS_HINT + "; or density.cg_storage: disk")
        if disk:
            check_scratch(disk, cfg.cg_scratch)
        log.info("density model: CG needs ~%s in RAM and %s on disk", gb(ram), gb(disk))
    return solver


def check_scratch(need: int, directory: str) -> None:
    """MemoryBudgetError (one line) when the CG disk store's directory has less than ``need`` bytes free."""
    import shutil
    import tempfile

    path = directory or tempfile.gettempdir()
    probe = path
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    free = shutil.disk_usage(probe or ".").free
    if free < need:
        raise MemoryBudgetError(f"density-model CG store needs about {gb(need)} on disk but {path} has {gb(free)} free; "
                                "set density.cg_scratch to a larger directory")


def make_parts(layout: WeightLayout, solver: str, cfg, count: int) -> list[LeastSquares]:
    """The ``count`` parts (training, hold-out) the structures are accumulated into: dense normal
    equations, or CG operators on a :class:`DiskStore` (``cg_storage: disk``) or in memory."""
    if solver == "direct":
        return [NormalEquations.zeros(layout.size) for _ in range(count)]
    stores = [DiskStore(cfg.cg_scratch or None) if cfg.cg_storage == "disk" else MemoryStore() for _ in range(count)]
    return [StructureOperator.empty(layout, store) for store in stores]


def fit_weights(model, soap, data) -> dict:
    """Set ``model.weights`` {(Z, l): (D, n_l)}; returns the fit record (lambda, errors, solver)."""
    import time

    t0 = time.perf_counter()
    widths = {key: model.basis.width(*key) for key in model.basis.projectors}
    layout = WeightLayout.of(model.target, model.species, widths)
    cfg = model.config
    cv = cfg.regularization == "cv"
    solver = choose_solver(model, data, layout, widths, cv)
    n = len(data)
    part_of = validation_split(n, cfg.val_fraction, cfg.seed).astype(int) if cv else np.zeros(n, int)
    parts = make_parts(layout, solver, cfg, 2 if cv else 1)
    try:
        return _solve(model, soap, data, layout, parts, part_of, widths, solver, t0)
    finally:
        for part in parts:
            if isinstance(part, StructureOperator):
                part.close()  # a disk store's files are deleted here


def _solve(model, soap, data, layout, parts, part_of, widths, solver, t0) -> dict:
    import time

    cfg = model.config
    cv = cfg.regularization == "cv"
    accumulate(model, soap, data, layout, parts, part_of)
    t_acc = time.perf_counter() - t0
    record = {"n_weights": layout.size, "accumulate_seconds": round(t_acc, 3), "solver": solver}
    solve_with = solve if solver == "direct" else CGSolver(cfg.cg_tol, cfg.cg_maxiter, model.progress)
    full = parts[0]
    if cv:
        val = parts[1]
        rel, errors = choose_regularization(full, val, list(cfg.reg_grid), solve_with, None if solver == "direct" else cfg.cg_patience)
        record.update({"regularization": rel, "reg_grid": list(cfg.reg_grid), "validation_errors": errors,
                       "n_validation_structures": val.n,
                       "heldout_metrics": {"method": f"hold-out of {val.n} structures (lambda chosen on them)",
                                           "density_error_percent": 100 * min(e for e in errors if e is not None)}})
        full.merge(val)  # val's stores move to full; drop val (a direct solve's second n_weights^2 matrix)
        del val
        parts[1:] = []
    else:
        rel = float(cfg.regularization)
        record.update({"regularization": rel, "heldout_metrics": {"method": "none (fixed regularization)"}})
    w = solve_with(full, rel)
    record["training_error_percent"] = 100 * full.relative_error(w)
    model.posterior = weight_posterior(full.a, rel * mean_diagonal(full), full.loss(w), full.n_coef) if cfg.uncertainty else None
    if model.posterior is not None:
        record["uncertainty"] = {k: v for k, v in model.posterior.items() if k != "cholesky"} | {"n_coef": full.n_coef}
    record["solve_seconds"] = round(time.perf_counter() - t0 - t_acc, 3)
    if solver == "cg":
        record["cg"] = {"tol": cfg.cg_tol, "storage": cfg.cg_storage, "solves": solve_with.history}
    model.weights = {(z, l): np.stack([w[layout.slices[(z, l, n)]] for n in range(_count(model.target, z, l))], axis=1)
                     for z, l in widths}
    log.info("density model: %d weights, %s solve, lambda %.3g, training error %.3f%%", layout.size, solver, rel,
             record["training_error_percent"])
    return record


def _count(target, z: int, l: int) -> int:
    return target.block_index(chemical_symbols[z], l).shape[0]

