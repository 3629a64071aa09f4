"""The ``covariance_storage: training`` option of SA-GPR: keep the training environments, not the
covariance basis.

The predictive mean needs only the sparse environments and one weight vector per irrep occurrence.
The predictive covariance also needs each channel's basis P = G W (M' x r; see
:mod:`psilearn.models._kernel.gpr`), which is dense and large: (2l+1) x (sparse points) rows by up to
(2l+1) x (training samples) columns (15 MB in float32 for the l=2 channel of a 200-dimer
polarizability model). It cannot be truncated or quantised further without changing the std by more
than 1e-4 relative (measured: dropping the 10 % smallest of 967 directions changes it by 3e-3),
but it is a deterministic function of the training environments, which are ~10x smaller as
density-expansion coefficients. With this option the model file stores those coefficients (plus
each atom's element and structure, and the structures' electronic states when ``global_state`` is
used) and rebuilds P the first time a prediction asks for an uncertainty: the same eigenproblems as
the fit, so the std agrees with the stored-basis model to floating-point rounding. The price is
that rebuild (seconds to minutes; logged), once per loaded model.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np

from psilearn.features.compress import apply_projections
from psilearn.features.lsoap import AtomFeatures
from psilearn.models._kernel.gpr import SparseGP
from psilearn.models._kernel.kernels import sparse_kernel, sparse_sparse_kernel

log = logging.getLogger("psilearn")

def training_environments(feats: AtomFeatures, states: np.ndarray | None, rows: np.ndarray | None) -> dict[str, np.ndarray]:
    """What ``covariance_storage: training`` keeps of the training features ``feats`` (computed with
    ``keep_coefficients=True``): arrays ``numbers``, ``structure`` (n_atoms,), ``coef/Z`` (n_Z, C),
    with a global state ``states`` (n_structures, 2), and with a label mask ``rows`` (n_atoms,), the
    labelled atoms (the only ones fitted)."""
    out = {"numbers": np.asarray(feats.numbers), "structure": np.asarray(feats.structure)}
    for z, c in feats.coefficients.items():
        out[f"coef/{z}"] = np.asarray(c)
    if states is not None:
        out["states"] = np.asarray(states, dtype=np.float64)
    if rows is not None:
        out["rows"] = np.asarray(rows, dtype=bool)
    return out


def _features(model, env: dict[str, np.ndarray]) -> AtomFeatures:
    """The training lambda-SOAP features rebuilt from the stored coefficients (then compressed as at fit)."""
    numbers, structure = env["numbers"], env["structure"]
    n_struct = int(structure.max()) + 1 if len(structure) else 0
    index = {z: np.flatnonzero(numbers == z) for z in model.species}
    feats = AtomFeatures(numbers, structure, n_struct, index)
    soap = model._lsoap()
    channels = model._channel_list()
    for z in model.species:
        for ch, block in soap.from_coefficients(env[f"coef/{z}"], channels).items():
            feats.blocks.setdefault(ch, {})[z] = block
    if model.projections:
        apply_projections(feats, model.projections)
    return feats


def rebuild_covariance_basis(model) -> None:
    """Recompute every channel's covariance basis (P, S2) and the columns' posterior variances d
    from ``model.training_envs``, in place. The weights (the mean) are untouched."""
    env = model.training_envs
    t0 = time.perf_counter()
    log.info("rebuilding the covariance basis from %d training environments (covariance_storage: training)", len(env["numbers"]))
    feats = _features(model, env)
    per = model.target.per
    # the fitted rows, as at fit time: the label mask and the per-element regularisation weights
    rows = env["rows"].astype(bool) if "rows" in env else None
    reg_w = model._regularization_weights(env["numbers"] if rows is None else env["numbers"][rows])
    for cm in model.channels:
        d = 2 * cm.channel[0] + 1
        phi = sparse_kernel(feats, model.sparse, cm.channel, model.config.zeta, per, model.target.pool)
        kmm = sparse_sparse_kernel(model.sparse, cm.channel, model.config.zeta)
        phi, kmm = model._with_global_state(phi, kmm, feats, None, d, states=env.get("states"))
        cm.gp, _ = SparseGP.build(model._fitted_rows(phi, d, rows, reg_w), kmm)
        # d = sigma2 / (S2 + reg) per direction, as at fit time (SparseGP.fit_column)
        cm.columns = [(bi, replace(col, d=col.s2 * col.reg / (cm.gp.S2 + col.reg))) for bi, col in cm.columns]
    log.info("covariance basis rebuilt in %.1f s", time.perf_counter() - t0)


def needs_rebuild(model) -> bool:
    """True when the model was loaded without its covariance basis."""
    return any(cm.gp.P is None for cm in model.channels)
