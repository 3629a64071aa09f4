"""Global electronic state of a structure: total charge and spin multiplicity from ``atoms.info``.

Conventions (the same as the labeling engine, :mod:`psilearn.label`):

* ``atoms.info["charge"]``: total charge in units of e (integer; default 0).
* ``atoms.info["multiplicity"]``: 2S+1 (integer >= 1; default 1 for an even and 2 for an odd
  electron count).

A charge/multiplicity pair that cannot hold for the structure's electron count (e.g. a neutral
CH3 radical declared a singlet, or a charge removing every electron) is refused with a
:class:`~psilearn.data.DataError` naming the frame.

The state enters models in two ways: the QEq layer takes the total charge as the exact constraint
sum_i q_i = Q, and kernel models may multiply their kernels by :func:`state_kernel`, a Gaussian
kernel on the state vector s = (Q, n_unpaired) so that a cation, an anion and a radical of the
same geometry are different inputs.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.data.electronic_state import checked_electronic_state
from psilearn.data.errors import frame_location


def charge_and_multiplicity(atoms: Atoms, index: int = 0) -> tuple[int, int]:
    """Validated (total charge [e], multiplicity 2S+1) of one structure; DataError naming the frame
    for a state impossible for its electron count (see :mod:`psilearn.data.electronic_state`)."""
    charge, mult, _ = checked_electronic_state(atoms, frame_location(atoms, index), allow_no_electrons=True)
    return charge, mult


def structure_states(frames: list[Atoms]) -> np.ndarray:
    """State vectors s = (Q, n_unpaired) of each structure, shape (n_structures, 2), float.

    Q is the total charge (e), n_unpaired = multiplicity - 1."""
    out = np.zeros((len(frames), 2))
    for i, a in enumerate(frames):
        q, m = charge_and_multiplicity(a, i)
        out[i] = (q, m - 1)
    return out


def total_charges(frames: list[Atoms]) -> np.ndarray:
    """Validated total charge of each structure (e), shape (n_structures,)."""
    return structure_states(frames)[:, 0]


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
STATE_MODES = ("none", "charge", "charge+spin")


def state_vectors(frames: list[Atoms], mode: str) -> np.ndarray:
    """(n_structures, 2) state vectors for ``mode``: ``charge`` -> (Q, 0), ``charge+spin`` ->
    (Q, n_unpaired). Validates charge and multiplicity in both modes."""
    if mode not in STATE_MODES[1:]:
        raise ValueError(f"global_state must be one of {STATE_MODES}, got {mode!r}")
    s = structure_states(frames)
    if mode == "charge":
        s[:, 1] = 0.0
    return s


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
