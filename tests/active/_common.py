"""Small active-learning settings shared by the tests (a 50-structure pool of the demo molecules)."""

from __future__ import annotations

import importlib.resources

from psilearn.active import ActiveOptions

MOLECULES = str(importlib.resources.files("psilearn") / "demo_data" / "molecules.xyz")
POOL = f"{MOLECULES}@0:300:6"  # 50 structures, all four molecules
TEST = f"{MOLECULES}@3:300:15"  # 20 others
CONFIG = {"soap": {"cutoff": 4.0, "max_radial": 4, "max_angular": 3}, "model": {"n_sparse": 20}}
CFG_YAML = "soap: {cutoff: 4.0, max_radial: 4, max_angular: 3}\nmodel: {n_sparse: 20}\n"


def options(**kw) -> ActiveOptions:
    base = dict(pool=POOL, target={"key": "dipole_moment", "tensor": "i"}, init=6, batch=5, budget=21, config=CONFIG,
                seed=3, oracle="dipole_moment")
    return ActiveOptions(**{**base, **kw})


def selected(log: dict) -> list[int]:
    return [i for r in log["rounds"] for i in r["selected"]]
