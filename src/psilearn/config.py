"""YAML configuration: ``soap:`` (descriptor) and ``model:`` (estimator) sections.

Example ``options.yaml``::

    soap:  {cutoff: 5.0, max_radial: 6, max_angular: 4, density_width: 0.3}
    model: {zeta: 2, n_sparse: 400, sparse_method: fps, regularization: ml}
"""

from __future__ import annotations

from pathlib import Path

import yaml

SECTIONS = ("soap", "model", "nn", "nn_train")


def load_config(path: str | None) -> dict:
    """Read and validate the top level of a YAML options file (None -> defaults)."""
    if not path:
        return {s: {} for s in SECTIONS}
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file {path} not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with sections {SECTIONS}")
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise ValueError(f"{path}: unknown sections {sorted(unknown)}; known: {list(SECTIONS)}")
    return {s: dict(data.get(s) or {}) for s in SECTIONS}
