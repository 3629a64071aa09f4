"""Charge equilibration (QEq): charges minimising a quadratic energy at fixed total charge.

For one structure with electronegativities chi (eV/e, shape (n,)), total charge Q (e) and the
hardness matrix A = C + diag(J) (eV/e^2; C the Gaussian-charge Coulomb matrix, molecular or Ewald),
the charges minimise

    E(q) = chi . q + 1/2 q^T A q      subject to   sum_i q_i = Q.

The Lagrange conditions A q + chi + lambda 1 = 0, 1^T q = Q give, with u = A^{-1} 1 and
s = 1^T u,

    q = -L chi + c,   L = A^{-1} - u u^T / s,   c = Q u / s,   lambda = -(Q + u . chi) / s,

so the charges, and every linear function of them (the dipole sum_i q_i r_i), are *linear* in chi:
this is what lets kernel models of chi be fitted in closed form to charges and/or dipoles.
1^T L = 0 exactly, so sum_i q_i = Q up to rounding; a final uniform correction removes even the
rounding (|sum q - Q| <= a few ulp).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from psilearn.physics.coulomb import gaussian_coulomb_matrix
from psilearn.physics.ewald import ewald_coulomb_matrix
from psilearn.physics.params import QEqParams


def coulomb_matrix(atoms: Atoms, params: QEqParams) -> np.ndarray:
    """Gaussian-charge Coulomb matrix of ``atoms`` (n, n), eV/e^2: Ewald for fully periodic cells,
    the open-boundary sum for molecules. Partially periodic cells (slabs, wires) are refused."""
    sigma = params.sigma(atoms.numbers)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.all():
        return ewald_coulomb_matrix(atoms.positions, atoms.cell.array, sigma, accuracy=params.ewald_accuracy)
    if pbc.any():
        raise ValueError(f"QEq supports molecules (no pbc) or 3D-periodic cells, not pbc={pbc.tolist()}")
    return gaussian_coulomb_matrix(atoms.positions, sigma)


@dataclass
class QEqSystem:
    """The factorised QEq problem of one structure.

    ``A`` (n, n) hardness matrix in eV/e^2 (Coulomb + diagonal element hardness ``J``), ``u`` =
    A'^{-1} 1 and ``s`` = 1 . u, with A' = A + shift 1 1^T (a constant ``shift`` >= 0 is added only if A
    is not positive definite, e.g. for some charged periodic cells; it changes no charge).
    """

    A: np.ndarray
    J: np.ndarray
    factor: tuple
    u: np.ndarray
    s: float
    shift: float = 0.0

    @classmethod
    def from_matrix(cls, A: np.ndarray, J: np.ndarray | None = None) -> "QEqSystem":
        n = len(A)
        J = np.zeros(n) if J is None else np.asarray(J, float)
        shift = 0.0
        for _ in range(3):
            try:
                factor = cho_factor(A + shift, lower=True, check_finite=True)
                break
            except LinAlgError:
                shift = 2.0 * n * max(np.abs(A).max(), 1.0) if shift == 0.0 else 10.0 * shift
        else:
            raise ValueError("the QEq matrix is not positive definite on neutral charge distributions "
                             "(negative element hardness?)")
        u = cho_solve(factor, np.ones(n))
        return cls(A, J, factor, u, float(u.sum()), shift)

    @classmethod
    def from_atoms(cls, atoms: Atoms, params: QEqParams) -> "QEqSystem":
        J = params.hardness_of(atoms.numbers)
        return cls.from_matrix(coulomb_matrix(atoms, params) + np.diag(J), J)

    @property
    def n(self) -> int:
        return len(self.A)

    def response(self, x: np.ndarray) -> np.ndarray:
        """L x for x of shape (n,) or (n, k): the (negative) charge response to electronegativities."""
        return cho_solve(self.factor, x) - np.multiply.outer(self.u, self.u @ x) / self.s

    def offset(self, total_charge: float) -> np.ndarray:
        """c = Q u / s (n,): the charges at chi = 0 (e)."""
        return total_charge * self.u / self.s

    def charges(self, chi: np.ndarray, total_charge: float = 0.0) -> np.ndarray:
        """QEq charges (e), shape (n,), for electronegativities ``chi`` (eV/e) and total charge Q (e)."""
        q = -self.response(np.asarray(chi, float)) + self.offset(total_charge)
        return q + (total_charge - q.sum()) / self.n  # remove rounding: sum q == Q to the last ulp

    def chemical_potential(self, chi: np.ndarray, total_charge: float = 0.0) -> float:
        """The Lagrange multiplier -lambda = dE/dq_i (eV/e), equal on every atom at equilibrium."""
        return float((total_charge + self.u @ chi) / self.s - self.shift * total_charge)

    def energy(self, q: np.ndarray, chi: np.ndarray) -> float:
        """QEq energy chi . q + 1/2 q^T A q (eV)."""
        return float(chi @ q + 0.5 * q @ self.A @ q)

    def electrostatic_energy(self, q: np.ndarray) -> float:
        """Coulomb energy of the Gaussian charges 1/2 q^T C q (eV), including their self-energies
        (and, in periodic cells, the background/tin-foil conventions of :mod:`.ewald`)."""
        return float(0.5 * q @ (self.A - np.diag(self.J)) @ q)


@dataclass
class QEqResult:
    """Output for one structure: ``charges`` (n,) e, ``dipole`` (3,) e*Angstrom about ``origin``
    (3,) Angstrom, ``energy`` (eV, QEq energy) and ``electrostatic_energy`` (eV)."""

    charges: np.ndarray
    dipole: np.ndarray
    origin: np.ndarray
    energy: float
    electrostatic_energy: float
    chemical_potential: float


def equilibrate(atoms: Atoms, chi: np.ndarray, params: QEqParams | None = None, total_charge: float | None = None,
                origin: str = "com") -> QEqResult:
    """Solve QEq for one structure with given electronegativities ``chi`` (n,) in eV/e.

    ``total_charge`` defaults to the validated ``atoms.info['charge']``; ``origin`` is the dipole
    convention of :func:`psilearn.physics.dipole.dipole_origin`."""
    from psilearn.data.electronic_state import charge_and_multiplicity
    from psilearn.physics.dipole import dipole_origin

    params = params or QEqParams()
    if total_charge is None:
        total_charge = charge_and_multiplicity(atoms)[0]
    chi = np.asarray(chi, float).reshape(-1)
    if chi.shape != (len(atoms),):
        raise ValueError(f"chi has shape {chi.shape}, expected ({len(atoms)},)")
    system = QEqSystem.from_atoms(atoms, params)
    q = system.charges(chi, total_charge)
    o = dipole_origin(atoms, origin)
    return QEqResult(q, q @ (atoms.positions - o), o, system.energy(q, chi), system.electrostatic_energy(q),
                     system.chemical_potential(chi, total_charge))
