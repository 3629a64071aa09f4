"""Paths to the shared reference data (skipped with a clear message where absent) and small helpers."""

import os

import pytest

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
XANES = os.path.normpath(os.path.join(DATA, "xanes_fe"))
DEEPMD_DOS = os.path.normpath(os.path.join(DATA, "deepmd_sets", "dos", "data", "heat-221"))


def require(path: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"reference data {path} not present")
