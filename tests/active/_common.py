"""Small active-learning settings shared by the tests (a 50-structure pool of the demo molecules)."""

from __future__ import annotations

import importlib.resources

import numpy as np

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


COSTS = {"mu_low": 0.2, "dipole_moment": 1.0}


def two_level_pool(path) -> str:
    """POOL with a cheap level ``mu_low`` = 0.8 x the dipole + noise 0.01 (a known relation)."""
    from psilearn.data import read_structures, write_structures

    frames = read_structures(POOL)
    rng = np.random.default_rng(0)
    for a in frames:
        a.info["mu_low"] = 0.8 * np.asarray(a.info["dipole_moment"], float) + 0.01 * rng.normal(size=3)
    write_structures(str(path), frames, format="extxyz")
    return str(path)


def mf_options(pool: str, **kw):
    return options(**{"pool": pool, "oracle": ["mu_low", "dipole_moment"], "costs": dict(COSTS), "init": 4, "batch": 2,
                      "budget": 10, **kw})


def pairs(log: dict) -> list[tuple[int, str]]:
    return [tuple(p) for r in log["rounds"] for p in r["pairs"]]
