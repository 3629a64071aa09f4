"""Small molecules and crystals for the long-range tests (positions in Angstrom)."""

from __future__ import annotations

import numpy as np
from ase import Atoms


def random_molecule(rng: np.random.Generator, n_min: int = 4, n_max: int = 8, elements=("H", "C", "N", "O"),
                    min_dist: float = 0.95, half_box: float = 1.8) -> Atoms:
    """A random, genuinely 3D molecule-like cluster without close contacts."""
    while True:
        n = int(rng.integers(n_min, n_max + 1))
        pos: list[np.ndarray] = []
        for _ in range(4000):
            p = rng.uniform(-half_box, half_box, 3)
            if all(np.linalg.norm(p - q) > min_dist for q in pos):
                pos.append(p)
            if len(pos) == n:
                break
        if len(pos) < n:
            continue
        x = np.array(pos)
        if np.linalg.svd(x - x.mean(0), compute_uv=False)[-1] > 0.3:
            return Atoms(list(rng.choice(list(elements), size=n)), positions=x)


def molecules(seed: int, n: int, **kw) -> list[Atoms]:
    """n random molecules; the first ones contain every element so all are seen in training."""
    rng = np.random.default_rng(seed)
    els = kw.get("elements", ("H", "C", "N", "O"))
    out = []
    for i in range(n):
        a = random_molecule(rng, **kw)
        if i < len(els):
            a.symbols[0] = els[i]
        out.append(a)
    return out


def ammonia_borane() -> Atoms:
    """H3N-BH3 (N-B 1.66 A), C3v along z."""
    pos = [[0, 0, 0], [0, 0, 1.66]]
    sym = ["N", "B"]
    for k in range(3):
        t = 2 * np.pi * k / 3
        pos.append([0.95 * np.cos(t), 0.95 * np.sin(t), -0.35])
        sym.append("H")
        pos.append([1.15 * np.cos(t + np.pi / 3), 1.15 * np.sin(t + np.pi / 3), 2.05])
        sym.append("H")
    return Atoms(sym, positions=pos)


# ---- synthetic QEq truth -------------------------------------------------------------------------
CHI0 = {1: -1.0, 6: 0.0, 7: 1.0, 8: 2.0}  # eV/e
CHI1 = {1: 0.6, 6: -0.8, 7: 0.5, 8: -1.0}


def true_chi(atoms: Atoms) -> np.ndarray:
    """A local, smooth, invariant electronegativity (eV/e): element constant + element-weighted
    Gaussian coordination number (range ~1.5 A, far inside the SOAP cutoff)."""
    d = np.linalg.norm(atoms.positions[:, None] - atoms.positions[None], axis=-1)
    cn = np.exp(-0.5 * (d / 1.2) ** 2)
    np.fill_diagonal(cn, 0.0)
    w = np.array([CHI1[int(z)] for z in atoms.numbers])
    return np.array([CHI0[int(z)] for z in atoms.numbers]) + 0.8 * cn @ (1.0 + 0.3 * w) * w


def label_qeq(frames: list[Atoms], charges_key: str = "q", dipole_key: str = "mu") -> list[Atoms]:
    """Charges (e) and dipoles (e*Angstrom, about the centre of mass) from the QEq truth."""
    from psilearn.physics import equilibrate

    out = []
    for a in frames:
        b = a.copy()
        res = equilibrate(b, true_chi(b))
        b.arrays[charges_key] = res.charges
        b.info[dipole_key] = res.dipole
        out.append(b)
    return out


def with_charges(frames: list[Atoms], charges=(0, 1, -1)) -> list[Atoms]:
    """Assign total charges cyclically (multiplicity left to its default)."""
    out = []
    for i, a in enumerate(frames):
        b = a.copy()
        b.info["charge"] = charges[i % len(charges)]
        out.append(b)
    return out
