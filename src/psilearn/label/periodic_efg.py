"""Electric field gradients at the nuclei of a crystal from an all-electron periodic density matrix.

Why by hand: pyscf-properties' ``pyscf.pbc.prop.efg`` cannot run on an all-electron periodic SCF
with PySCF 2.14 (it needs a plane-wave mesh of the all-electron density, ~10^10 points for a
2-atom cell, and fails outright with Gaussian density fitting; docs/magnetic.md). Here the field
gradient is split the Ewald way, 1/r = erfc(w r)/r + erf(w r)/r:

* short range, in real space: the nuclei of every lattice image within reach (analytic Hessian of
  erfc(w r)/r) and the electrons through Gaussian integrals of d_i d_j erfc(w|r - R_C|)/|r - R_C|
  over the AO pairs of a cluster of lattice images around the nucleus C (libcint's range-separated
  three-centre integrals against a point charge: ``int3c2e_ipip1`` + ``int3c2e_ipvip1``);
* long range, in reciprocal space: -(4 pi / Omega) sum_{G != 0} G_i G_j / G^2 exp(-G^2 / 4w^2)
  q(G) exp(i G.R_C), with q(G) the Fourier transform of nuclei minus electrons in the cell, the
  electronic part exact from the AO-pair transforms (``pyscf.pbc.df.ft_ao.ft_aopair_kpts``).

The cell is neutral, so the G = 0 term vanishes and the sum has no shape-dependent term (a uniform
polarisation gives a uniform field, no field gradient). Isotropic pieces (the contact term and the
smooth self-term of C's own nucleus) are removed with the trace. The result does not depend on
w (tested to 1e-6 relative): w only moves work between the two sums.

Lattice density matrix convention (checked against a Gamma-point supercell with a 3-point k-mesh,
tests/label/test_periodic_efg.py): the coefficient of phi_i(r) phi_j(r - T) in the density is
P_ij(T) = (1/N_k) sum_k exp(-i k.T) D^k_ij, with PySCF's k-point density matrices D^k.
"""

from __future__ import annotations

import numpy as np

#: Neglected contributions are below this (relative to O(1) atomic-unit integrands).
PRECISION = 1e-10
#: Ewald splitting parameter (1/Bohr); any value gives the same tensor.
OMEGA = 1.0


def _symmetric_grid(n: list[int]) -> np.ndarray:
    """Integer vectors (m1, m2, m3) with |m_i| <= n_i, (prod(2 n_i + 1), 3)."""
    return np.array(np.meshgrid(*[np.arange(-m, m + 1) for m in n], indexing="ij")).reshape(3, -1).T


def _translations(cell, radius: float) -> np.ndarray:
    """Lattice vectors T (Bohr), (n_T, 3), covering every image within ``radius`` of the home cell."""
    a = cell.lattice_vectors()
    inv = np.linalg.inv(a)
    return _symmetric_grid([int(np.ceil(radius * np.linalg.norm(inv[:, i]))) + 1 for i in range(3)]) @ a


def _reciprocal_vectors(cell, gmax: float) -> np.ndarray:
    """Reciprocal lattice vectors G (1/Bohr) with 0 < |G| < gmax, (n_G, 3)."""
    a = cell.lattice_vectors()
    b = 2 * np.pi * np.linalg.inv(a).T
    g = _symmetric_grid([int(np.ceil(gmax * np.linalg.norm(a[i]) / (2 * np.pi))) + 1 for i in range(3)]) @ b
    g2 = np.einsum("gx,gx->g", g, g)
    return g[(g2 > 1e-12) & (g2 < gmax**2)]


def _atom_extents(cell, precision: float) -> np.ndarray:
    """Per atom, the distance (Bohr) at which its most diffuse primitive exp(-a r^2) falls below ``precision``."""
    ext = np.zeros(cell.natm)
    for b in range(cell.nbas):
        ia = cell.bas_atom(b)
        ext[ia] = max(ext[ia], float(np.sqrt(-np.log(precision) / cell.bas_exp(b).min())))
    return ext


def erfc_hessian(x: np.ndarray, omega: float) -> np.ndarray:
    """d_i d_j [erfc(w r) / r] at displacements ``x`` (Bohr), (n, 3) -> (n, 3, 3)."""
    from scipy.special import erfc

    r = np.linalg.norm(x, axis=1)
    e = erfc(omega * r)
    g = 2 * omega / np.sqrt(np.pi) * np.exp(-((omega * r) ** 2))
    d1 = -(e / r**2 + g / r)  # f'(r)
    d2 = 2 * e / r**3 + g * (2 / r**2 + 2 * omega**2)  # f''(r)
    u = x / r[:, None]
    return (d2 - d1 / r)[:, None, None] * np.einsum("ni,nj->nij", u, u) + (d1 / r)[:, None, None] * np.eye(3)


def _long_range(cell, kpts: np.ndarray, dm: np.ndarray, omega: float, precision: float) -> np.ndarray:
    """Reciprocal-space part (a.u.), (n_atoms, 3, 3)."""
    from pyscf.pbc.df.ft_ao import ft_aopair_kpts

    coords, z = cell.atom_coords(), cell.atom_charges().astype(float)
    gv = _reciprocal_vectors(cell, 2 * omega * np.sqrt(-np.log(precision)))
    g2 = np.einsum("gx,gx->g", gv, gv)
    rho = np.zeros(len(gv), dtype=complex)
    for start in range(0, len(gv), 2000):  # chunks keep (n_k, chunk, nao, nao) small
        ft = ft_aopair_kpts(cell, gv[start:start + 2000], kptjs=kpts)
        rho[start:start + 2000] = np.einsum("kgij,kji->g", ft, dm) / len(kpts)
    q = np.exp(-1j * gv @ coords.T) @ z - rho  # charge of the cell: nuclei minus electrons
    weight = 4 * np.pi / cell.vol * np.exp(-g2 / (4 * omega**2)) / g2
    out = np.zeros((cell.natm, 3, 3))
    for c in range(cell.natm):
        phase = (q * np.exp(1j * gv @ coords[c])).real * weight
        out[c] = -np.einsum("g,gi,gj->ij", phase, gv, gv)
    return out


def _short_range_nuclei(cell, omega: float, rsr: float) -> np.ndarray:
    coords, z = cell.atom_coords(), cell.atom_charges().astype(float)
    shifts = _translations(cell, rsr)
    out = np.zeros((cell.natm, 3, 3))
    for c in range(cell.natm):
        x = (coords[c][None, None, :] - coords[None, :, :] - shifts[:, None, :]).reshape(-1, 3)
        zz = np.tile(z, len(shifts))
        d = np.linalg.norm(x, axis=1)
        near = (d > 1e-8) & (d < rsr)  # d = 0 is C itself
        out[c] = np.einsum("n,nij->ij", zz[near], erfc_hessian(x[near], omega))
    return out


def _cluster(cell, c: int, shifts: np.ndarray, reach: np.ndarray):
    """The lattice images of atoms whose AOs reach the short-range sphere around atom ``c``:
    a built ``gto.Mole`` and, per cluster AO, its image shift (Bohr) and its cell AO index."""
    from pyscf import gto

    coords = cell.atom_coords()
    chosen = [(t, ia) for t, shift in enumerate(shifts)
              for ia in np.nonzero(np.linalg.norm(coords + shift - coords[c], axis=1) < reach)[0]]
    mol = gto.Mole()
    mol.atom = [(cell.atom_symbol(ia), tuple(coords[ia] + shifts[t])) for t, ia in chosen]
    mol.basis, mol.unit, mol.cart, mol.verbose = cell._basis, "Bohr", cell.cart, 0
    mol.spin = int(sum(cell.atom_charge(ia) for _, ia in chosen)) % 2  # only the AOs matter
    mol.build()
    slices = cell.aoslice_by_atom()
    shift_of, ao_of = [], []
    for t, ia in chosen:
        p0, p1 = slices[ia][2:]
        shift_of += [shifts[t]] * (p1 - p0)
        ao_of += list(range(p0, p1))
    return mol, np.array(shift_of), np.array(ao_of)


def _short_range_electrons(cell, kpts: np.ndarray, dm: np.ndarray, omega: float, rsr: float, precision: float) -> np.ndarray:
    from pyscf import gto

    coords = cell.atom_coords()
    reach = rsr + _atom_extents(cell, precision)
    shifts = _translations(cell, float(reach.max()))
    out = np.zeros((cell.natm, 3, 3))
    for c in range(cell.natm):
        mol, shift_of, ao_of = _cluster(cell, c, shifts, reach)
        # cluster density matrix: the coefficient of phi_i(r - L) phi_j(r - L') is P_ij(L' - L)
        dt = shift_of[None, :, :] - shift_of[:, None, :]
        phase = np.exp(-1j * np.einsum("abx,kx->kab", dt, kpts))
        dmc = (np.einsum("kab,kab->ab", phase, dm[:, ao_of][:, :, ao_of]) / len(kpts)).real
        charge = gto.fakemol_for_charges(coords[c].reshape(1, 3))
        joined = gto.mole.conc_mol(mol, charge)
        with joined.with_range_coulomb(-omega):  # erfc(w r)/r: the short-range half
            shells = (0, mol.nbas, 0, mol.nbas, mol.nbas, mol.nbas + 1)
            h = joined.intor("int3c2e_ipip1", comp=9, shls_slice=shells)
            h = h + joined.intor("int3c2e_ipvip1", comp=9, shls_slice=shells)
        h = h.reshape(3, 3, mol.nao, mol.nao)
        h = h + h.transpose(0, 1, 3, 2)  # d_i d_j (p q) = (d_i d_j p) q + d_i p d_j q + (p <-> q)
        out[c] = -np.einsum("xyab,ba->xy", h, dmc)
    return out


def periodic_efg_tensors(cell, kpts: np.ndarray, dm: np.ndarray, omega: float = OMEGA,
                         precision: float = PRECISION) -> np.ndarray:
    """EFG tensors V_ij = d_i d_j V at each nucleus of a crystal (a.u., E_h/(e a0^2)), (n_atoms, 3, 3),
    symmetric and traceless: electrons plus every other nucleus of the infinite crystal.

    ``cell``: a built all-electron ``pyscf.pbc.gto.Cell``; ``kpts``: (n_k, 3) absolute k-points
    (1/Bohr) of a mesh that contains -k with every k; ``dm``: the k-point density matrices, (n_k, nao,
    nao), or (2, n_k, nao, nao) spin-resolved (only the total density enters).
    """
    from scipy.special import erfcinv

    dm = np.asarray(dm)
    kpts = np.asarray(kpts, dtype=float).reshape(-1, 3)
    if dm.ndim == 4:
        dm = dm[0] + dm[1]
    if dm.shape != (len(kpts), cell.nao, cell.nao):
        raise ValueError(f"density matrices of shape {dm.shape} do not match {len(kpts)} k-points and {cell.nao} AOs")
    rsr = float(erfcinv(precision)) / omega  # erfc(w r) < precision beyond
    v = _long_range(cell, kpts, dm, omega, precision)
    v += _short_range_nuclei(cell, omega, rsr)
    v += _short_range_electrons(cell, kpts, dm, omega, rsr, precision)
    v = (v + v.transpose(0, 2, 1)) / 2
    return v - np.trace(v, axis1=1, axis2=2)[:, None, None] * np.eye(3) / 3
