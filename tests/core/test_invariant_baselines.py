"""A target with several invariant (0e) blocks, such as a rank-4 elasticity tensor (two: bulk- and
shear-like), gets one composition baseline per block, fitted and predicted with its own coefficients.
Before, the fit subtracted each block's baseline but kept only the last block's coefficients, which
predict then added to every 0e block (training CV looked fine, predictions were wrong)."""

from __future__ import annotations

import json

import numpy as np

from psilearn.data import load_dataset
from psilearn.models import SAGPR, load
from psilearn.targets import Target

from ._synth import molecules, small_model, small_soap

TARGET = Target("C", tensor="ijkl=jikl=klij", pool="mean", units="GPa")
A = {1: 30.0, 6: 250.0, 8: 90.0}  # per-element constants of the two isotropic parts (very different)
B = {1: 5.0, 6: -40.0, 8: 60.0}


def _isotropic_labels(frames):
    """C_ijkl = a d_ij d_kl + b (d_ik d_jl + d_il d_jk), a and b the element-fraction means of A and B."""
    d = np.eye(3)
    iso1, iso2 = np.einsum("ij,kl->ijkl", d, d), np.einsum("ik,jl->ijkl", d, d) + np.einsum("il,jk->ijkl", d, d)
    out = []
    for at in frames:
        b = at.copy()
        a_val, b_val = np.mean([A[z] for z in at.numbers]), np.mean([B[z] for z in at.numbers])
        b.info["C"] = (a_val * iso1 + b_val * iso2).ravel()
        out.append(b)
    return out


def test_each_invariant_block_keeps_its_own_baseline(tmp_path):
    frames = _isotropic_labels(molecules(5, 30))
    assert [b.l for b in TARGET.blocks].count(0) == 2
    model = SAGPR(TARGET, small_soap(), small_model(n_sparse=10)).fit(load_dataset(frames[:20], TARGET))
    truth = np.array([a.info["C"] for a in frames[20:]])
    pred = model.predict(frames[20:], return_std=False).values
    # the labels are exactly a composition function: the baselines alone reproduce them
    np.testing.assert_allclose(pred, truth, atol=1e-3 * np.abs(truth).max())
    assert all(len(v) == 2 for v in model.baseline.values())
    model.save(tmp_path / "c.model")
    meta = json.loads((tmp_path / "c.model" / "model.json").read_text())
    assert all(len(v) == 2 for v in meta["baseline"].values())
    np.testing.assert_allclose(load(tmp_path / "c.model").predict(frames[20:], return_std=False).values, pred, atol=1e-12)
