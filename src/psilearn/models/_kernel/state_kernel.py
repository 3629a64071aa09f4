"""Kernels on the global electronic state (total charge Q, unpaired electrons): a Gaussian kernel
on s = (Q, n_unpaired) that multiplies the structural kernels, so that a cation, an anion and a
radical of one geometry are different inputs. The state vectors themselves come from
:mod:`psilearn.data.electronic_state`."""

from __future__ import annotations

import numpy as np


def state_kernel(sa: np.ndarray, sb: np.ndarray, width: float) -> np.ndarray:
    """Gaussian kernel between state vectors, exp(-|sa - sb|^2 / (2 width^2)).

    ``sa`` (n, 2), ``sb`` (m, 2) -> (n, m); equal states give exactly 1. ``width`` in units of
    e (charge) and electrons (spin); a width of 1 correlates a neutral molecule and its cation
    by exp(-1/2) = 0.61."""
    if width <= 0:
        raise ValueError("state kernel width must be positive")
    d2 = np.sum((np.asarray(sa)[:, None, :] - np.asarray(sb)[None, :, :]) ** 2, axis=-1)
    return np.exp(-0.5 * d2 / width**2)


def scale_kernel_by_state(phi: np.ndarray, sample_states: np.ndarray, sparse_states: np.ndarray, d: int, width: float) -> np.ndarray:
    """Multiply a sample-sparse kernel ``phi`` (n*d, M*d), rows ordered (sample, m-component) and
    columns (sparse environment, m-component), by the state kernel between each sample's state
    (``sample_states`` (n, 2)) and each sparse environment's (``sparse_states`` (M, 2)).

    Valid for per-structure sums too, because every atom of a structure shares its state."""
    k = state_kernel(sample_states, sparse_states, width)  # (n, M)
    return phi * np.repeat(np.repeat(k, d, axis=0), d, axis=1)


# ---- global state for local kernel models (SA-GPR: SAGPRConfig.global_state) -----------------------
#: key of the sparse environments' states in a kernel model's ``sparse`` dict (not a real channel)
SPARSE_STATE_KEY = (-1, 0)


def sparse_states(feats, states: np.ndarray, chosen: dict) -> dict:
    """{Z: (M_Z, 2)} states of the chosen sparse environments (``chosen[Z]`` indices into the
    atoms of element Z)."""
    return {z: states[feats.structure[feats.index[z][idx]]] for z, idx in chosen.items()}


def apply_state_kernel(phi: np.ndarray, kmm: list[np.ndarray], sample_states: np.ndarray, sparse: dict, d: int,
                       width: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Multiply a channel's kernels by the state kernel: ``phi`` (n*d, M*d) with ``sample_states``
    (n, 2) against the sparse states ``sparse`` {Z: (M_Z, 2)} (species sorted, as in the kernel
    columns), and the K_MM blocks ``kmm`` (one per element). Returns the new (phi, kmm)."""
    species = sorted(sparse)
    all_sparse = np.concatenate([sparse[z] for z in species]) if species else np.zeros((0, 2))
    phi = scale_kernel_by_state(phi, sample_states, all_sparse, d, width)
    out = []
    for block, z in zip(kmm, species):
        k = state_kernel(sparse[z], sparse[z], width)
        out.append(block * np.repeat(np.repeat(k, d, axis=0), d, axis=1))
    return phi, out
