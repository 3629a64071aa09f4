"""Paths to the shared reference data (skipped with a clear message where absent) and small helpers."""

import os

import pytest

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
XANES = os.path.normpath(os.path.join(DATA, "xanes_fe"))
DEEPMD_DOS = os.path.normpath(os.path.join(DATA, "deepmd_sets", "dos", "data", "heat-221"))


def require(path: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"reference data {path} not present")


def two_level_orbitals(n: int, seed: int, high: str = "gfn2", low: str = "gfn1", dos=None) -> tuple[list, list]:
    """``n`` perturbed H2O, CH4, NH3 (in turn) labelled with the ``orbitals`` of two xTB methods (``dos``: the
    labelers' DOS grid, or their default): (the ``high`` level's frames, the ``low`` level's)."""
    import numpy as np
    from ase.build import molecule

    from psilearn.label import make_labeler

    kw = {} if dos is None else {"dos": dos}
    rng = np.random.default_rng(seed)
    g_high, g_low = make_labeler(high, "orbitals", **kw), make_labeler(low, "orbitals", **kw)
    out_high, out_low = [], []
    for k in range(n):
        a = molecule(("H2O", "CH4", "NH3")[k % 3])
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        out_high.append(g_high.label(a))
        out_low.append(g_low.label(a))
    return out_high, out_low
