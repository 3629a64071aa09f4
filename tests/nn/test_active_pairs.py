"""Active learning on a per-pair target (the nn kind on synthetic pair couplings): a structure's acquisition sums
the variances of its predicted pairs, whose number is not its atoms'; targeted and Δ runs spend the budget;
--calibration-neighbours is refused before any label."""

from __future__ import annotations

import numpy as np
import pytest

from psilearn.active import ActiveOptions, run_active
from psilearn.active.loop import _variance
from psilearn.data import write_structures
from psilearn.errors import ConfigError

from .conftest import TINY_NET, TINY_TRAIN
from .test_delta_pairs import BKEY, with_baseline
from .test_pair_targets import KEY, labelled

CFG = {"nn": TINY_NET, "nn_train": {**TINY_TRAIN, "epochs": 2}}
TARGET = {"key": KEY, "tensor": "ij", "per": "pair"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pairs")
    pool, focus = str(d / "pool.xyz"), str(d / "focus.xyz")
    write_structures(pool, with_baseline(labelled(16), 0.5), format="extxyz")
    write_structures(focus, labelled(4, seed=9), format="extxyz")
    return pool, focus


def _options(pool: str, **kw) -> ActiveOptions:
    return ActiveOptions(**{"pool": pool, "target": TARGET, "init": 5, "batch": 2, "budget": 9, "oracle": KEY, "seed": 0,
                            "kind": "nn", "config": CFG, **kw})


@pytest.mark.parametrize("extra", [{"strategy": "variance"}, {"strategy": "targeted", "focus": "FOCUS"}, {"strategy": "variance", "baseline": BKEY}])
def test_runs_spend_the_budget_on_pair_variances(files, tmp_path, extra):
    pool, focus = files
    extra = {k: focus if v == "FOCUS" else v for k, v in extra.items()}
    model, log = run_active(_options(pool, **extra), state_dir=str(tmp_path / "s"))
    picks = [i for r in log["rounds"] for i in r["selected"]]
    assert len(picks) == 9 and len(set(picks)) == 9
    assert [r["acquisition"] for r in log["rounds"][1:]] == ["surrogate kernel"] * 2  # the nn gives no joint posterior for pairs
    if "baseline" in extra:
        return

    # the acquisition of each structure is the sum over its predicted pairs (fewer or more than its atoms)
    from psilearn.data import read_structures

    frames = read_structures(pool)[:8]
    pred = model.predict(frames, return_std=True)
    counts = [len(p) for p in pred.pairs]
    assert counts != [len(a) for a in frames]
    var = np.sum(pred.irreps_std**2, axis=1)
    expected = [v.sum() for v in np.split(var, np.cumsum(counts)[:-1])]

    class _Run:  # what _variance reads of a run
        pass

    run = _Run()
    run.model, run.target, run.options = model, model.target, _options(pool)
    np.testing.assert_allclose(_variance(run, frames), expected, rtol=1e-12)
    assert min(expected) > 0


def test_calibration_is_refused_before_any_label(files, tmp_path):
    with pytest.raises(ConfigError, match="--calibration-neighbours: per-pair targets are not supported"):
        run_active(_options(files[0], strategy="variance", calibration_neighbours=3), state_dir=str(tmp_path / "c"))
    assert not (tmp_path / "c").exists()
