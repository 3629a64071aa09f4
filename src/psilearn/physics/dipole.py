"""Dipoles from atomic charges: origin conventions and units.

mu = sum_i q_i (r_i - o), charges in e, positions in Angstrom, so mu is in e*Angstrom before
conversion to the units of the labels.

Origin o (``origin=``):
  * ``"com"`` (default): centre of mass (ASE's isotope-averaged masses); the convention of
    psilearn's PySCF labeler and of most quantum-chemistry codes;
  * ``"nuclear_charge"``: centre of nuclear charge sum_i Z_i r_i / sum_i Z_i;
  * ``"zero"``: the Cartesian origin of the input coordinates (tblite's convention for ions).
For a neutral structure (sum q = 0, which QEq enforces exactly) the dipole does not depend on o.
For ions it does, by Q (o - o'), so reference labels and model must use the same origin.

Periodic cells: the dipole of a cell is defined only modulo the polarisation quantum Q_i R for
lattice vectors R (moving one charge by a lattice vector changes sum q r but not the crystal).
psilearn uses the positions *as stored* (not wrapped into the cell), so a trajectory with
unwrapped coordinates, or molecules kept whole, gives a continuous dipole; with
``periodic_dipole="molecules"`` atoms are first regrouped into whole molecules (bonded by
covalent radii, minimum image, each molecule anchored at its first atom), the convention of
Wannier-centre molecular dipoles such as DeePMD's water sets.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.data.units import known_units, to_ase_factor

ORIGINS = ("com", "nuclear_charge", "zero")
PERIODIC_DIPOLES = ("as_stored", "molecules")


def dipole_unit_factor(units: str) -> float:
    """Label units per e*Angstrom for a dipole unit name (``e*A``, ``e*Bohr``/``au``, ``D``/``Debye``),
    from psilearn's one unit table (:mod:`psilearn.data.units`).

    Raises ValueError for anything else: QEq needs to know the units of dipole labels, because
    the charges are in e and the positions in Angstrom."""
    try:
        return 1.0 / to_ase_factor("dipole", units)
    except ValueError:
        raise ValueError(f"unknown dipole units {units!r}: QEq needs the units of the dipole labels; "
                         f"pass --units e*Bohr (atomic units, as written by `psilearn label`), e*A or Debye "
                         f"(known: {', '.join(known_units('dipole'))})") from None


def dipole_origin(atoms: Atoms, origin: str = "com") -> np.ndarray:
    """The origin (3,) in Angstrom for the named convention (see module docstring)."""
    if origin == "com":
        return atoms.get_center_of_mass()
    if origin == "nuclear_charge":
        z = atoms.numbers.astype(float)
        return z @ atoms.positions / z.sum()
    if origin == "zero":
        return np.zeros(3)
    raise ValueError(f"unknown dipole origin {origin!r}; choose one of {', '.join(ORIGINS)}")


def molecule_positions(atoms: Atoms, scale: float = 1.3) -> np.ndarray:
    """Positions (n, 3) with every molecule made whole across periodic boundaries.

    Atoms i, j are bonded when |r_ij| (minimum image) < scale * (r_cov_i + r_cov_j); each connected
    component is unwrapped by a breadth-first walk from its lowest-index atom, which keeps its
    stored position."""
    from ase.neighborlist import natural_cutoffs, neighbor_list
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, connected_components

    pos = atoms.positions.copy()
    if not np.any(atoms.pbc):
        return pos
    i, j, vec = neighbor_list("ijD", atoms, natural_cutoffs(atoms, mult=scale))
    n = len(atoms)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    bond = {(int(a), int(b)): v for a, b, v in zip(i, j, vec)}
    n_comp, label = connected_components(graph, directed=False)
    for comp in range(n_comp):
        root = int(np.flatnonzero(label == comp)[0])
        order, pred = breadth_first_order(graph, root, directed=False)
        for k in order[1:]:
            p = int(pred[k])
            pos[k] = pos[p] + bond[(p, int(k))]
    return pos


def dipole_arm(atoms: Atoms, origin: str = "com", periodic_dipole: str = "as_stored") -> np.ndarray:
    """r_i - o (n, 3) in Angstrom: the matrix with mu = arm^T q."""
    if periodic_dipole not in PERIODIC_DIPOLES:
        raise ValueError(f"unknown periodic dipole convention {periodic_dipole!r}; choose {', '.join(PERIODIC_DIPOLES)}")
    if periodic_dipole == "molecules" and np.any(atoms.pbc):
        work = atoms.copy()
        work.positions = molecule_positions(atoms)
        return work.positions - dipole_origin(work, origin)
    return atoms.positions - dipole_origin(atoms, origin)
