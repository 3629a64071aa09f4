"""Streamed SA-GPR fit: lambda-SOAP in batches of structures, normal equations accumulated.

The in-memory fit (:meth:`SAGPR.fit`) holds every atom's features and each channel's N x M' kernel.
The streamed fit holds one batch of ``model.stream_batch`` structures at a time, in two or three passes:

1. **Sparse environments.** Each batch computes the invariant SOAP (l = 0 only) and keeps, per element
   Z, its ``sparse_method`` choice of M_Z candidates; the pool of candidates is merged batch by batch
   and cut back by the same method to ``POOL_FACTOR`` x M_Z whenever it grows beyond twice that (the
   cut costs pool x M_Z x Q, so it is not done every batch); at the end the method chooses M_Z from
   the pool (:data:`SPARSE_RULE`). With one batch this is exactly
   the in-memory choice. The chosen environments' blocks are rebuilt from their expansion coefficients.
2. **Normal equations.** Each batch computes all channels and adds, per channel, Phi^T Phi, Phi^T Y
   and |y|^2 of its rows (:class:`psilearn.models._kernel.normal.ChannelSums`); the sparse GP is
   then solved from the sums (:meth:`SparseGP.from_sums`), the marginal likelihood included, so for
   the same sparse environments the model equals the in-memory one to rounding. With k folds of
   structures (the in-memory folds: ``cv_folds``, ``seed``) the batches are cut within folds and the
   sums kept per fold (k x (M')^2 per channel): the model trained without fold f has the other folds'
   sums, which give the k-fold score of ``regularization: cv`` (:mod:`psilearn.models._kernel.foldcv`).
3. **Held-out predictions** (``model.stream_heldout``, default on): each batch's kernel rows again,
   times the weights trained without its fold, give the k-fold held-out estimate the in-memory fit
   stores (``heldout_metrics``). Without it (or when the per-fold sums do not fit: a warning; for
   'cv' a one-line MemoryBudgetError) the fit is passes 1-2 on one set of sums.

Batches of all passes can run on a Dask cluster (``model.scheduler``; :func:`map_batches`). With
``model.float32`` the features of a batch are stored in float32 (half their memory); kernels, sums,
the solve and predictions stay float64 (float32 kernels were tried: they moved predictions by up to
1e-5 relative, against < 1e-7 for float32 features). Needing every row at once, these are refused in
streamed mode (one line): ``feature_tol`` > 0, ``covariance_storage: training``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from psilearn.data.memory import MemoryBudgetError, check_allocation, gb
from psilearn.data.splits import structure_folds
from psilearn.errors import ConfigError
from psilearn.metrics.regression import regression_metrics
from psilearn.models._kernel.foldcv import FoldCV, choose_by_cv
from psilearn.models._kernel.gpr import SparseGP, fixed_regularization
from psilearn.models._kernel.kernels import sparse_kernel, sparse_sparse_kernel
from psilearn.models._kernel.memory import KERNEL_HINT, stream_fit_bytes
from psilearn.models._kernel.normal import ChannelSums, batch_bounds, dask_client, map_batches
from psilearn.models._kernel.sparse import AUTO_RULE, select_sparse_by_state, shrink_sizes, sparse_sizes

log = logging.getLogger("psilearn")

#: FPS over at most this many rows uses their Gram matrix (GEMM once, then one row per choice)
GRAM_ROWS = 6000
#: the candidate pool of pass 1 is cut back to this many times M_Z when it grows beyond twice that
POOL_FACTOR = 2
#: where to look instead when the streamed fit has no held-out estimate
STREAM_NOTE = "streamed fit; evaluate on a held-out file with psilearn evaluate"
SPARSE_RULE = (f"per batch, the sparse method's M_Z candidates per element; pool cut back to {POOL_FACTOR} x M_Z by the "
               f"same method when larger than {2 * POOL_FACTOR} x M_Z; M_Z chosen from the pool")


@dataclass
class StreamPlan:
    """How a streamed fit runs: ``batch`` structures per batch; ``folds`` > 1: normal equations per
    fold of structures (k-fold CV of the regularisation and/or the held-out estimate), 1: one set of
    sums; ``note``: why the held-out estimate is not computed (else empty)."""

    batch: int
    folds: int
    note: str = ""


def refusal(model) -> str | None:
    """Why ``model`` cannot be fitted streamed (an option needing every row at once), or None."""
    c = model.config
    if c.feature_tol > 0:
        return "feature_tol > 0 (PCA over all training features) is not available; set it to 0"
    if c.covariance_storage == "training":
        return "covariance_storage: training keeps every training environment; use 'basis'"
    return None


def _wanted_folds(model, n_frames: int) -> tuple[int, str]:
    """(folds of the per-fold sums, or 1; note when the held-out estimate is not computed)."""
    c = model.config
    k = min(c.cv_folds, n_frames)
    if k < 2:
        return 1, f"not computed: {n_frames} training structure(s), too few for k-fold cross-validation"
    if not c.stream_heldout:
        return (k if c.regularization == "cv" else 1), f"not computed: model.stream_heldout is false ({STREAM_NOTE})"
    return k, ""


def stream_plan(model, frames, numbers: np.ndarray) -> StreamPlan | None:
    """The plan of a streamed fit (:class:`StreamPlan`), or None for the in-memory fit: batches of
    ``model.stream_batch`` structures (or ``soap.batch_size`` when only ``float32``/``scheduler`` ask
    for streaming), else streamed automatically when the in-memory fit would exceed the memory budget
    and the streamed one would not. ConfigError (one line) when streaming is asked for with an option
    it refuses; MemoryBudgetError (one line) when it does not fit, 'cv' counting its per-fold sums.
    The optional held-out estimate is dropped (with a warning) before any stated size would have to shrink."""
    c = model.config
    explicit = c.stream_batch > 0 or c.float32 or bool(c.scheduler)
    why = refusal(model)
    if explicit and why:
        raise ConfigError(f"model.stream_batch/float32/scheduler (streamed fit): {why}")
    if why:
        return None
    counts = {z: int(np.sum(numbers == z)) for z in model.species}
    batch = c.stream_batch or model.soap.batch_size
    if not explicit:
        try:
            model._check_fit_bytes(frames, numbers, counts, sparse_sizes(c.n_sparse, counts))
            return None
        except MemoryBudgetError:
            pass
    folds, note = _wanted_folds(model, len(frames))
    m = sparse_sizes(c.n_sparse, counts)
    while True:  # like the in-memory fit: data-scaled default sizes shrink until the fit fits, stated ones never
        try:
            _check_stream_bytes(model, frames, numbers, m, batch, folds)
            break
        except MemoryBudgetError as err:
            if folds > 1 and c.regularization != "cv":  # the held-out estimate is optional: drop it first
                log.warning("streamed fit without the k-fold held-out estimate: %s", err)
                folds, note = 1, f"not computed: the per-fold normal equations exceed the memory budget ({STREAM_NOTE})"
                continue
            m = shrink_sizes(m, c.n_sparse)
            if m is None:
                if explicit:
                    raise
                return None  # the in-memory path then shrinks or refuses with its own message
    model._sizes = m
    if not explicit:
        log.info("the in-memory fit exceeds the memory budget: streamed fit in batches of %d structures", batch)
    return StreamPlan(batch, folds, note)


def _check_stream_bytes(model, frames, numbers, m: dict, batch: int, folds: int) -> None:
    soap = model._lsoap()
    channels = sorted(set(model._channel_list()) | {(0, 1)})
    per_struct = len(numbers) / max(len(frames), 1)
    rows = int(np.ceil(batch * (per_struct if model.target.per == "atom" else 1)))
    n_batch_atoms = int(np.ceil(batch * per_struct))
    frac = {z: max(1, int(np.ceil(n_batch_atoms * np.mean(numbers == z)))) for z in m}
    feats = (soap.estimate_bytes(frac, channels) + soap.estimate_bytes(m, channels, True)
             + soap.estimate_bytes({z: 2 * POOL_FACTOR * k + k for z, k in m.items()}, [(0, 1)], True) + 8 * GRAM_ROWS**2)
    kernels = stream_fit_bytes(rows, [(2 * l + 1, list(m.values()), n) for (l, _), n in _columns(model).items()], folds)
    per_fold = f", {folds} folds x (M')^2 per channel" if folds > 1 else ""
    check_allocation(feats + kernels, f"streamed SA-GPR fit of {len(numbers)} atoms (batch features and sparse pool {gb(feats)}, "
                     f"normal equations {gb(kernels)}{per_fold})",
                     KERNEL_HINT + " or model.stream_batch" + (" or model.cv_folds" if folds > 1 else ""))


def _columns(model) -> dict[tuple[int, int], int]:
    """{channel: number of irrep occurrences fitted in it}."""
    out: dict = {}
    for b in model.target.blocks:
        ch = model._channel_of(b)
        out[ch] = out.get(ch, 0) + 1
    return out


# ---- pass 1: sparse environments ----------------------------------------------------------------
def _select(x: np.ndarray, n: int, method: str, states: np.ndarray | None = None, width: float = 1.0) -> np.ndarray:
    """:func:`select_sparse_by_state` (the rows' electronic ``states`` (n, 2) or None), with FPS over a few
    thousand rows done on their Gram matrix (the same choice)."""
    gram = x @ x.T if method == "fps" and 0 < len(x) <= GRAM_ROWS else None
    return select_sparse_by_state(x, states, n, method, width, None if gram is None else gram.__getitem__)


def _candidates(model, frames, first_atom: int, sizes: dict) -> dict:
    """{Z: (atom index, x0 (n, Q0), coefficients (n, C), states (n, 2) or None)} of one batch's candidates."""
    feats = model._lsoap().compute(frames, [(0, 1)], keep_coefficients=True)
    states = model._states(frames)
    out = {}
    for z in model.species:
        x0 = feats.blocks[(0, 1)][z][:, 0, :]
        st_all = None if states is None else states[feats.structure[feats.index[z]]]
        pick = _select(x0, sizes[z], model.config.sparse_method, st_all, model.config.state_width)
        atoms = feats.index[z][pick]
        st = None if st_all is None else st_all[pick]
        out[z] = (first_atom + atoms, x0[pick], feats.coefficients[z][pick], st)
    return out


def _merge(pool: dict, new: dict, sizes: dict, method: str, cap: int, width: float = 1.0) -> dict:
    for z, part in new.items():
        joined = part if z not in pool else tuple(None if p is None else np.concatenate([p, q]) for p, q in zip(pool[z], part))
        if len(joined[0]) > 2 * cap * sizes[z]:
            keep = _select(joined[1], cap * sizes[z], method, joined[3], width)
            joined = tuple(None if p is None else p[keep] for p in joined)
        pool[z] = joined
    return pool


def choose_sparse_streamed(model, frames, bounds: list, sizes: dict, client, progress: bool) -> None:
    """Pass 1 (module docstring): ``model.sparse``, ``sparse_coefficients`` (and sparse states) set."""
    atoms = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
    args = [(frames[lo:hi], int(atoms[lo]), sizes) for lo, hi in bounds]
    pool: dict = {}
    for part in map_batches(_candidates, model, args, client, progress, "sparse environments"):
        pool = _merge(pool, part, sizes, model.config.sparse_method, POOL_FACTOR, model.config.state_width)
    soap = model._lsoap()
    channels = model._channel_list()
    model.sparse, model.sparse_coefficients = {}, {}
    states = {}
    for z in model.species:
        idx, x0, coef, st = pool[z]
        pick = _select(x0, sizes[z], model.config.sparse_method, st, model.config.state_width)
        pick = pick[np.argsort(idx[pick])]  # in training-atom order, as the in-memory choice
        model.sparse_coefficients[z] = coef[pick]
        for ch, block in soap.from_coefficients(coef[pick], channels).items():
            model.sparse.setdefault(ch, {})[z] = block
        if st is not None:
            states[z] = st[pick]
    if model.config.global_state != "none":
        from psilearn.models._kernel.state_kernel import SPARSE_STATE_KEY

        model.sparse[SPARSE_STATE_KEY] = states


# ---- pass 2: normal equations (per fold); pass 3: held-out predictions ---------------------------
def _kernel_rows(model, frames, rows: np.ndarray | None, reg_w: np.ndarray | None):
    """(channel, fitted kernel rows (n d, M'), row weights (n d,) or 1.0) of one batch, channel by channel."""
    # float32: the batch's features only; the sparse blocks stay float64, so kernels are computed (and
    # summed) in float64 from float32-rounded features (float32 kernels changed predictions by up to 1e-5)
    feats = model._lsoap().compute(frames, model._channel_list(), dtype=np.float32 if model.config.float32 else np.float64)
    for ch in model._channel_list():
        d = 2 * ch[0] + 1
        phi = sparse_kernel(feats, model.sparse, ch, model.config.zeta, model.target.per, model.target.pool)
        phi, _ = model._with_global_state(phi, [], feats, frames, d)
        yield ch, model._fitted_rows(phi, d, rows, reg_w), (1.0 if reg_w is None else np.repeat(reg_w, d))


def _blocks_of(model, ch) -> list[int]:
    return [bi for bi, b in enumerate(model.target.blocks) if model._channel_of(b) == ch]


def _sums(model, frames, resid: np.ndarray, reg_w: np.ndarray | None, rows: np.ndarray | None) -> dict:
    """{channel: ChannelSums} of one batch: ``resid`` (n_samples, n_irreps) its baseline-free labels,
    ``reg_w`` per-sample weights (or None), ``rows`` its label mask (or None)."""
    out = {}
    for ch, phi, rw in _kernel_rows(model, frames, rows, reg_w):
        ys = [(resid[:, model.target.blocks[bi].cols] / model.scales[bi]).reshape(-1) * rw for bi in _blocks_of(model, ch)]
        out[ch] = ChannelSums.of(phi, np.stack(ys, axis=1))
    return out


def _heldout(model, frames, reg_w: np.ndarray | None, rows: np.ndarray | None, coefs: dict) -> np.ndarray:
    """Held-out predictions (n_samples, n_irreps) of the baseline-free labels of one batch, all from
    one fold: ``coefs`` {channel: (M', k)} the weights of the models trained without that fold."""
    blocks = model.target.blocks
    out = None
    for ch, phi, rw in _kernel_rows(model, frames, rows, reg_w):
        d = 2 * ch[0] + 1
        pred = phi @ coefs[ch]
        if out is None:
            out = np.zeros((len(pred) // d, max(b.start + b.dim for b in blocks)))
        for j, bi in enumerate(_blocks_of(model, ch)):
            out[:, blocks[bi].cols] = (pred[:, j] / rw).reshape(-1, d) * model.scales[bi]
    return out


def _kmm(model, ch) -> list[np.ndarray]:
    kmm = sparse_sparse_kernel(model.sparse, ch, model.config.zeta)
    if model.config.global_state == "none":
        return kmm
    from psilearn.models._kernel.state_kernel import SPARSE_STATE_KEY, apply_state_kernel

    d = 2 * ch[0] + 1
    m = sum(len(x) for x in model.sparse[ch].values()) * d
    return apply_state_kernel(np.zeros((0, m)), kmm, np.zeros((0, 2)), model.sparse[SPARSE_STATE_KEY], d, model.config.state_width)[1]


def _solve(model, fold_sums: list[dict], reg_w: np.ndarray | None) -> tuple[list[dict] | None, list[str]]:
    """Each channel's sparse GP from the sums of all folds (``fold_sums``: per fold {channel:
    ChannelSums}, emptied as it goes); the 'cv' regularisation from the per-fold sums. Sets
    ``model.channels``; returns per fold {channel: (M', k) weights trained without it}, or None (one fold),
    and the channels whose fold systems are beyond the normal equations' precision (:meth:`FoldCV.unresolved_folds`)."""
    from psilearn.models.sagpr.model import ChannelModel

    c = model.config
    reg = 1.0 if reg_w is not None else fixed_regularization(c.regularization)
    model.channels, model._contracted = [], {}
    coefs = [{} for _ in fold_sums] if len(fold_sums) > 1 else None
    unresolved = []
    for ch in model._channel_list():
        parts = [fs.pop(ch) for fs in fold_sums]
        s = parts[0] if len(parts) == 1 else ChannelSums(parts[0].c.copy(), parts[0].r.copy(), parts[0].yy.copy(), parts[0].n)
        for p in parts[1:]:
            s.add(p)
        gp = SparseGP.from_sums(s.c, _kmm(model, ch))
        s.c = None  # released once the basis is built
        if len(gp.S2) == 0:
            log.warning("lambda-SOAP has no features for channel l=%d sigma=%d: it is predicted as 0", *ch)
        cv = FoldCV.project(gp, parts) if coefs is not None else None
        cols = _blocks_of(model, ch)
        regs = [reg] * len(cols)
        if cv is not None and reg is None and c.regularization == "cv":
            regs = list(choose_by_cv(gp, cv)[0])
        a = gp.P.T @ s.r
        fits = [(bi, gp.fit_sums(a[:, j], float(s.yy[j]), s.n, regs[j])) for j, bi in enumerate(cols)]
        for bi, fit in fits:
            log.info("channel %s block %d: reg=%.3g s2=%.3g", ch, bi, fit.reg, fit.s2)
        gp.choose_precision([fit for _, fit in fits])  # no rows kept: the conservative bound
        model.channels.append(ChannelModel(ch, gp, fits))
        if cv is not None:
            fit_regs = np.array([fit.reg for _, fit in fits])
            for f, w in enumerate(cv.coefs(fit_regs)):
                coefs[f][ch] = w
            if cv.unresolved_folds(fit_regs):
                unresolved.append(f"l={ch[0]}")
    return coefs, unresolved


def fold_batches(fold_of: np.ndarray, batch: int) -> list[tuple[int, np.ndarray]]:
    """[(fold, structure indices)]: each fold's structures (in order) in batches of at most ``batch``."""
    out = []
    for f in range(int(fold_of.max(initial=0)) + 1):
        idx = np.flatnonzero(fold_of == f)
        out += [(f, idx[lo:hi]) for lo, hi in batch_bounds(len(idx), batch)]
    return out


def _batches(model, data, fold_of: np.ndarray, batch: int) -> list[tuple]:
    """[(fold, label rows, label mask or None, frames)] of the batches of :func:`fold_batches`."""
    frames = data.frames
    starts = np.concatenate([[0], np.cumsum(np.bincount(data.sample_structure, minlength=len(frames)))])
    atoms = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
    out = []
    for f, structs in fold_batches(fold_of, batch):
        samples = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in structs]).astype(int)
        mask = None
        if model._rows is not None and model.target.per != "structure":
            mask = np.concatenate([model._rows[atoms[i] : atoms[i + 1]] for i in structs])
        out.append((f, samples, mask, [frames[i] for i in structs]))
    return out


def fit_streamed(model, data, plan: StreamPlan, reg_w: np.ndarray | None, t0: float):
    """The streamed fit of ``model`` (an SAGPR) on ``data`` (:class:`StreamPlan`); returns the model."""
    frames, c = data.frames, model.config
    numbers = np.concatenate([a.numbers for a in frames])
    sizes = model._sizes or sparse_sizes(c.n_sparse, {z: int(np.sum(numbers == z)) for z in model.species})
    irreps = model.target.to_irreps(data.values)
    resid = model._fit_baseline(frames, irreps)
    fold_of = structure_folds(len(frames), plan.folds, c.seed) if plan.folds > 1 else np.zeros(len(frames), dtype=int)
    batches = _batches(model, data, fold_of, plan.batch)
    fold_sums: list[dict] = [{} for _ in range(plan.folds)]
    heldout = {"method": plan.note}
    with dask_client(c.scheduler) as client:
        choose_sparse_streamed(model, frames, batch_bounds(len(frames), plan.batch), sizes, client, model.progress)
        t_sparse = time.perf_counter() - t0
        args = [(fr, resid[i], None if reg_w is None else reg_w[i], mask) for _, i, mask, fr in batches]
        for (f, *_), part in zip(batches, map_batches(_sums, model, args, client, model.progress, "normal equations")):
            fold_sums[f] = part if not fold_sums[f] else {ch: fold_sums[f][ch].add(s) for ch, s in part.items()}
        t_sums = time.perf_counter()
        coefs, unresolved = _solve(model, fold_sums, reg_w)
        t_heldout = time.perf_counter()
        if coefs is not None and c.stream_heldout:
            args = [(fr, None if reg_w is None else reg_w[i], mask, coefs[f]) for f, i, mask, fr in batches]
            cv_pred = np.zeros_like(irreps)
            for (_, i, *_), part in zip(batches, map_batches(_heldout, model, args, client, model.progress, "held-out predictions")):
                cv_pred[i] = part
            heldout = {"method": f"{plan.folds}-fold cross-validation by structure (hyperparameters fixed at their final values; "
                                 "streamed: per-fold normal equations, then one more pass over the batches)",
                       **regression_metrics(model.target, irreps, cv_pred + (irreps - resid))}
            if unresolved:  # tiny regularisation: the per-fold normal equations cannot resolve the folds' models
                heldout["warning"] = (f"channels {', '.join(unresolved)}: regularisation below the precision of the per-fold normal "
                                      "equations; this estimate can be far too large: fit in memory (no stream_batch) for an exact one")
                log.warning("held-out estimate: %s", heldout["warning"])
    from ase.data import chemical_symbols

    n_sparse = {chemical_symbols[z]: int(len(x)) for z, x in model.sparse[(0, 1)].items()}
    stream = {"batch_structures": plan.batch, "n_batches": len(batches), "folds": plan.folds, "float32": bool(c.float32),
              "scheduler": c.scheduler or "in-process", "sparse_rule": SPARSE_RULE, "sparse_seconds": round(t_sparse, 3),
              "sums_seconds": round(t_sums - t0 - t_sparse, 3), "solve_seconds": round(t_heldout - t_sums, 3),
              "heldout_seconds": round(time.perf_counter() - t_heldout, 3)}
    model.metadata = model.training_record(
        data, t0, n_sparse=n_sparse, n_sparse_rule=AUTO_RULE if c.n_sparse is None else "stated", stream=stream,
        **({"label_mask": data.label_mask} if data.labelled is not None else {}), heldout_metrics=heldout)
    return model
