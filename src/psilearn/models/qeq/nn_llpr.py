"""Last-layer uncertainty (LLPR) of the QEq-NN model, propagated linearly through QEq.

chi_i = g_i . w + const with g_i (mul,) the invariant features entering the linear readout and w
its weights. At fixed hardness the charges q_s = -L_s chi_s + c_s and dipoles mu_s = f R_s^T q_s
are linear in w too, with Jacobians

    G_q,s = -L_s G_s  (n_s, mul)       G_mu,s = f R_s^T G_q,s  (3, mul).

Treating w as a Bayesian linear model (Bigi et al., MLST 5, 045018 (2024)) with the training
rows F (the Jacobian rows of every trained observation, weighted like the loss: sqrt(w_t) / s_t),
Sigma = (F^T F + reg I)^-1 and

    var(q_i) = alpha^2 (G_q Sigma G_q^T)_ii,      cov(mu_s) = alpha^2 G_mu Sigma G_mu^T  (3 x 3),

with one alpha^2 per observation type calibrated on the validation split (mean z^2 = 1);
observations not trained on (the latent charges of a dipole model) use the factor of the main
target. Dipole covariances transform as R cov R^T: exactly equivariant. With learned hardness the
hardness is held at its trained value (its own uncertainty is not included).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from psilearn.models.qeq.linear_maps import QEqMaps


def jacobians(maps: QEqMaps, g: np.ndarray, factor: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per structure: G_q (n_s, mul) and G_mu (3, mul) for readout features ``g`` (n_atoms_total, mul)."""
    gq, gmu = [], []
    for s, sys in enumerate(maps.systems):
        jq = -sys.response(g[maps.atoms_of(s)])
        gq.append(jq)
        gmu.append(factor * (maps.arms[s].T @ jq))
    return gq, gmu


@dataclass
class QEqLLPR:
    """``inv`` (mul, mul) = (F^T F + reg I)^-1; ``alpha2`` {'charges' | 'dipole': factor}; ``main``
    the observation type whose factor is used for types without their own."""

    inv: np.ndarray
    main: str
    alpha2: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(cls, maps: QEqMaps, g: np.ndarray, factor: float, row_weights: dict[str, float], main: str,
            regularization: float) -> "QEqLLPR":
        """From the training structures' ``maps`` and features ``g``; ``row_weights`` {type: sqrt(w_t)/s_t}."""
        gq, gmu = jacobians(maps, g, factor)
        rows = []
        if "charges" in row_weights:
            rows += [row_weights["charges"] * j for j in gq]
        if "dipole" in row_weights:
            rows += [row_weights["dipole"] * j for j in gmu]
        f = np.concatenate(rows)
        c = f.T @ f
        reg = regularization * max(np.trace(c) / len(c), 1e-300)
        return cls(np.linalg.inv(c + reg * np.eye(len(c))), main)

    def factor(self, kind: str) -> float:
        return float(self.alpha2.get(kind, self.alpha2.get(self.main, 1.0)))

    def raw(self, maps: QEqMaps, g: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
        """Uncalibrated charge variances (n_atoms_total,) e^2 and dipole covariances (n_struct, 3, 3)."""
        gq, gmu = jacobians(maps, g, factor)
        q_var = np.concatenate([np.einsum("ij,jk,ik->i", j, self.inv, j) for j in gq]) if gq else np.zeros(0)
        mu_cov = np.array([j @ self.inv @ j.T for j in gmu]).reshape(-1, 3, 3)
        return q_var, mu_cov

    def predict(self, maps: QEqMaps, g: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated charge variances (e^2) and dipole covariances ((dipole units)^2)."""
        q_var, mu_cov = self.raw(maps, g, factor)
        return self.factor("charges") * q_var, self.factor("dipole") * mu_cov
