"""The metric-weighted normal equations of the density model, accumulated structure by structure.

A structure s with reference coefficients y_s (e3nn basis, baseline removed) and metric S_s
contributes (Psi_s w - y_s)^T S_s (Psi_s w - y_s) to the loss. Psi_s is block-sparse: the rows of
coefficient block (atom i, l, n) hold Phi_i^{Z_i,l} in the columns of weight block (Z_i, l, n) and
zeros elsewhere. So with F_{Z,l} the stacked Phi of the structure's atoms of element Z and R_{Z,l,n}
their rows, T = S_s Psi_s is built column block by column block, T[:, (Z,l,n)] = S_s[:, R] F, and
A[(Z,l,n), :] += F^T T[R, :], b[(Z,l,n)] += F^T (S_s y_s)[R]. The cost per structure is
n_coef x (n_coef + n_weights) x D rather than n_coef x n_weights^2, Psi_s is never formed, and the
memory is that of A (n_weights^2, independent of the number of structures) plus one structure's T.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: what to change when the normal matrix does not fit in memory
WEIGHTS_HINT = ("density.n_sparse / density.n_sparse_l (sparse environments), density.max_features or "
                "density.eigen_tol (RKHS features per element and l)")


@dataclass
class WeightLayout:
    """Weight blocks (Z, l, n) in order, each of width D_{Z,l}, and their slices of w."""

    blocks: list[tuple[int, int, int]]
    widths: dict[tuple[int, int], int]
    slices: dict[tuple[int, int, int], slice] = field(default_factory=dict)

    def __post_init__(self) -> None:
        start = 0
        for z, l, n in self.blocks:
            d = self.widths[(z, l)]
            self.slices[(z, l, n)] = slice(start, start + d)
            start += d
        self.size = start

    @classmethod
    def of(cls, target, species: list[int], widths: dict) -> "WeightLayout":
        from ase.data import chemical_symbols

        blocks = []
        for z in species:
            ls = [b.l for b in target.blocks_of(chemical_symbols[z])]
            blocks += [(z, l, n) for l in sorted(set(ls)) for n in range(ls.count(l))]
        return cls(blocks, widths)


def structure_rows(target, symbols: list[str], numbers: np.ndarray) -> dict:
    """{(Z, l): rows (n_atoms_Z, n_l, 2l+1)} of a structure's flat coefficient vector, atoms of Z
    in structure order."""
    off = target.offsets(symbols)
    out: dict = {}
    for z in sorted(set(int(x) for x in numbers)):
        atoms = np.flatnonzero(numbers == z)
        sym = symbols[atoms[0]]
        for l in sorted({b.l for b in target.blocks_of(sym)}):
            idx = target.block_index(sym, l)  # (n_l, 2l+1)
            out[(z, l)] = off[atoms][:, None, None] + idx[None]
    return out


def structure_features(phis: dict, feats, k: int) -> dict:
    """{(Z, l): the rows of ``phis[(Z, l)]`` (features of every structure in ``feats``, a batch's
    lambda-SOAP) that belong to structure ``k`` of the batch}; keys of elements it lacks are left out."""
    mine = {}
    for (z, l), phi in phis.items():
        sel = feats.structure[feats.index[z]] == k
        if sel.any():
            mine[(z, l)] = phi[sel]
    return mine


def block_columns(layout: WeightLayout, rows: dict) -> list[tuple[tuple[int, int, int], np.ndarray, slice]]:
    """[((Z, l, n), rr, sl)] for the weight blocks a structure touches: ``rr`` the flat coefficient
    rows (n_atoms_Z (2l+1),) of block (Z, l, n) in (atom, m) order (the row order of the stacked Phi),
    ``sl`` the block's slice of w."""
    return [((z, l, n), r[:, n, :].reshape(-1), layout.slices[(z, l, n)])
            for z, l, n in layout.blocks for r in [rows.get((z, l))] if r is not None]


def stack_features(phis: dict) -> dict:
    """{(Z, l): Phi (n_atoms_Z, 2l+1, D)} -> {(Z, l): (n_atoms_Z (2l+1), D)}, rows in (atom, m) order."""
    return {k: p.reshape(-1, p.shape[2]) for k, p in phis.items()}


@dataclass
class LeastSquares:
    """One part (training or hold-out) of sum_s (Psi_s w - y_s)^T S_s (Psi_s w - y_s): b = sum_s
    Psi_s^T S_s y_s (n_weights,), yy = sum_s y_s^T S_s y_s, ref = sum_s c_s^T S_s c_s (the reference
    densities' squared norm) and the structure count. Subclasses hold A = sum_s Psi_s^T S_s Psi_s:
    dense (:class:`NormalEquations`) or as the structures themselves
    (:class:`~psilearn.models.density.cg.StructureOperator`), and give ``matvec`` and ``diagonal``."""

    b: np.ndarray
    yy: float = 0.0
    ref: float = 0.0
    n: int = 0
    n_coef: int = 0

    def matvec(self, w: np.ndarray) -> np.ndarray:
        """A w, shape (n_weights,)."""
        raise NotImplementedError

    def diagonal(self) -> np.ndarray:
        """diag(A), shape (n_weights,)."""
        raise NotImplementedError

    def add_rhs(self, cols: list, stacked: dict, s: np.ndarray, y: np.ndarray, c: np.ndarray) -> None:
        """One structure's b, yy, ref and count (``cols`` from :func:`block_columns`)."""
        sy = s @ y
        for (z, l, _), rr, sl in cols:
            self.b[sl] += stacked[(z, l)].T @ sy[rr]
        self.yy += float(y @ sy)
        self.ref += float(c @ s @ c)
        self.n += 1
        self.n_coef += len(y)

    def merge(self, other: "LeastSquares") -> None:
        """Add ``other``'s structures to this part (``other`` is not to be used afterwards)."""
        self.b += other.b
        self.yy += other.yy
        self.ref += other.ref
        self.n += other.n
        self.n_coef += other.n_coef

    def loss(self, w: np.ndarray) -> float:
        """sum_s (Psi_s w - y_s)^T S_s (Psi_s w - y_s) of the accumulated structures."""
        return float(w @ self.matvec(w) - 2 * self.b @ w + self.yy)

    def relative_error(self, w: np.ndarray) -> float:
        """sqrt(loss / sum_s ||c_s||_S^2): the error of the predicted densities relative to the
        reference densities, both in the fit's metric (a fraction)."""
        return float(np.sqrt(max(self.loss(w), 0.0) / self.ref)) if self.ref > 0 else float("nan")


@dataclass
class NormalEquations(LeastSquares):
    """The dense A (n_weights, n_weights) of the direct solve."""

    a: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @classmethod
    def zeros(cls, size: int) -> "NormalEquations":
        return cls(np.zeros(size), a=np.zeros((size, size)))

    def add(self, layout: WeightLayout, phis: dict, rows: dict, s: np.ndarray, y: np.ndarray, c: np.ndarray) -> None:
        """One structure: ``phis`` {(Z, l): Phi (n_atoms_Z, 2l+1, D)}, ``rows`` from
        :func:`structure_rows`, metric ``s``, target ``y`` and full reference ``c`` (e3nn basis)."""
        cols = block_columns(layout, rows)
        stacked = stack_features(phis)
        t = np.zeros((len(y), layout.size))
        for (z, l, _), rr, sl in cols:
            t[:, sl] = s[:, rr] @ stacked[(z, l)]
        for (z, l, _), rr, sl in cols:
            self.a[sl] += stacked[(z, l)].T @ t[rr]
        self.add_rhs(cols, stacked, s, y, c)

    def merge(self, other: "NormalEquations") -> None:
        super().merge(other)
        self.a += other.a

    def matvec(self, w: np.ndarray) -> np.ndarray:
        return self.a @ w

    def diagonal(self) -> np.ndarray:
        return np.diag(self.a)


def mean_diagonal(eq: LeastSquares) -> float:
    """Mean diagonal of A per structure: the unit of the relative regularisation."""
    d = eq.diagonal()
    return float(np.mean(d)) / max(eq.n, 1) if d.size else 1.0


def choose_regularization(train: LeastSquares, val: LeastSquares, grid: list[float], solver=None,
                          patience: int | None = None) -> tuple[float, list[float | None]]:
    """The relative lambda of ``grid`` minimising the validation loss of the weights fitted on
    ``train`` by ``solver(train, rel)`` (default :func:`solve`); returns it and the validation
    relative errors over the grid (None where not solved). The grid is walked from the largest lambda
    down (so an iterative solver can warm-start from the previous, better-conditioned solution);
    with ``patience`` the walk stops once the error has risen for that many candidates in a row
    past the best. Direct: one Cholesky solve per grid point: on this OpenBLAS (one core) a Cholesky
    factorisation of A_train is ~20x cheaper than its eigendecomposition (n = 3000: 0.35 s against
    7.5 s), so a grid of up to ~20 values costs less than the one eigendecomposition that would make
    every lambda free."""
    solver = solver or solve
    errors: list[float | None] = [None] * len(grid)
    best, worse = None, 0
    for i in sorted(range(len(grid)), key=lambda k: -grid[k]):
        errors[i] = e = val.relative_error(solver(train, grid[i]))
        if not np.isnan(e) and (best is None or e < errors[best]):
            best, worse = i, 0
        else:
            worse += 1
        if patience is not None and worse >= patience:
            break
    if best is None:
        raise np.linalg.LinAlgError("no regularisation of the grid gave a finite validation error")
    return float(grid[best]), [None if e is None else float(e) for e in errors]


def solve(eq: NormalEquations, rel: float) -> np.ndarray:
    """w = (A + lambda I)^-1 b with lambda = ``rel`` x the mean diagonal per structure."""
    from scipy.linalg import cho_factor, cho_solve

    lam = rel * mean_diagonal(eq)
    a = eq.a.copy()
    a[np.diag_indices_from(a)] += lam
    try:
        return cho_solve(cho_factor(a, overwrite_a=True, check_finite=False), eq.b)
    except np.linalg.LinAlgError:  # lambda too small for a numerically semi-definite A
        a = eq.a.copy()
        a[np.diag_indices_from(a)] += lam
        return np.linalg.lstsq(a, eq.b, rcond=None)[0]


def fit_bytes(n_weights: int, cv: bool) -> int:
    """Peak bytes of accumulating and solving: A per part (training and validation with CV) and
    the shifted copy each Cholesky solve factorises in place."""
    return 8 * n_weights * n_weights * (3 if cv else 2)
