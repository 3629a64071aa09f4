"""Observables of a QEq layer as linear maps of the atomic electronegativities.

For structure s with QEq operator L_s, offset c_s (see :mod:`.qeq`), dipole arm R_s = r - o
(n_s, 3, Angstrom) and label-unit factor f (label units per e*Angstrom):

    charges  q_s  = -L_s chi_s + c_s                   (n_s,)   e
    dipole   mu_s = f R_s^T q_s = -f R_s^T L_s chi_s + f R_s^T c_s      (3,)  label units

so if chi = X w is linear in weights w (X: kernel columns and/or element one-hot columns), every
observation is (design) @ w + offset. :class:`QEqMaps` holds the per-structure operators and
builds those designs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from psilearn.physics.dipole import dipole_arm
from psilearn.physics.params import QEqParams
from psilearn.physics.qeq import QEqSystem


@dataclass
class QEqMaps:
    """Per-structure QEq operators for a list of structures.

    ``systems[s]`` factorised QEq problem, ``arms[s]`` (n_s, 3) Angstrom, ``total_charge`` (n_struct,)
    e, ``offsets`` (n_struct + 1,) start of each structure in the flattened atom list."""

    systems: list[QEqSystem]
    arms: list[np.ndarray]
    total_charge: np.ndarray
    offsets: np.ndarray

    @classmethod
    def build(cls, frames: list[Atoms], total_charge: np.ndarray, params: QEqParams, origin: str = "com",
              periodic_dipole: str = "as_stored", progress: bool = False) -> "QEqMaps":
        from tqdm.auto import tqdm

        systems, arms = [], []
        for a in tqdm(frames, desc="QEq matrices", unit="structure", disable=not progress, leave=False):
            systems.append(QEqSystem.from_atoms(a, params))
            arms.append(dipole_arm(a, origin, periodic_dipole))
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
        return cls(systems, arms, np.asarray(total_charge, float), offsets)

    def __len__(self) -> int:
        return len(self.systems)

    def atoms_of(self, s: int) -> slice:
        return slice(int(self.offsets[s]), int(self.offsets[s + 1]))

    # ---- affine parts ----------------------------------------------------------------------------
    def charge_offsets(self) -> np.ndarray:
        """c (n_atoms_total,) e: charges at chi = 0."""
        return np.concatenate([sys.offset(q) for sys, q in zip(self.systems, self.total_charge)])

    def dipole_offsets(self, factor: float) -> np.ndarray:
        """f R^T c (n_struct, 3) in label units."""
        return np.array([factor * (arm.T @ sys.offset(q)) for sys, arm, q in zip(self.systems, self.arms, self.total_charge)])

    # ---- linear parts ----------------------------------------------------------------------------
    def charge_design(self, x: np.ndarray) -> np.ndarray:
        """-L X (n_atoms_total, k) for per-atom columns ``x`` (n_atoms_total, k)."""
        out = np.empty_like(x, dtype=float)
        for s, sys in enumerate(self.systems):
            sl = self.atoms_of(s)
            out[sl] = -sys.response(x[sl])
        return out

    def dipole_design(self, x: np.ndarray, factor: float) -> np.ndarray:
        """-f R^T L X (n_struct * 3, k), rows ordered (structure, Cartesian x/y/z)."""
        out = np.empty((3 * len(self.systems), x.shape[1]))
        for s, (sys, arm) in enumerate(zip(self.systems, self.arms)):
            out[3 * s : 3 * s + 3] = -factor * (arm.T @ sys.response(x[self.atoms_of(s)]))
        return out

    # ---- evaluation ------------------------------------------------------------------------------
    def charges(self, chi: np.ndarray) -> np.ndarray:
        """QEq charges (n_atoms_total,) e for electronegativities ``chi`` (n_atoms_total,) eV/e."""
        return np.concatenate([sys.charges(chi[self.atoms_of(s)], q) for s, (sys, q) in enumerate(zip(self.systems, self.total_charge))])

    def dipoles(self, q: np.ndarray, factor: float = 1.0) -> np.ndarray:
        """f R^T q (n_struct, 3): dipoles in label units (e*Angstrom for f = 1)."""
        return np.array([factor * (arm.T @ q[self.atoms_of(s)]) for s, arm in enumerate(self.arms)])
