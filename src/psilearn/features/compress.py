"""Equivariant compression of lambda-SOAP features.

lambda-SOAP is highly redundant (e.g. (l1, l2) and (l2, l1) pairs, correlated radial channels). A
principal-component projection acting only on the feature index q, X_i -> X_i V with V (Q, K), keeps
every block exactly equivariant (rotations act on the m index) while cutting kernel costs.
V spans the leading eigenvectors of sum_i X_i^T X_i over training environments, keeping all but a
fraction ``tol`` of the feature variance.
"""

from __future__ import annotations

import numpy as np

from psilearn.features.lsoap import AtomFeatures


def fit_projections(feats: AtomFeatures, tol: float, max_features: int | None = None) -> dict:
    """{(l, sigma): {Z: V (Q, K)}} keeping all but ``tol`` of each block's variance."""
    out: dict = {}
    for ch, per_z in feats.blocks.items():
        out[ch] = {}
        for z, x in per_z.items():
            q = x.shape[2]
            if x.shape[0] == 0 or q == 0:
                out[ch][z] = np.eye(q)
                continue
            flat = x.reshape(-1, q)
            ev, vec = np.linalg.eigh(flat.T @ flat)
            ev, vec = ev[::-1], vec[:, ::-1]
            total = ev.sum()
            if total <= 0:
                out[ch][z] = vec[:, :1]
                continue
            left = 1.0 - np.cumsum(ev) / total
            k = int(np.argmax(left <= tol)) + 1 if np.any(left <= tol) else q
            if max_features:
                k = min(k, max_features)
            out[ch][z] = np.ascontiguousarray(vec[:, :k])
    return out


def apply_projections(feats: AtomFeatures, proj: dict) -> AtomFeatures:
    """Project every block in place (returns ``feats``)."""
    for ch, per_z in feats.blocks.items():
        for z, x in per_z.items():
            v = proj[ch][z]
            if x.shape[0] == 0:  # no atoms of this element here: width is irrelevant
                per_z[z] = np.zeros((0, x.shape[1], v.shape[1]))
                continue
            if x.shape[2] != v.shape[0]:
                raise ValueError(f"feature size {x.shape[2]} of channel {ch}, element {z} does not match the model ({v.shape[0]})")
            per_z[z] = np.einsum("nmq,qk->nmk", x, v)
    return feats
