"""Synthetic molecules, geometry-derived labels of known symmetry, and O(3) helpers for the core tests."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.features import SoapConfig
from psilearn.models import SAGPRConfig

# Small descriptor / model: enough for symmetry tests, fast on 2 cores.
SMALL_SOAP = dict(cutoff=4.0, max_radial=4, max_angular=3)
SMALL_MODEL = dict(n_sparse=20)


def small_soap() -> SoapConfig:
    return SoapConfig(**SMALL_SOAP)


def small_model(**kw) -> SAGPRConfig:
    return SAGPRConfig(**{**SMALL_MODEL, **kw})


WEIGHT = {1: 0.35, 6: -0.8, 7: 0.6, 8: 1.3}
WEIGHT2 = {1: 1.1, 6: 0.4, 7: -0.3, 8: -0.7}


def random_molecule(rng: np.random.Generator, n_min: int = 4, n_max: int = 7, elements=("H", "C", "O"),
                    min_dist: float = 0.9, half_box: float = 1.7) -> Atoms:
    """A random, non-degenerate (non-planar, no close contacts) molecule of n_min..n_max atoms."""
    while True:
        n = int(rng.integers(n_min, n_max + 1))
        symbols = list(rng.choice(list(elements), size=n))
        pos: list[np.ndarray] = []
        tries = 0
        while len(pos) < n and tries < 2000:
            tries += 1
            p = rng.uniform(-half_box, half_box, 3)
            if all(np.linalg.norm(p - q) > min_dist for q in pos):
                pos.append(p)
        if len(pos) < n:
            continue
        x = np.array(pos)
        sv = np.linalg.svd(x - x.mean(0), compute_uv=False)
        if sv[-1] > 0.3:  # genuinely three-dimensional
            return Atoms(symbols, positions=x)


def molecules(seed: int, n: int, **kw) -> list[Atoms]:
    """n random molecules; the first three contain H, C and O so every element is always seen."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a = random_molecule(rng, **kw)
        if i < 3:
            a.symbols[0] = "HCO"[i]
        out.append(a)
    return out


def _cutoff(d: np.ndarray, rc: float = 3.5) -> np.ndarray:
    return np.where(d < rc, 0.5 * (1 + np.cos(np.pi * d / rc)), 0.0)


def structure_vectors(a: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centred positions r (n, 3) and per-atom weights w, w2 (n,)."""
    r = a.positions - a.positions.mean(0)
    w = np.array([WEIGHT[z] for z in a.numbers])
    w2 = np.array([WEIGHT2[z] for z in a.numbers])
    return r, w, w2


def neighbour_vectors(a: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Per atom: two independent, smoothly weighted sums of neighbour vectors, (n, 3) each."""
    d = a.positions[None, :, :] - a.positions[:, None, :]  # d[i, j] = r_j - r_i
    dist = np.linalg.norm(d, axis=-1)
    fc = _cutoff(dist) * (dist > 0)
    w = np.array([WEIGHT[z] for z in a.numbers])
    w2 = np.array([WEIGHT2[z] for z in a.numbers])
    u = np.einsum("ij,j,ijk->ik", fc, w, d)
    v = np.einsum("ij,j,ijk->ik", fc * np.exp(-0.3 * dist**2), w2, d)
    return u, v


def structure_label(a: Atoms, kind: str) -> np.ndarray:
    """Per-structure label of a given symmetry kind, Cartesian, flattened row-major."""
    r, w, w2 = structure_vectors(a)
    a_vec = (w[:, None] * r).sum(0)
    b_vec = (w2[:, None] * r * (1 + (r**2).sum(1, keepdims=True))).sum(0)
    if kind == "scalar":
        return np.array([float((w * (r**2).sum(1)).sum())])
    if kind == "vector":
        return a_vec
    if kind == "axial":  # a genuine pseudo-vector: cross product of two polar vectors
        return np.cross(a_vec, b_vec)
    if kind in ("sym2", "sym2_traceless"):
        t = np.einsum("i,ia,ib->ab", w, r, r)
        if kind == "sym2_traceless":
            t = t - np.trace(t) / 3 * np.eye(3)
        return t.ravel()
    if kind == "gen2":  # symmetric part plus an antisymmetric a x b part
        return (np.einsum("i,ia,ib->ab", w, r, r) + np.outer(a_vec, b_vec)).ravel()
    if kind == "gen3":
        return (np.einsum("i,ia,ib,ic->abc", w, r, r, r) + np.einsum("a,b,c->abc", a_vec, a_vec, b_vec)).ravel()
    if kind == "sym3":
        return np.einsum("i,ia,ib,ic->abc", w, r, r, r).ravel()
    raise KeyError(kind)


def atom_label(a: Atoms, kind: str) -> np.ndarray:
    """Per-atom label (n_atoms, 3**rank) built from each atom's neighbours."""
    u, v = neighbour_vectors(a)
    if kind == "scalar":
        return ((u**2).sum(1) + 0.5 * (u * v).sum(1))[:, None]
    if kind == "vector":
        return u
    if kind == "axial":
        return np.cross(u, v)
    if kind in ("sym2", "sym2_traceless"):
        t = np.einsum("na,nb->nab", u, u) + np.einsum("na,nb->nab", v, v)
        if kind == "sym2_traceless":
            t = t - np.einsum("naa->n", t)[:, None, None] / 3 * np.eye(3)
        return t.reshape(len(a), 9)
    if kind == "gen2":
        return (np.einsum("na,nb->nab", u, v) + np.einsum("na,nb->nab", u, u)).reshape(len(a), 9)
    if kind == "gen3":
        return np.einsum("na,nb,nc->nabc", u, u, v).reshape(len(a), 27)
    if kind == "sym3":
        return (np.einsum("na,nb,nc->nabc", u, u, u) + np.einsum("na,nb,nc->nabc", v, v, v)).reshape(len(a), 27)
    raise KeyError(kind)


def label_frames(frames: list[Atoms], key: str, kind: str, per: str) -> list[Atoms]:
    out = []
    for a in frames:
        b = a.copy()
        if per == "structure":
            val = structure_label(b, kind)
            b.info[key] = float(val[0]) if val.size == 1 else val
        else:
            val = atom_label(b, kind)
            b.arrays[key] = val[:, 0] if val.shape[1] == 1 else val
        out.append(b)
    return out


def level_frames(base: list[Atoms], key: str, lo: list[int], hi: list[int], hi_value, names=("gfn2", "pbe0")) -> list[Atoms]:
    """Two synthetic fidelity levels from labelled ``base`` frames: copies of ``base[lo]`` with
    ``info['level'] = names[0]``, then copies of ``base[hi]`` with ``info[key] = hi_value(i, frame)`` and
    ``info['level'] = names[1]``."""
    out = []
    for i in lo:
        a = base[i].copy()
        a.info["level"] = names[0]
        out.append(a)
    for i in hi:
        a = base[i].copy()
        a.info[key] = hi_value(i, a)
        a.info["level"] = names[1]
        out.append(a)
    return out


# ---- O(3) ------------------------------------------------------------------------------------------
def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def cartesian_operator(q: np.ndarray, rank: int, parity: int = 1) -> np.ndarray:
    """Matrix acting on row-major flattened rank-`rank` tensors: Q x Q x ... (times det Q if axial)."""
    m = np.ones((1, 1))
    for _ in range(rank):
        m = np.kron(m, q)
    if parity == -1:
        m = m * np.linalg.det(q)
    return m


def transform_frames(frames: list[Atoms], q: np.ndarray, shift=(0.0, 0.0, 0.0)) -> list[Atoms]:
    """Copies with positions x -> q x + shift and the cell's lattice vectors rotated with them (a
    molecule's all-zero cell stays zero)."""
    out = []
    for a in frames:
        b = a.copy()
        b.set_cell(a.cell[:] @ q.T, scale_atoms=False)
        b.positions = a.positions @ q.T + np.asarray(shift)
        out.append(b)
    return out


def rel_dev(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b| (with a floor to avoid dividing by zero)."""
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))
