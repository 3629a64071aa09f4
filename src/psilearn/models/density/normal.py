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


@dataclass
class NormalEquations:
    """A = sum_s Psi_s^T S_s Psi_s, b = sum_s Psi_s^T S_s y_s, yy = sum_s y_s^T S_s y_s,
    ref = sum_s c_s^T S_s c_s (the reference densities' squared norm) and the structure count."""

    a: np.ndarray
    b: np.ndarray
    yy: float = 0.0
    ref: float = 0.0
    n: int = 0

    @classmethod
    def zeros(cls, size: int) -> "NormalEquations":
        return cls(np.zeros((size, size)), np.zeros(size))

    def add(self, layout: WeightLayout, phis: dict, rows: dict, s: np.ndarray, y: np.ndarray, c: np.ndarray) -> None:
        """One structure: ``phis`` {(Z, l): Phi (n_atoms_Z, 2l+1, D)}, ``rows`` from
        :func:`structure_rows`, metric ``s``, target ``y`` and full reference ``c`` (e3nn basis)."""
        cols = [(key, r) for key in layout.blocks for r in [rows.get(key[:2])] if r is not None]
        sy = s @ y
        t = np.zeros((len(y), layout.size))
        stacked = {k: p.reshape(-1, p.shape[2]) for k, p in phis.items()}
        for (z, l, n), r in cols:
            rr = r[:, n, :].reshape(-1)
            t[:, layout.slices[(z, l, n)]] = s[:, rr] @ stacked[(z, l)]
        for (z, l, n), r in cols:
            rr = r[:, n, :].reshape(-1)
            f = stacked[(z, l)]
            sl = layout.slices[(z, l, n)]
            self.a[sl] += f.T @ t[rr]
            self.b[sl] += f.T @ sy[rr]
        self.yy += float(y @ sy)
        self.ref += float(c @ s @ c)
        self.n += 1

    def loss(self, w: np.ndarray) -> float:
        """sum_s (Psi_s w - y_s)^T S_s (Psi_s w - y_s) of the accumulated structures."""
        return float(w @ self.a @ w - 2 * self.b @ w + self.yy)

    def relative_error(self, w: np.ndarray) -> float:
        """sqrt(loss / sum_s ||c_s||_S^2): the error of the predicted densities relative to the
        reference densities, both in the fit's metric (a fraction)."""
        return float(np.sqrt(max(self.loss(w), 0.0) / self.ref)) if self.ref > 0 else float("nan")


def mean_diagonal(eq: NormalEquations) -> float:
    """Mean diagonal of A per structure: the unit of the relative regularisation."""
    return float(np.mean(np.diag(eq.a))) / max(eq.n, 1) if eq.a.size else 1.0


def choose_regularization(train: NormalEquations, val: NormalEquations, grid: list[float]) -> tuple[float, list[float]]:
    """The relative lambda of ``grid`` minimising the validation loss of the weights fitted on
    ``train``; returns it and the validation relative errors over the grid. One Cholesky solve per
    grid point: on this OpenBLAS (one core) a Cholesky factorisation of A_train is ~20x cheaper than
    its eigendecomposition (n = 3000: 0.35 s against 7.5 s), so a grid of up to ~20 values costs
    less than the one eigendecomposition that would make every lambda free."""
    errors = [val.relative_error(solve(train, rel)) for rel in grid]
    best = int(np.nanargmin(errors))
    return float(grid[best]), [float(x) for x in errors]


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
