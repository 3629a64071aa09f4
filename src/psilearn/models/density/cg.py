"""Matrix-free solve of the density model's normal equations: preconditioned conjugate gradients.

(A + lambda I) w = b with A = sum_s Psi_s^T S_s Psi_s is solved without forming A. The pass over the
structures (:func:`~psilearn.models.density.fit.accumulate`, the same one as the direct solve's)
keeps, instead of A, what one product A w needs: per (element Z, l) the RKHS features Phi of every
training atom stacked (n_atoms_Z (2l+1), D_{Z,l}) with their rows in the concatenated coefficient
vector of all structures, and each structure's metric S_s (n_coef_s^2). Then

    u = Psi w:    u[R_{Z,l}] = Phi_{Z,l} W_{Z,l}^T        (W_{Z,l}: the n_l weight blocks, (n_l, D))
    v = S u:      v_s = S_s u_s                           (structure by structure)
    A w = Psi^T v: (A w)_{Z,l} = (Phi_{Z,l}^T v[R_{Z,l}])^T

one GEMM per (Z, l) each way, the same block-sparse bookkeeping as the direct solve
(:func:`~psilearn.models.density.normal.block_columns`), chunk by chunk of consecutive structures.
Memory (:func:`cg_bytes`): the features and metrics of the structures (the size of the data:
methanol, 100 sparse environments, ~0.8 MB per structure) are kept on disk (``cg_storage: disk``,
the default; :class:`~psilearn.models.density.cg_store.DiskStore`) or in RAM (``memory``); in RAM
otherwise only O(n_weights) vectors, the preconditioner and one chunk, never n_weights^2, so with the
disk store RAM does not grow with the number of structures.

Preconditioner: block Jacobi over the (Z, l) weight blocks, all radial functions n together:
A_(Z,l) = sum_s sum_{n,n'} Phi^T S_s[rr_n, rr_n'] Phi, (n_l D, n_l D) each, accumulated in the same
pass and Cholesky-factorised with lambda added (~9 % of A's entries for methanol). The radial
functions of one l couple strongly through the metric: blocks of single (Z, l, n) need ~5x more
iterations (test molecules, lambda 1e-2: 3400 against 624); per-l blocks over all elements ~1.5x
fewer than (Z, l) at 3x the memory. What CG iterates on is the coupling between atoms (and elements).

CG is scipy.sparse.linalg.cg on a LinearOperator (A is symmetric positive definite for lambda > 0),
stopped at ||b - (A + lambda I) w|| <= ``cg_tol`` ||b|| or ``cg_maxiter`` iterations (then a warning
and the record say so). The hold-out choice of lambda walks the grid from the largest lambda down,
each solve warm-started from the previous (best-conditioned first), and stops after ``cg_patience``
candidates in a row worse than the best (the smallest lambdas are both the slowest to converge and,
past the optimum, not needed); the final fit on all structures warm-starts from the chosen lambda's.
The walk resolves lambda only as far as ``cg_tol`` does: once lambda ||w|| is below ~cg_tol ||b||
the previous solution already meets the tolerance (0 iterations, the same held-out error), which
counts as not better and ends the walk (methanol, 160 structures: at 1e-5 after 1e-4).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from psilearn.models.density.cg_store import CHUNK_BYTES, MemoryStore
from psilearn.models.density.normal import LeastSquares, WeightLayout, block_columns, mean_diagonal, stack_features

log = logging.getLogger("psilearn")


@dataclass
class StructureOperator(LeastSquares):
    """A = sum_s Psi_s^T S_s Psi_s as the structures' features and metrics (see the module docstring),
    kept in ``stores`` (:mod:`psilearn.models.density.cg_store`: RAM or disk; one per part, a merge
    concatenates the lists); ``blocks[(Z, l)]`` the diagonal blocks of A over all radial functions n
    of (Z, l) (n_l D, n_l D), n-major as the weights."""

    layout: WeightLayout | None = None
    stores: list = field(default_factory=list)
    blocks: dict = field(default_factory=dict)

    @classmethod
    def empty(cls, layout: WeightLayout, store=None) -> "StructureOperator":
        """An operator without structures, adding them to ``store`` (default a :class:`MemoryStore`)."""
        return cls(np.zeros(layout.size), layout=layout, stores=[MemoryStore() if store is None else store])

    def add(self, layout: WeightLayout, phis: dict, rows: dict, s: np.ndarray, y: np.ndarray, c: np.ndarray) -> None:
        """One structure, as :meth:`NormalEquations.add <psilearn.models.density.normal.NormalEquations.add>`."""
        cols = block_columns(layout, rows)
        stacked = stack_features(phis)
        for key, f in stacked.items():
            r = rows[key]  # (n_atoms_Z, n_l, 2l+1)
            n_l, k = r.shape[1], r.shape[0] * r.shape[2]
            idx = r.transpose(1, 0, 2).reshape(-1)  # n-major, then (atom, m): the rows of f for each n
            sub = s[np.ix_(idx, idx)].reshape(n_l, k, n_l, k)
            blk = np.einsum("ka,ikjb->iajb", f, np.einsum("ikjl,lb->ikjb", sub, f)).reshape(n_l * f.shape[1], -1)
            self.blocks[key] = self.blocks[key] + blk if key in self.blocks else blk
        self.stores[-1].append(stacked, rows, s)
        self.add_rhs(cols, stacked, s, y, c)

    def merge(self, other: "StructureOperator") -> None:
        super().merge(other)
        for key, blk in other.blocks.items():
            self.blocks[key] = self.blocks[key] + blk if key in self.blocks else blk
        self.stores += other.stores
        other.stores = []

    def close(self) -> None:
        """Release the stores (delete a disk store's files)."""
        for store in self.stores:
            store.close()

    def _span(self, z: int, l: int, n_l: int) -> slice:
        """The weights of (Z, l), all n: contiguous in the layout, n-major, (n_l D,)."""
        return slice(self.layout.slices[(z, l, 0)].start, self.layout.slices[(z, l, n_l - 1)].stop)

    def element_blocks(self) -> list[tuple[tuple[int, int], slice]]:
        """[((Z, l), span)] in layout order: the preconditioner's blocks."""
        keys = list(dict.fromkeys(key[:2] for key in self.layout.blocks))
        return [(key, self._span(*key, sum(1 for b in self.layout.blocks if b[:2] == key))) for key in keys]

    def matvec(self, w: np.ndarray) -> np.ndarray:
        """A w (n_weights,) for weights ``w`` (n_weights,): one pass over the stored structures, chunk by chunk."""
        out = np.zeros(self.layout.size)
        for store in self.stores:
            for chunk in store.chunks():
                u = np.zeros(chunk.n_coef)
                for (z, l), (f, r) in chunk.feats.items():
                    n_at, n_l, d = r.shape
                    u[r] = (f @ w[self._span(z, l, n_l)].reshape(n_l, -1).T).reshape(n_at, d, n_l).transpose(0, 2, 1)
                v = np.empty_like(u)
                for o, s in chunk.metrics:
                    v[o : o + len(s)] = s @ u[o : o + len(s)]
                for (z, l), (f, r) in chunk.feats.items():
                    n_at, n_l, d = r.shape
                    out[self._span(z, l, n_l)] += (f.T @ v[r].transpose(0, 2, 1).reshape(n_at * d, n_l)).T.reshape(-1)
        return out

    def diagonal(self) -> np.ndarray:
        out = np.zeros(self.layout.size)
        for key, sl in self.element_blocks():
            if key in self.blocks:
                out[sl] = np.diag(self.blocks[key])
        return out


def block_jacobi(op: StructureOperator, lam: float):
    """LinearOperator applying (A_bb + lam I)^-1 block by block (Cholesky factors, sum_b D_b^2 numbers)."""
    from scipy.linalg import cho_factor, cho_solve
    from scipy.sparse.linalg import LinearOperator

    factors = []
    for key, sl in op.element_blocks():
        a = op.blocks[key].copy() if key in op.blocks else np.zeros((sl.stop - sl.start,) * 2)
        a[np.diag_indices_from(a)] += lam
        factors.append((sl, cho_factor(a, overwrite_a=True, check_finite=False)))

    def apply(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x).reshape(-1)
        out = np.empty_like(x)
        for sl, fac in factors:
            out[sl] = cho_solve(fac, x[sl], check_finite=False)
        return out

    return LinearOperator((op.layout.size,) * 2, matvec=apply, dtype=float)


@dataclass
class CGSolver:
    """``solver(op, rel) -> w``: preconditioned CG for (A + rel x mean-diagonal I) w = b, warm-started
    from the solution of the nearest lambda (in log) solved before: the previous grid point during
    the hold-out walk, the chosen lambda's training solution for the final fit on all structures.
    ``history``: one record per solve (lambda, iterations, relative residual, seconds, converged)."""

    tol: float = 1e-6
    maxiter: int = 3000
    progress: bool = False
    history: list = field(default_factory=list)
    _solutions: dict = field(default_factory=dict, repr=False)  # lambda -> w (n_weights,)

    def __call__(self, op: StructureOperator, rel: float) -> np.ndarray:
        from scipy.sparse.linalg import LinearOperator, cg
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        lam = rel * mean_diagonal(op)
        a = LinearOperator((op.layout.size,) * 2, matvec=lambda x: op.matvec(np.asarray(x).reshape(-1)) + lam * np.asarray(x).reshape(-1),
                           dtype=float)
        x0 = self._solutions[min(self._solutions, key=lambda r: abs(np.log(r / rel)))] if self._solutions else None
        bar = tqdm(total=self.maxiter, desc=f"density CG lambda {rel:.0e}", unit="it", disable=not self.progress, leave=False)
        count = [0]

        def step(_x) -> None:
            count[0] += 1
            bar.update(1)

        w, info = cg(a, op.b, x0=x0, rtol=self.tol, atol=0.0, maxiter=self.maxiter, M=block_jacobi(op, lam), callback=step)
        bar.close()
        res = float(np.linalg.norm(op.b - a.matvec(w)) / max(np.linalg.norm(op.b), 1e-300))
        rec = {"lambda": rel, "iterations": count[0], "relative_residual": res, "seconds": round(time.perf_counter() - t0, 3),
               "converged": info == 0}
        self.history.append(rec)
        if info != 0:
            log.warning("density CG: lambda %.0e not converged in %d iterations (relative residual %.1e > cg_tol %.0e)",
                        rel, self.maxiter, res, self.tol)
        log.info("density CG: lambda %.0e, %d iterations, relative residual %.1e, %.1f s", rel, count[0], res, rec["seconds"])
        self._solutions[rel] = w
        return w


def cg_bytes(layout: WeightLayout, widths: dict, atoms_per_element: dict, coef_sizes: list[int], target,
             storage: str = "memory", chunk_bytes: int = CHUNK_BYTES) -> tuple[int, int]:
    """(RAM, disk) peak bytes of the CG fit. The structures' data: the stacked features (per (Z, l) and
    atom, (2l+1) D_{Z,l} floats), their row indices ((2l+1) n_l integers) and the metrics
    (8 sum_s n_coef_s^2): in RAM for ``storage`` 'memory' (plus one (Z, l)'s concatenation
    transient), on disk for 'disk' (RAM: one chunk of at most ``chunk_bytes``, or the largest
    structure, twice: read and products). Always in RAM: the diagonal blocks and their factors
    (2 x 8 sum_{Z,l} (n_l D_{Z,l})^2) and ~20 vectors of n_weights (and of n_coef in memory).
    ``atoms_per_element`` {Z: training atoms}, ``coef_sizes`` the coefficient count of each training structure."""
    from ase.data import chemical_symbols

    per_key, blocks = {}, 0
    for (z, l), d in widths.items():
        n_l = target.block_index(chemical_symbols[z], l).shape[0]
        per_key[(z, l)] = atoms_per_element.get(z, 0) * (2 * l + 1) * (8 * d + 8 * n_l)
        blocks += 2 * 8 * (n_l * d) ** 2
    data = sum(per_key.values()) + 8 * sum(n * n for n in coef_sizes)
    if storage == "memory":
        return int(data + max(per_key.values(), default=0) + blocks + 20 * 8 * (layout.size + sum(coef_sizes))), 0
    n_max = max(coef_sizes, default=0)
    largest = 8 * n_max * n_max + 2 * sum(per_key.values()) // max(len(coef_sizes), 1)  # features: twice the mean
    chunk = min(max(chunk_bytes, largest), data)
    return int(2 * chunk + blocks + 20 * 8 * layout.size + 64 * len(coef_sizes) * (1 + len(widths))), int(data)
