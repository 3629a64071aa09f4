"""The per-element kind with nn inner models: each element's network equals a plain network fitted
on that element's atoms alone (a label mask); element options are used; files round-trip."""

from __future__ import annotations

import numpy as np

from core._synth import label_frames, molecules
from psilearn.data import Dataset, load_dataset
from psilearn.models import load
from psilearn.models.factory import fit_model
from psilearn.targets import Target

from .conftest import TINY_NET, TINY_TRAIN


def test_per_element_with_nn_inner(tmp_path):
    from psilearn.models.per_element import per_element_kind

    frames = label_frames(molecules(0, 12), "q", "scalar", "atom")
    target = Target("q", per="atom")
    ds = load_dataset(frames, target)
    train = {**TINY_TRAIN, "dtype": "float64"}  # float32 predictions depend on the batch's other structures at ~1e-7
    cfg = {"nn": TINY_NET, "nn_train": train, "per_element": {"O": {"nn": {"cutoff": 3.0}}}}
    kind = per_element_kind("nn")
    model = fit_model(kind, target, ds, cfg, seed=1)
    assert sorted(model.inners) == [1, 6, 8] and model.inners[1].kind == "nn"
    numbers = np.concatenate([a.numbers for a in frames])
    keep = numbers == 6
    plain = fit_model("nn", target, Dataset(frames, target, ds.values[keep], "C only", keep), {"nn": TINY_NET, "nn_train": train}, seed=1)
    new = [a.copy() for a in frames[:4]]
    c = np.concatenate([a.numbers for a in new]) == 6
    p, q = model.predict(new), plain.predict(new)
    np.testing.assert_allclose(p.values[c], q.values[c], rtol=0, atol=1e-10)
    assert model.inners[8].net_config.cutoff == 3.0 and model.inners[6].net_config.cutoff == 3.5
    model.save(tmp_path / "m")
    back = load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict(new).values, p.values)
