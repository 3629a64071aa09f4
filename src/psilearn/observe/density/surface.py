"""Merz-Kollman-style ESP points on scaled van der Waals surfaces.

Every atom i carries one sphere per scale k (default 1.4, 1.6, 1.8, 2.0) of radius k r_i, r_i the van
der Waals radius of ASE's ``ase.data.vdw_radii`` (Bondi, J. Phys. Chem. 68, 441 (1964), where Bondi
gives one; otherwise Mantina et al., J. Phys. Chem. A 113, 5806 (2009) and the other sources ASE
lists). On each sphere round(4 pi (k r_i)^2 density) points (at least 1; ``density`` in points per
Angstrom^2) are spread by the golden-angle (Fibonacci) spiral; a point of layer k is dropped when it
lies inside another atom's sphere of the same layer (distance < k r_j). So the points of layer k lie on
the outer envelope of the k-scaled spheres, and all points are outside every atom's 1.4 r_j sphere
(the smallest default scale). This is the point set of Singh and Kollman, J. Comput. Chem. 5, 129
(1984) and Besler, Merz and Kollman, J. Comput. Chem. 11, 431 (1990) with a spiral instead of their
icosahedral tessellation; the orientation of the spiral is fixed in the lab frame (like theirs, the
set is not rotation invariant).
"""

from __future__ import annotations

import numpy as np
from ase.data import chemical_symbols, vdw_radii

from psilearn.errors import DataError

#: the Merz-Kollman scales of the van der Waals radii
DEFAULT_SCALES = (1.4, 1.6, 1.8, 2.0)
#: points per Angstrom^2 of each sphere (Merz-Kollman's usual 1; RESP fits often use 6)
DEFAULT_DENSITY = 1.0


def unit_sphere(n: int) -> np.ndarray:
    """``n`` nearly uniform unit vectors (n, 3): the golden-angle spiral, z from 1 - 1/n to -1 + 1/n."""
    j = np.arange(n) + 0.5
    z = 1.0 - 2.0 * j / n
    rho = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    phi = np.pi * (3.0 - np.sqrt(5.0)) * np.arange(n)
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=1)


def vdw_radius(z: int) -> float:
    """ASE's van der Waals radius of element ``z`` (Angstrom); DataError where ASE has none."""
    r = float(vdw_radii[z]) if z < len(vdw_radii) else float("nan")
    if not np.isfinite(r) or r <= 0:
        raise DataError(f"no van der Waals radius for {chemical_symbols[z]} in ase.data.vdw_radii: no ESP surface points for it")
    return r


def surface_points(atoms, scales=DEFAULT_SCALES, density: float = DEFAULT_DENSITY) -> tuple[np.ndarray, np.ndarray]:
    """(points (n, 3) Angstrom, layer index (n,) into ``scales``) on the scaled van der Waals
    surfaces of ``atoms`` (see the module docstring); ``density`` points per Angstrom^2 of sphere."""
    scales = [float(k) for k in scales]
    if not scales or min(scales) <= 0 or density <= 0:
        raise DataError(f"ESP surface: scales must be positive and the density > 0 (got {scales}, {density})")
    radii = np.array([vdw_radius(int(z)) for z in atoms.numbers])
    pos = atoms.positions
    points, layers = [], []
    for k, scale in enumerate(scales):
        for i in range(len(atoms)):
            big = scale * radii[i]
            sphere = pos[i] + big * unit_sphere(max(1, int(round(4 * np.pi * big * big * density))))
            dist = np.linalg.norm(sphere[:, None, :] - pos[None, :, :], axis=-1)
            inside = dist < scale * radii[None, :] * (1 - 1e-12)
            inside[:, i] = False
            keep = sphere[~inside.any(axis=1)]
            points.append(keep)
            layers.append(np.full(len(keep), k))
    return np.concatenate(points), np.concatenate(layers)
