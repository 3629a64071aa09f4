"""Is a slice of a file a fair sample of it? A warning for ``fit data.xyz@:200`` on ordered files.

Files written molecule by molecule (or trajectory by trajectory) are common: the bundled
``molecules.xyz`` holds 75 frames of water, then ammonia, methanol and formaldehyde, so
``molecules.xyz@:200`` has no formaldehyde at all. :func:`slice_warning` compares the slice with the
whole file (which it scans cheaply: element symbols and the comment line of each extxyz frame) and
with random subsets of the same size, and returns one line saying what is wrong and what to do.
"""

from __future__ import annotations

import os
import re
from collections import Counter

import numpy as np

from psilearn.data.io import split_spec

#: info keys that name what a frame is (a molecule, a system); the first one every frame has is used
GROUP_KEYS = ("smiles", "molecule", "mol_id", "system", "formula")
_FAST_SCAN_BYTES = 500 * 2**20  # extxyz files up to this size are scanned for the check
_READ_BYTES = 50 * 2**20  # other formats up to this size are read with ASE


def _formula(symbols: list[str]) -> str:
    c = Counter(symbols)
    return "".join(f"{s}{c[s] if c[s] > 1 else ''}" for s in sorted(c))


def _scan_xyz(path: str) -> tuple[list[str], list[dict], list[int]] | None:
    """(formula, {group key: value}, atom count) per frame of an (ext)xyz file, without parsing
    coordinates; None when the file does not look like one."""
    formulas, groups, sizes = [], [], []
    pattern = re.compile(r"\b(" + "|".join(GROUP_KEYS) + r')=("[^"]*"|\S+)')
    with open(path, errors="replace") as fh:
        while True:
            head = fh.readline()
            if not head.strip():
                break
            try:
                n = int(head.split()[0])
            except ValueError:
                return None
            comment = fh.readline()
            symbols = [fh.readline().split()[:1] for _ in range(n)]
            if n < 1 or any(not s for s in symbols):
                return None
            formulas.append(_formula([s[0] for s in symbols]))
            groups.append({k: v.strip('"') for k, v in pattern.findall(comment)})
            sizes.append(n)
    return formulas, groups, sizes


def frame_labels(path: str) -> tuple[list[str], list[int], str] | None:
    """(label per frame, atom count per frame, what the label is) for a whole file: the value of the
    first of :data:`GROUP_KEYS` that every frame has, else the chemical formula. None when the file is
    too large to check cheaply or cannot be read."""
    size = os.path.getsize(path)
    scanned = None
    if path.endswith((".xyz", ".extxyz")) and size <= _FAST_SCAN_BYTES:
        scanned = _scan_xyz(path)
    if scanned is None:
        if size > _READ_BYTES:
            return None
        from psilearn.data.io import read_structures

        try:
            frames = read_structures(path)
        except ValueError:
            return None
        scanned = ([a.get_chemical_formula() for a in frames],
                   [{k: str(a.info[k]) for k in GROUP_KEYS if k in a.info} for a in frames], [len(a) for a in frames])
    formulas, groups, sizes = scanned
    for key in GROUP_KEYS:
        if groups and all(key in g for g in groups):
            return [g[key] for g in groups], sizes, key
    return formulas, sizes, "composition"


def _coverage(codes: np.ndarray, idx: np.ndarray) -> float:
    """Fraction of all frames whose label occurs among the frames ``idx``."""
    return float(np.isin(codes, np.unique(codes[idx])).mean())


def _tv_distance(codes: np.ndarray, idx: np.ndarray, n_labels: int) -> float:
    """Total-variation distance between the label distribution of ``idx`` and of the whole file."""
    p_all = np.bincount(codes, minlength=n_labels) / len(codes)
    p_sel = np.bincount(codes[idx], minlength=n_labels) / len(idx)
    return float(0.5 * np.abs(p_all - p_sel).sum())


def representativeness(labels, idx, n_random: int = 8, seed: int = 0) -> dict:
    """How well the frames ``idx`` sample ``labels`` (one per frame of the whole file), next to
    ``n_random`` random subsets of the same size: ``coverage`` (fraction of the file's frames whose
    label occurs in the subset), ``tv`` (total-variation distance of the label distributions), and
    ``random_coverage`` (the smallest of the random subsets) and ``random_tv`` (the largest);
    ``unrepresentative`` when the subset covers clearly less than random subsets do, or its label
    distribution is clearly further from the file's."""
    uniq, codes = np.unique(np.asarray([str(x) for x in labels]), return_inverse=True)
    idx = np.asarray(idx, dtype=int)
    rng = np.random.default_rng(seed)
    draws = [rng.choice(len(codes), size=len(idx), replace=False) for _ in range(n_random)]
    out = {
        "n_frames": len(codes), "n_selected": len(idx), "n_labels": len(uniq),
        "n_labels_selected": len(np.unique(codes[idx])),
        "coverage": _coverage(codes, idx), "tv": _tv_distance(codes, idx, len(uniq)),
        "random_coverage": min(_coverage(codes, d) for d in draws),
        "random_tv": max(_tv_distance(codes, d, len(uniq)) for d in draws),
    }
    out["unrepresentative"] = bool(out["coverage"] < out["random_coverage"] - 0.05 or out["tv"] > out["random_tv"] + 0.2)
    return out


def _selection(index: str, n: int) -> np.ndarray | None:
    """Frame indices of an ASE ``@index`` string over ``n`` frames (None for a single frame or a
    selection this check does not understand)."""
    if ":" not in index:
        return None
    try:
        parts = [int(p) if p.strip() else None for p in index.split(":")]
        return np.arange(n)[slice(*parts)]
    except (ValueError, TypeError):
        return None


def slice_warning(spec: str) -> str | None:
    """One line when the ``@slice`` of ``spec`` (e.g. ``data.xyz@:200``) would give an
    unrepresentative training set of the whole file, saying what to do instead; None when there is
    no slice, the slice looks like a fair sample, or the file is too large to check cheaply."""
    path, index = split_spec(str(spec))
    if index in (":", "") or not os.path.isfile(path):
        return None
    found = frame_labels(path)
    if found is None:
        return None
    labels, _, what = found
    idx = _selection(index, len(labels))
    if idx is None or len(idx) < 2 or len(idx) == len(labels):
        return None
    r = representativeness(labels, idx)
    if not r["unrepresentative"]:
        return None
    noun = f"{what!r} values" if what != "composition" else "compositions"
    stride = max(2, round(len(labels) / len(idx)))
    return (f"{spec} looks like an unrepresentative part of an ordered file: its {r['n_selected']} of {r['n_frames']} frames have "
            f"{r['n_labels_selected']} of the file's {r['n_labels']} {noun} (frames like them: {100 * r['coverage']:.0f}% of the file, "
            f"{100 * r['random_coverage']:.0f}% for a random subset); split at random instead (psilearn split {path} --fractions "
            f"0.8,0.1,0.1 -o PREFIX) or take a strided slice ({path}@::{stride})")
