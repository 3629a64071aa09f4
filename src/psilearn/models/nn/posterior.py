"""The joint posterior of an nn model with LLPR uncertainty across samples, as low-rank factors.

The readout is linear in the last-layer features: for an output block of irrep type (l, p), component m
of sample a is y_am = c w^T f_am, with f_am (mul,) the features of that type (pooled over the structure
for structure targets, per atom for per-atom targets), one weight vector w shared by the 2l+1
components, and c the block's output scale (checked numerically against the network: exact to 1e-15).
LLPR (:mod:`psilearn.models._torch.uncertainty`) treats w as a Bayesian linear model whose observations,
one per component of each training sample, have noise variance s2 and whose prior precision is the
ridge: the posterior of w has covariance s2 Sigma, Sigma = (F^T F + reg I)^-1 per irrep type, and the
calibration factor alpha2 of the block stands for c^2 s2. So the noise-free irreps of samples a, b have

    cov(y_a, y_b) = alpha2 F_a Sigma F_b^T        (F_a: (2l+1, mul) features of sample a),

whose diagonal averaged over m is the model's own variance, and R_a = sqrt(alpha2) F_a Sigma^(1/2) is a
factor with R_a R_b^T = cov(y_a, y_b). The noise variance of one observed component is alpha2 (in label
units): conditioning this covariance on a label of sample j with noise alpha2 gives, by the Woodbury
identity, alpha2 F_a (F^T F + F_j^T F_j + reg I)^-1 F_b^T, i.e. exactly the LLPR covariance refitted with
j's features added (ridge and features held fixed). Blocks are independent (each has its own weights),
as SA-GPR's irrep occurrences are. What LLPR leaves out (the features' own change on retraining) is left
out here too.

Not covered: deep ensembles (their spread is a per-sample sample variance of K members, with no noise
model that a new label would condition) and per-pair targets (active learning labels structures or
atoms): both give None, so active learning falls back to its surrogate kernel.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.data.memory import check_allocation
from psilearn.models._torch import uncertainty as unc

JOINT_HINT = "fewer structures (a smaller active-learning pool or focus set), or nn.channels"


def llpr_factors(model, frames: list[Atoms], alpha2: np.ndarray | None = None) -> list[tuple[np.ndarray, float]] | None:
    """One (R, sigma2) per block of ``model.target.blocks`` (its irrep occurrences, in that order): R
    (n_samples, 2l+1, mul) with R_a R_b^T the LLPR posterior covariance (label units squared, in the
    Target's orthonormal irreps basis) of the noise-free irreps of samples a and b of ``frames``
    (structures, or atoms for per-atom targets), and sigma2 = alpha2 of the block, the noise variance of
    one observed component (module docstring). ``alpha2`` (n_blocks,): the calibration factors to use
    (None: the model's). None for models without LLPR (ensembles, no uncertainty) and per-pair targets."""
    if not model.nets:
        raise RuntimeError("model is not fitted")
    t = model.target
    if model.llpr is None or t.per == "pair":
        return None
    model.check_elements(frames)
    model._apply_threads()
    alpha2 = np.asarray(model.llpr.alpha2 if alpha2 is None else alpha2, float)
    n = len(frames) if t.per == "structure" else sum(len(a) for a in frames)
    keys = sorted({(b.l, b.p) for b in model.blocks})
    # the features of each irrep type plus one factor per block (float64)
    nbytes = 8 * n * (sum((2 * l + 1) * len(model.llpr.inv[(l, p)]) for l, p in keys)
                      + sum(b.dim * len(model.llpr.inv[(b.l, b.p)]) for b in model.blocks))
    check_allocation(nbytes, f"nn (LLPR) joint posterior of {n} samples", JOINT_HINT)
    feats = unc.last_layer_features(model.nets[0], model._graphs(frames), t.per, t.pool, keys,
                                     model.train_config.predict_batch_size, model.device, model.dtype)
    base = {k: feats[k] @ unc.psd_sqrt(model.llpr.inv[k]) for k in keys}  # (n, 2l+1, mul): F Sigma^(1/2)
    return [(np.sqrt(max(float(a2), 0.0)) * base[(b.l, b.p)], float(a2)) for b, a2 in zip(model.blocks, alpha2)]

