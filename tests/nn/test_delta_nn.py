"""The delta kind with an nn inner model: a zero baseline gives the plain network; files round-trip."""

from __future__ import annotations

import numpy as np

from core._synth import label_frames, molecules
from psilearn.data import load_dataset
from psilearn.models import load
from psilearn.models.factory import fit_model
from psilearn.targets import Target

from .conftest import TINY_NET, TINY_TRAIN


def test_delta_with_nn_inner(tmp_path):
    from psilearn.models.fidelity import delta_kind

    frames = label_frames(molecules(0, 12), "mu", "vector", "structure")
    for a in frames:
        a.info["mu0"] = np.zeros(3)
    target = Target("mu", tensor="i")
    ds = load_dataset(frames, target)
    cfg = {"nn": TINY_NET, "nn_train": TINY_TRAIN}
    plain = fit_model("nn", target, ds, cfg, seed=1)
    delta = fit_model(delta_kind("mu0", "nn"), target, ds, cfg, seed=1)
    new = [a.copy() for a in frames[:4]]
    p, q = plain.predict(new), delta.predict(new)
    np.testing.assert_allclose(q.values, p.values, rtol=0, atol=1e-10)
    np.testing.assert_allclose(q.std, p.std, rtol=0, atol=1e-10)
    delta.save(tmp_path / "d")
    back = load(tmp_path / "d")
    assert back.inner.kind == "nn" and back.iterative
    np.testing.assert_allclose(back.predict(new).values, q.values, rtol=0, atol=1e-10)
