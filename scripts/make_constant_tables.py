"""Compute the constants psilearn ships (src/psilearn/tables/constants.npz) with e3nn and featomic.

    python scripts/make_constant_tables.py

Writes, with the library versions that made them (see psilearn._tables):
* cartesian/<formula>/{to_irreps,to_cartesian,blocks}: e3nn CartesianTensor bases of common formulas;
* wigner3j/<l1>/<l2>/<l>: e3nn real Wigner 3j symbols for l1, l2 <= L12 and l <= L;
* featomic_to_e3nn/<l>: the measured featomic -> e3nn harmonic rotations for l <= L12.
tests/architecture/test_constant_tables.py recomputes every entry and compares.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import numpy as np

from psilearn._tables import TABLE
from psilearn.features.basis import measure_featomic_to_e3nn
from psilearn.features.lsoap import e3nn_wigner3j
from psilearn.targets.cartesian import e3nn_cartesian_basis

#: index formulas declared in the README, docs and benchmarks (and their general forms)
FORMULAS = ("i", "ij", "ij=ji", "ijk", "ijk=jik", "ijk=ikj", "ijk=jik=ikj", "ijkl", "ijkl=jikl=klij",
            "ijkl=jikl=ijlk=klij", "ijkl=jikl=ikjl=ijlk")
L12 = 8  # largest density-expansion degree (SOAP max_angular) covered
L = 8  # largest coupled degree covered


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    for f in FORMULAS:
        b = e3nn_cartesian_basis(f)
        arrays[f"cartesian/{f}/to_irreps"] = b.to_irreps
        arrays[f"cartesian/{f}/to_cartesian"] = b.to_cartesian
        arrays[f"cartesian/{f}/blocks"] = np.array([[x.l, x.p, x.start] for x in b.blocks], dtype=np.int64)
    for l1 in range(L12 + 1):
        for l2 in range(L12 + 1):
            for l in range(abs(l1 - l2), min(l1 + l2, L) + 1):
                arrays[f"wigner3j/{l1}/{l2}/{l}"] = e3nn_wigner3j(l1, l2, l)
    for l, u in enumerate(measure_featomic_to_e3nn(L12)):
        arrays[f"featomic_to_e3nn/{l}"] = u
    versions = {p: metadata.version(p) for p in ("e3nn", "featomic")}
    arrays["versions"] = np.frombuffer(json.dumps(versions).encode(), dtype=np.uint8)
    Path(TABLE).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(TABLE, **arrays)
    print(f"wrote {TABLE}: {len(arrays)} arrays, {Path(TABLE).stat().st_size / 1024:.0f} kB, {versions}")


if __name__ == "__main__":
    main()
