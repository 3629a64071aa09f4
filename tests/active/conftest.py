"""Fixtures shared by the active-learning tests."""

from __future__ import annotations

import pytest

from psilearn.active import run_active

from ._common import mf_options, two_level_pool


@pytest.fixture(scope="package")
def mf_run(tmp_path_factory):
    """One two-level cost-aware run (oracles mu_low and dipole_moment), shared read-only: (dir, pool, model, log)."""
    tmp = tmp_path_factory.mktemp("mf")
    pool = two_level_pool(tmp / "pool.xyz")
    model, log = run_active(mf_options(pool), output=str(tmp / "m.model"))
    return tmp, pool, model, log
