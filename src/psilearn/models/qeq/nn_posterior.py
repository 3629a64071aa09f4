"""The joint posterior of a qeq-nn model across samples (its LLPR through QEq), as low-rank factors.

:mod:`.nn_llpr` treats the chi readout's weights w as a Bayesian linear model: the observations (charges,
dipole components) are linear in w with Jacobians G (``jacobians``), the training rows are weighted like
the loss, r_t = sqrt(w_t) / s_t per observation type t (loss weight w_t, residual scale s_t), with unit
noise on the weighted rows, and Sigma = (F^T F + reg I)^-1. Scaled by the calibration factor alpha2_t, the
covariance of the observations of samples a and b is alpha2_t G_a Sigma G_b^T, so R_a = sqrt(alpha2_t)
G_a Sigma^(1/2) is a factor (rotated into the Target's irreps basis), and the noise of one observed
component of type t is alpha2_t / r_t^2 = alpha2_t s_t^2 / w_t (label units): conditioning on a label of
j with it equals refitting Sigma with j's weighted rows added (Woodbury), as for the nn kind
(:mod:`psilearn.models.nn.posterior`). Only the Target's observation is conditioned on: a dipole model
trained on charges too gets no credit here for the charges a new structure's label would also bring. The
hardness is held at its trained value, as in the model's own variance.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.data.memory import check_allocation
from psilearn.models._torch.uncertainty import psd_sqrt
from psilearn.models.qeq.nn_llpr import jacobians


def qeq_llpr_factors(model, frames: list[Atoms]) -> list[tuple[np.ndarray, float]] | None:
    """[(R, sigma2)] for the Target's one irrep occurrence (charges 0e per atom, or the dipole 1o per
    structure): R (n_samples, 2l+1, mul) with R_a R_b^T the posterior covariance (label units squared,
    the Target's irreps basis) of samples a and b of ``frames``, and sigma2 the noise variance of one
    observed component (module docstring). None without LLPR (``nn_train.uncertainty: none``)."""
    if model.net is None:
        raise RuntimeError("model is not fitted")
    if model.llpr is None:
        return None
    model.check_elements(frames)
    kind = "dipole" if model.is_dipole else "charges"
    n = len(frames) if model.is_dipole else sum(len(a) for a in frames)
    mul = len(model.llpr.inv)
    check_allocation(8 * 3 * n * 3 * mul, f"qeq-nn (LLPR) joint posterior of {n} samples",
                     "fewer structures (a smaller active-learning pool or focus set), or nn.channels")
    _, g, maps = model._run(frames, features=True)
    gq, gmu = jacobians(maps, g, model.dipole_factor)
    a2 = model.llpr.factor(kind)
    root = np.sqrt(max(a2, 0.0)) * psd_sqrt(model.llpr.inv)
    if model.is_dipole:
        from psilearn.targets.cartesian import cartesian_basis

        to_irr = cartesian_basis(model.target.tensor).to_irreps  # (3, 3), orthogonal: Cartesian -> irreps
        r = np.einsum("ka,nkr->nar", to_irr, np.stack([j @ root for j in gmu]).reshape(-1, 3, mul))
    else:
        r = (np.concatenate(gq) @ root)[:, None, :] if gq else np.zeros((0, 1, mul))
    # the Target's own observation type has loss weight 1 (charge_weight weighs the extra charges of a dipole model)
    return [(r, float(a2 * model.metadata["loss_scales"][kind] ** 2))]
