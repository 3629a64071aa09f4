"""Streamed SA-GPR fit: lambda-SOAP in batches of structures, normal equations accumulated.

The in-memory fit (:meth:`SAGPR.fit`) holds every atom's features and each channel's N x M' kernel.
The streamed fit holds one batch of ``model.stream_batch`` structures at a time, in two passes:

1. **Sparse environments.** Each batch computes the invariant SOAP (l = 0 only) and keeps, per element
   Z, its ``sparse_method`` choice of M_Z candidates; the pool of candidates is merged batch by batch
   and cut back by the same method to ``POOL_FACTOR`` x M_Z whenever it grows beyond twice that (the
   cut costs pool x M_Z x Q, so it is not done every batch); at the end the method chooses M_Z from
   the pool (:data:`SPARSE_RULE`). With one batch this is exactly
   the in-memory choice. The chosen environments' blocks are rebuilt from their expansion coefficients.
2. **Normal equations.** Each batch computes all channels and adds, per channel, Phi^T Phi, Phi^T Y
   and |y|^2 of its rows (:class:`psilearn.models._kernel.normal.ChannelSums`); the sparse GP is
   then solved from the sums (:meth:`SparseGP.from_sums`), the marginal likelihood included, so for
   the same sparse environments the model equals the in-memory one to rounding.

Batches of both passes can run on a Dask cluster (``model.scheduler``; :func:`map_batches`). With
``model.float32`` the features of a batch are stored in float32 (half their memory); kernels, sums,
the solve and predictions stay float64 (float32 kernels were tried: they moved predictions by up to
1e-5 relative, against < 1e-7 for float32 features). Needing every row at once, these are refused in
streamed mode (one line): ``regularization: cv``, ``feature_tol`` > 0, ``covariance_storage:
training``; the k-fold held-out estimate is not computed (evaluate on a test file instead).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from psilearn.data.memory import MemoryBudgetError, check_allocation, gb
from psilearn.data.splits import farthest_point_order
from psilearn.errors import ConfigError
from psilearn.models._kernel.gpr import SparseGP, fixed_regularization
from psilearn.models._kernel.kernels import sparse_kernel, sparse_sparse_kernel
from psilearn.models._kernel.memory import KERNEL_HINT, stream_fit_bytes
from psilearn.models._kernel.normal import ChannelSums, batch_bounds, dask_client, map_batches
from psilearn.models._kernel.sparse import AUTO_RULE, select_sparse, shrink_sizes, sparse_sizes

log = logging.getLogger("psilearn")

#: FPS over at most this many rows uses their Gram matrix (GEMM once, then one row per choice)
GRAM_ROWS = 6000
#: the candidate pool of pass 1 is cut back to this many times M_Z when it grows beyond twice that
POOL_FACTOR = 2
SPARSE_RULE = (f"per batch, the sparse method's M_Z candidates per element; pool cut back to {POOL_FACTOR} x M_Z by the "
               f"same method when larger than {2 * POOL_FACTOR} x M_Z; M_Z chosen from the pool")


def refusal(model) -> str | None:
    """Why ``model`` cannot be fitted streamed (an option needing every row at once), or None."""
    c = model.config
    if c.regularization == "cv":
        return "regularization: cv needs every kernel row at once; use 'ml' or a number"
    if c.feature_tol > 0:
        return "feature_tol > 0 (PCA over all training features) is not available; set it to 0"
    if c.covariance_storage == "training":
        return "covariance_storage: training keeps every training environment; use 'basis'"
    return None


def stream_batch(model, frames, numbers: np.ndarray) -> int:
    """Structures per batch of a streamed fit, or 0 for the in-memory fit: ``model.stream_batch``
    (or ``soap.batch_size`` when only ``float32``/``scheduler`` ask for streaming), else streamed
    automatically when the in-memory fit would exceed the memory budget and the streamed one would
    not. ConfigError (one line) when streaming is asked for with an option it refuses."""
    c = model.config
    explicit = c.stream_batch > 0 or c.float32 or bool(c.scheduler)
    why = refusal(model)
    if explicit and why:
        raise ConfigError(f"model.stream_batch/float32/scheduler (streamed fit): {why}")
    if why:
        return 0
    counts = {z: int(np.sum(numbers == z)) for z in model.species}
    batch = c.stream_batch or model.soap.batch_size
    if not explicit:
        try:
            model._check_fit_bytes(frames, numbers, counts, sparse_sizes(c.n_sparse, counts))
            return 0
        except MemoryBudgetError:
            pass
    m = sparse_sizes(c.n_sparse, counts)
    while True:  # like the in-memory fit: data-scaled default sizes shrink until the fit fits, stated ones never
        try:
            _check_stream_bytes(model, frames, numbers, m, batch)
            break
        except MemoryBudgetError:
            m = shrink_sizes(m, c.n_sparse)
            if m is None:
                if explicit:
                    raise
                return 0  # the in-memory path then shrinks or refuses with its own message
    model._sizes = m
    if not explicit:
        log.info("the in-memory fit exceeds the memory budget: streamed fit in batches of %d structures", batch)
    return batch


def _check_stream_bytes(model, frames, numbers, m: dict, batch: int) -> None:
    soap = model._lsoap()
    channels = sorted(set(model._channel_list()) | {(0, 1)})
    per_struct = len(numbers) / max(len(frames), 1)
    rows = int(np.ceil(batch * (per_struct if model.target.per == "atom" else 1)))
    n_batch_atoms = int(np.ceil(batch * per_struct))
    frac = {z: max(1, int(np.ceil(n_batch_atoms * np.mean(numbers == z)))) for z in m}
    feats = (soap.estimate_bytes(frac, channels) + soap.estimate_bytes(m, channels, True)
             + soap.estimate_bytes({z: 2 * POOL_FACTOR * k + k for z, k in m.items()}, [(0, 1)], True) + 8 * GRAM_ROWS**2)
    kernels = stream_fit_bytes(rows, [(2 * l + 1, list(m.values()), n) for (l, _), n in _columns(model).items()])
    check_allocation(feats + kernels, f"streamed SA-GPR fit of {len(numbers)} atoms (batch features and sparse pool {gb(feats)}, "
                     f"normal equations {gb(kernels)})", KERNEL_HINT + " or model.stream_batch")


def _columns(model) -> dict[tuple[int, int], int]:
    """{channel: number of irrep occurrences fitted in it}."""
    out: dict = {}
    for b in model.target.blocks:
        ch = model._channel_of(b)
        out[ch] = out.get(ch, 0) + 1
    return out


def _sample_bounds(model, data, lo: int, hi: int) -> tuple[slice, np.ndarray | None]:
    """Samples (rows of the labels) of structures [lo, hi) and the batch's label mask (or None)."""
    atoms = np.concatenate([[0], np.cumsum([len(a) for a in data.frames])])
    if model.target.per == "structure":
        return slice(lo, hi), None
    a0, a1 = int(atoms[lo]), int(atoms[hi])
    if model._rows is None:
        return slice(a0, a1), None
    before = int(np.sum(model._rows[:a0]))
    mask = model._rows[a0:a1]
    return slice(before, before + int(mask.sum())), mask


# ---- pass 1: sparse environments ----------------------------------------------------------------
def _select(x: np.ndarray, n: int, method: str) -> np.ndarray:
    """:func:`select_sparse`, with FPS over a few thousand rows done on their Gram matrix (the same choice)."""
    if method == "fps" and 0 < len(x) <= GRAM_ROWS:
        first = int(np.argmax(np.linalg.norm(x - x.mean(0), axis=1)))
        return np.sort(farthest_point_order(x, first, n, gram=x @ x.T))
    return select_sparse(x, n, method)


def _candidates(model, frames, first_atom: int, sizes: dict) -> dict:
    """{Z: (atom index, x0 (n, Q0), coefficients (n, C), states (n, 2) or None)} of one batch's candidates."""
    feats = model._lsoap().compute(frames, [(0, 1)], keep_coefficients=True)
    states = model._states(frames)
    out = {}
    for z in model.species:
        x0 = feats.blocks[(0, 1)][z][:, 0, :]
        pick = _select(x0, sizes[z], model.config.sparse_method)
        atoms = feats.index[z][pick]
        st = None if states is None else states[feats.structure[atoms]]
        out[z] = (first_atom + atoms, x0[pick], feats.coefficients[z][pick], st)
    return out


def _merge(pool: dict, new: dict, sizes: dict, method: str, cap: int) -> dict:
    for z, part in new.items():
        joined = part if z not in pool else tuple(None if p is None else np.concatenate([p, q]) for p, q in zip(pool[z], part))
        if len(joined[0]) > 2 * cap * sizes[z]:
            keep = _select(joined[1], cap * sizes[z], method)
            joined = tuple(None if p is None else p[keep] for p in joined)
        pool[z] = joined
    return pool


def choose_sparse_streamed(model, frames, bounds: list, sizes: dict, client, progress: bool) -> None:
    """Pass 1 (module docstring): ``model.sparse``, ``sparse_coefficients`` (and sparse states) set."""
    atoms = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
    args = [(frames[lo:hi], int(atoms[lo]), sizes) for lo, hi in bounds]
    pool: dict = {}
    for part in map_batches(_candidates, model, args, client, progress, "sparse environments"):
        pool = _merge(pool, part, sizes, model.config.sparse_method, POOL_FACTOR)
    soap = model._lsoap()
    channels = model._channel_list()
    model.sparse, model.sparse_coefficients = {}, {}
    states = {}
    for z in model.species:
        idx, x0, coef, st = pool[z]
        pick = _select(x0, sizes[z], model.config.sparse_method)
        pick = pick[np.argsort(idx[pick])]  # in training-atom order, as the in-memory choice
        model.sparse_coefficients[z] = coef[pick]
        for ch, block in soap.from_coefficients(coef[pick], channels).items():
            model.sparse.setdefault(ch, {})[z] = block
        if st is not None:
            states[z] = st[pick]
    if model.config.global_state != "none":
        from psilearn.models._kernel.state_kernel import SPARSE_STATE_KEY

        model.sparse[SPARSE_STATE_KEY] = states


# ---- pass 2: normal equations -------------------------------------------------------------------
def _sums(model, frames, resid: np.ndarray, reg_w: np.ndarray | None, rows: np.ndarray | None) -> dict:
    """{channel: ChannelSums} of one batch: ``resid`` (n_samples, n_irreps) its baseline-free labels,
    ``reg_w`` per-sample weights (or None), ``rows`` its label mask (or None)."""
    # float32: the batch's features only; the sparse blocks stay float64, so kernels are computed (and
    # summed) in float64 from float32-rounded features (float32 kernels changed predictions by up to 1e-5)
    feats = model._lsoap().compute(frames, model._channel_list(), dtype=np.float32 if model.config.float32 else np.float64)
    sparse = model.sparse
    out = {}
    for ch in model._channel_list():
        d = 2 * ch[0] + 1
        phi = sparse_kernel(feats, sparse, ch, model.config.zeta, model.target.per, model.target.pool)
        phi, _ = model._with_global_state(phi, [], feats, frames, d)
        phi = model._fitted_rows(phi, d, rows, reg_w)
        rw = 1.0 if reg_w is None else np.repeat(reg_w, d)
        ys = [(resid[:, b.cols] / model.scales[bi]).reshape(-1) * rw for bi, b in enumerate(model.target.blocks) if model._channel_of(b) == ch]
        out[ch] = ChannelSums.of(phi, np.stack(ys, axis=1))
    return out


def _kmm(model, ch) -> list[np.ndarray]:
    kmm = sparse_sparse_kernel(model.sparse, ch, model.config.zeta)
    if model.config.global_state == "none":
        return kmm
    from psilearn.models._kernel.state_kernel import SPARSE_STATE_KEY, apply_state_kernel

    d = 2 * ch[0] + 1
    m = sum(len(x) for x in model.sparse[ch].values()) * d
    return apply_state_kernel(np.zeros((0, m)), kmm, np.zeros((0, 2)), model.sparse[SPARSE_STATE_KEY], d, model.config.state_width)[1]


def fit_streamed(model, data, batch: int, reg_w: np.ndarray | None, t0: float):
    """The streamed fit of ``model`` (an SAGPR) on ``data`` in batches of ``batch`` structures; returns the model."""
    from psilearn.models.sagpr.model import ChannelModel

    frames, c = data.frames, model.config
    numbers = np.concatenate([a.numbers for a in frames])
    sizes = model._sizes or sparse_sizes(c.n_sparse, {z: int(np.sum(numbers == z)) for z in model.species})
    irreps = model.target.to_irreps(data.values)
    resid = model._fit_baseline(frames, irreps)
    bounds = batch_bounds(len(frames), batch)
    args = []
    for lo, hi in bounds:
        samples, mask = _sample_bounds(model, data, lo, hi)
        args.append((frames[lo:hi], resid[samples], None if reg_w is None else reg_w[samples], mask))
    total: dict = {}
    with dask_client(c.scheduler) as client:
        choose_sparse_streamed(model, frames, bounds, sizes, client, model.progress)
        t_sparse = time.perf_counter() - t0
        for part in map_batches(_sums, model, args, client, model.progress, "normal equations"):
            total = part if not total else {ch: total[ch].add(s) for ch, s in part.items()}
    reg = 1.0 if reg_w is not None else fixed_regularization(c.regularization)
    model.channels, model._contracted = [], {}
    for ch in model._channel_list():
        s = total[ch]
        gp = SparseGP.from_sums(s.c, _kmm(model, ch))
        if len(gp.S2) == 0:
            log.warning("lambda-SOAP has no features for channel l=%d sigma=%d: it is predicted as 0", *ch)
        a = gp.P.T @ s.r
        cols = [bi for bi, b in enumerate(model.target.blocks) if model._channel_of(b) == ch]
        model.channels.append(ChannelModel(ch, gp, [(bi, gp.fit_sums(a[:, j], float(s.yy[j]), s.n, reg)) for j, bi in enumerate(cols)]))
    from ase.data import chemical_symbols

    n_sparse = {chemical_symbols[z]: int(len(x)) for z, x in model.sparse[(0, 1)].items()}
    stream = {"batch_structures": batch, "n_batches": len(bounds), "float32": bool(c.float32), "scheduler": c.scheduler or "in-process",
              "sparse_rule": SPARSE_RULE, "sparse_seconds": round(t_sparse, 3)}
    model.metadata = model.training_record(
        data, t0, n_sparse=n_sparse, n_sparse_rule=AUTO_RULE if c.n_sparse is None else "stated", stream=stream,
        **({"label_mask": data.label_mask} if data.labelled is not None else {}),
        heldout_metrics={"method": "not computed: streamed fit (the k-fold estimate needs every kernel row; use psilearn evaluate)"})
    return model
