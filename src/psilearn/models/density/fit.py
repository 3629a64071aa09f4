"""Fitting the density model's weights: stream the structures once, choose lambda, solve.

Structures are featurised in batches of ``soap.batch_size``; each structure's metric S_s (PySCF,
:func:`psilearn.label.density.aux_metric`) and RKHS features enter the normal equations of its part
(training or validation with ``regularization: cv``) and are dropped. Memory: the normal matrices
(n_weights^2 each, independent of the number of structures) and one batch of features.
"""

from __future__ import annotations

import logging

import numpy as np
from ase.data import chemical_symbols

from psilearn.data.memory import check_allocation
from psilearn.models.density.constraint import metric_in_irreps, structure_metric
from psilearn.models.density.normal import WEIGHTS_HINT, NormalEquations, WeightLayout, choose_regularization, fit_bytes, solve, structure_rows

log = logging.getLogger("psilearn")


def validation_split(n: int, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out structures: round(fraction x n), at least 1, at most n - 1."""
    n_val = min(max(1, int(round(fraction * n))), n - 1)
    mask = np.zeros(n, bool)
    mask[np.random.default_rng(seed).permutation(n)[:n_val]] = True
    return mask


def accumulate(model, soap, data, layout: WeightLayout, parts: list[NormalEquations], part_of: np.ndarray) -> None:
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
            mine = {}
            for (z, l), phi in phis.items():
                sel = feats.structure[feats.index[z]] == k
                if sel.any():
                    mine[(z, l)] = phi[sel]
            parts[part_of[s_idx]].add(layout, mine, rows, s, y, c)


def fit_weights(model, soap, data) -> dict:
    """Set ``model.weights`` {(Z, l): (D, n_l)}; returns the fit record (lambda, errors)."""
    import time

    t0 = time.perf_counter()
    widths = {key: model.basis.width(*key) for key in model.basis.projectors}
    layout = WeightLayout.of(model.target, model.species, widths)
    cv = model.config.regularization == "cv"
    check_allocation(fit_bytes(layout.size, cv), f"density-model normal equations ({layout.size} weights: "
                     f"{layout.size}^2 x 8 bytes per matrix)", WEIGHTS_HINT)
    n = len(data)
    part_of = validation_split(n, model.config.val_fraction, model.config.seed).astype(int) if cv else np.zeros(n, int)
    parts = [NormalEquations.zeros(layout.size) for _ in range(2 if cv else 1)]
    accumulate(model, soap, data, layout, parts, part_of)
    t_acc = time.perf_counter() - t0
    record = {"n_weights": layout.size, "accumulate_seconds": round(t_acc, 3)}
    if cv:
        train, val = parts
        rel, errors = choose_regularization(train, val, list(model.config.reg_grid))
        record.update({"regularization": rel, "reg_grid": list(model.config.reg_grid), "validation_errors": errors,
                       "n_validation_structures": val.n,
                       "heldout_metrics": {"method": f"hold-out of {val.n} structures (lambda chosen on them)",
                                           "density_error_percent": 100 * min(errors)}})
        train.a += val.a
        train.b += val.b
        train.yy += val.yy
        train.ref += val.ref
        train.n += val.n
        full = train
        del parts, val
    else:
        rel, full = float(model.config.regularization), parts[0]
        record.update({"regularization": rel, "heldout_metrics": {"method": "none (fixed regularization)"}})
    w = solve(full, rel)
    record["training_error_percent"] = 100 * full.relative_error(w)
    record["solve_seconds"] = round(time.perf_counter() - t0 - t_acc, 3)
    model.weights = {(z, l): np.stack([w[layout.slices[(z, l, n)]] for n in range(_count(model.target, z, l))], axis=1)
                     for z, l in widths}
    log.info("density model: %d weights, lambda %.3g, training error %.3f%%", layout.size, rel, record["training_error_percent"])
    return record


def _count(target, z: int, l: int) -> int:
    return target.block_index(chemical_symbols[z], l).shape[0]

