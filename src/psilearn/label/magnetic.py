"""Magnetic-resonance labels: EFG, spin populations, hyperfine couplings and the g-tensor.

All tensors are 3x3, stored flattened row-major, and rotate as ``T -> R T R^T`` with the molecule.

* ``efg``: electric field gradient V_ij = d^2 V / dr_i dr_j at each nucleus (a.u., E_h/(e a0^2)),
  electrons + other nuclei, symmetric and traceless; with C_Q = e Q V_zz / h (MHz) and
  eta = (V_xx - V_yy) / V_zz (|V_zz| >= |V_yy| >= |V_xx|) for the isotopes of
  :mod:`psilearn.label.isotopes`.
* ``spin``: Mulliken and Hirshfeld populations of the spin density rho_alpha - rho_beta (e).
* ``hfc``: hyperfine coupling tensors A (MHz), Fermi contact + spin dipolar (first order; the
  second-order spin-orbit/PSO term is not included), for the isotopes of
  :mod:`psilearn.label.isotopes`; open shell only.
* ``gtensor``: the electronic g-tensor with GIAOs (pyscf-properties: relativistic mass correction,
  one-electron gauge correction, paramagnetic spin-orbit with SSO+SOO two-electron terms); the
  same two PySCF 2.14 incompatibilities as for NMR (:mod:`psilearn.label.nmr`) are worked around
  for the unrestricted solver. Open shell only.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

from psilearn.label.base import LabelError
from psilearn.label.isotopes import hyperfine_isotope, quadrupole

MAGNETIC_OBSERVABLES = ("efg", "spin", "hfc", "gtensor")


def _dm_pair(dm) -> tuple[np.ndarray, np.ndarray]:
    dm = np.asarray(dm)
    if dm.ndim == 2:
        return dm / 2, dm / 2
    return dm[0], dm[1]


# ---- EFG ---------------------------------------------------------------------------------------
def _rinv_hessian(mol, ia: int) -> np.ndarray:
    """AO integrals <p| d_i d_j (1/|r - R_a|) |q>, symmetrised over p, q, shape (3, 3, nao, nao). As
    distributions they contain a contact (delta-function) term at R_a, which the EFG removes and the
    hyperfine coupling keeps as its Fermi-contact part."""
    nao = mol.nao
    with mol.with_rinv_origin(mol.atom_coord(ia)):
        h = mol.intor("int1e_ipiprinv", 9).reshape(3, 3, nao, nao)
        h = h + mol.intor("int1e_iprinvip", 9).reshape(3, 3, nao, nao)
    return h + h.transpose(0, 1, 3, 2)


def _field_gradient_integrals(mol, ia: int) -> np.ndarray:
    """AO integrals of d_i d_j (1/|r - R_a|) (traceless, the delta-function term removed), (3,3,nao,nao)."""
    h = _rinv_hessian(mol, ia)
    ao = mol.eval_gto("GTOval", mol.atom_coord(ia).reshape(1, 3))
    contact = 4.0 * np.pi / 3.0 * np.einsum("ip,iq->pq", ao, ao)
    for k in range(3):
        h[k, k] += contact
    return h


def efg_tensors(mol, dm) -> np.ndarray:
    """EFG tensors (a.u.), shape (n_atoms, 3, 3), symmetric and traceless."""
    a, b = _dm_pair(dm)
    total = a + b
    coords, z = mol.atom_coords(), mol.atom_charges()
    out = np.zeros((mol.natm, 3, 3))
    for ia in range(mol.natm):
        dr = np.delete(coords, ia, axis=0) - coords[ia]
        d = np.linalg.norm(dr, axis=1)
        zz = np.delete(z, ia)
        nuc = np.einsum("i,ix,iy->xy", 3 * zz / d**5, dr, dr) - np.eye(3) * np.sum(zz / d**3)
        elec = np.einsum("xyij,ji->xy", _field_gradient_integrals(mol, ia), total)
        v = nuc - elec
        v = (v + v.T) / 2
        out[ia] = v - np.eye(3) * np.trace(v) / 3
    return out


def quadrupolar_parameters(efg: np.ndarray, symbols: list[str]):
    """Per atom ``(C_Q / MHz, eta, quadrupolar mask)`` and the isotopes used (``'N:14N;...'``).

    C_Q = e Q V_zz / h for the isotope of :data:`psilearn.label.isotopes.QUADRUPOLE`; 0 where the
    element has no quadrupolar isotope (mask 0). eta is defined from the tensor alone (0 if V = 0).
    """
    from pyscf.data import nist

    au2mhz = nist.E_CHARGE * nist.AUEFG / nist.PLANCK * 1e-6 * 1e-28  # V_zz (a.u.) * Q (barn) -> MHz
    n = len(symbols)
    cq, eta, mask = np.zeros(n), np.zeros(n), np.zeros(n, dtype=int)
    used: dict[str, str] = {}
    for k, s in enumerate(symbols):
        e = np.linalg.eigvalsh(efg[k])
        e = e[np.argsort(np.abs(e))]  # |V_xx| <= |V_yy| <= |V_zz|
        if abs(e[2]) > 1e-10:
            eta[k] = float(np.clip((e[0] - e[1]) / e[2], 0.0, 1.0))
        iso = quadrupole(s)
        if iso is not None:
            cq[k], mask[k] = e[2] * iso[2] * au2mhz, 1
            used[s] = iso[0]
    return cq, eta, mask, ";".join(f"{s}:{i}" for s, i in used.items())


def efg_labels(efg: np.ndarray, symbols: list[str]) -> tuple[dict, dict]:
    """``(info, arrays)`` of the ``efg`` observable from EFG tensors (a.u., (n_atoms, 3, 3)) of a
    molecule or a crystal: the flattened tensors, C_Q, eta, the quadrupolar mask and the isotopes."""
    cq, eta, mask, used = quadrupolar_parameters(efg, symbols)
    return {"efg_isotopes": used}, {"efg": efg.reshape(-1, 9), "efg_cq": cq, "efg_eta": eta, "efg_quadrupolar": mask}


# ---- spin populations ----------------------------------------------------------------------------
def spin_populations(mol, dm, grids) -> tuple[np.ndarray, np.ndarray]:
    """Mulliken and Hirshfeld populations of rho_alpha - rho_beta (e), each shape (n_atoms,)."""
    from psilearn.label.hirshfeld import hirshfeld_populations

    a, b = _dm_pair(dm)
    spin = a - b
    ps = spin @ mol.intor_symmetric("int1e_ovlp")
    diag = np.diag(ps)
    mulliken = np.array([diag[p0:p1].sum() for _, _, p0, p1 in mol.aoslice_by_atom()])
    return mulliken, hirshfeld_populations(mol, spin, grids)


# ---- hyperfine -------------------------------------------------------------------------------------
def _require_open_shell(mol, what: str) -> None:
    if mol.spin == 0:
        raise LabelError(f"{what} needs an open-shell structure (multiplicity > 1); this one is a "
                         "closed-shell singlet: set atoms.info['multiplicity']", what)


def hfc_prefactor(mol) -> float:
    """MHz per (g_N * a.u. spin-density integral): alpha^2/2 g_e/2 (m_e/m_p)/2 E_h/h / S."""
    from pyscf.data import nist

    return (nist.ALPHA**2 / 2 / (mol.spin * 0.5) * 0.5 * nist.G_ELECTRON
            * 0.5 * (nist.E_MASS / nist.PROTON_MASS) * nist.HARTREE2J / nist.PLANCK * 1e-6)


def _spin_dipolar_integrals(mol, ia: int) -> np.ndarray:
    """AO integrals of d_i d_j (1/r) - delta_ij lap(1/r): dipolar + (8 pi/3) delta(r) (Fermi contact)."""
    h = _rinv_hessian(mol, ia)
    trace = h[0, 0] + h[1, 1] + h[2, 2]
    for k in range(3):
        h[k, k] -= trace
    return h


def hfc_tensors(mol, dm) -> tuple[np.ndarray, str]:
    """Hyperfine tensors (MHz), shape (n_atoms, 3, 3), and the isotopes used (``'H:1H;...'``)."""
    _require_open_shell(mol, "hfc")
    a, b = _dm_pair(dm)
    spin = a - b
    fac = hfc_prefactor(mol)
    out = np.zeros((mol.natm, 3, 3))
    used: dict[str, str] = {}
    for ia in range(mol.natm):
        symbol = mol.atom_pure_symbol(ia)
        isotope, g_nuc = hyperfine_isotope(symbol)
        used[symbol] = isotope
        if g_nuc:
            out[ia] = fac * g_nuc * np.einsum("xyij,ji->xy", _spin_dipolar_integrals(mol, ia), spin)
    return out, ";".join(f"{s}:{i}" for s, i in used.items())


# ---- g-tensor --------------------------------------------------------------------------------------
def _gen_vind_uhf(mf, mo_coeff, mo_occ):
    """Unrestricted induced imaginary response for any number of trial vectors (PySCF 2.14 fix)."""
    vresp = mf.gen_response(hermi=2)
    ca, cb = mo_coeff
    oa, ob = ca[:, mo_occ[0] > 0], cb[:, mo_occ[1] > 0]
    nmo, na, nb = ca.shape[1], oa.shape[1], ob.shape[1]

    def vind(mo1):
        mo1 = np.asarray(mo1)
        x = mo1.reshape(-1, nmo * (na + nb))
        xa = x[:, : nmo * na].reshape(len(x), nmo, na)
        xb = x[:, nmo * na :].reshape(len(x), nmo, nb)
        da = np.einsum("pi,xij,qj->xpq", ca, xa, oa.conj())
        db = np.einsum("pi,xij,qj->xpq", cb, xb, ob.conj())
        v = vresp(np.asarray((da - da.conj().transpose(0, 2, 1), db - db.conj().transpose(0, 2, 1))))
        va = np.einsum("pi,xpq,qj->xij", ca.conj(), v[0], oa).reshape(len(x), -1)
        vb = np.einsum("pi,xpq,qj->xij", cb.conj(), v[1], ob).reshape(len(x), -1)
        return np.hstack((va, vb)).reshape(mo1.shape)

    return vind


def _patched(mf):
    import pyscf.prop.nmr.uhf as uhf_nmr

    from psilearn.label.nmr import patched_response

    return patched_response(uhf_nmr, _gen_vind_uhf, mf)


def g_tensor(mf) -> np.ndarray:
    """Electronic g-tensor (dimensionless), shape (3, 3), GIAO, for a converged open-shell SCF."""
    from pyscf import dft

    mol = mf.mol
    _require_open_shell(mol, "gtensor")
    if getattr(mf, "with_df", None) is not None:
        raise LabelError("the g-tensor does not support density fitting; drop /df", "gtensor")
    if mol.has_ecp():
        raise LabelError("the g-tensor is not implemented with effective core potentials", "gtensor")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(mf, dft.rks.KohnShamDFT):
            from pyscf.prop.gtensor.uks import GTensor
        else:
            from pyscf.prop.gtensor.uhf import GTensor
        obj = GTensor(mf)
        obj.verbose = 0
        obj.max_cycle_cphf = 50
        obj.stdout = io.StringIO()  # the UKS g-tensor writes its SOC terms whatever the verbosity
        try:
            with _patched(mf):
                g = np.asarray(obj.kernel(), dtype=float)
        except LabelError:
            raise
        except Exception as exc:
            raise LabelError(f"g-tensor failed in pyscf-properties: {type(exc).__name__}: {exc}", "gtensor") from None
    if g.shape != (3, 3) or not np.all(np.isfinite(g)):
        raise LabelError(f"g-tensor returned an invalid result of shape {g.shape}", "gtensor")
    return g


# ---- the labels ------------------------------------------------------------------------------------
def magnetic_labels(mf, observables, grids=None) -> tuple[dict, dict]:
    """``(info, arrays)`` of the requested magnetic observables for a converged SCF ``mf``."""
    from pyscf.data import nist

    mol, dm = mf.mol, mf.make_rdm1()
    info: dict = {}
    arrays: dict = {}
    symbols = [mol.atom_pure_symbol(i) for i in range(mol.natm)]
    if "efg" in observables:
        efg_info, efg_arrays = efg_labels(efg_tensors(mol, dm), symbols)
        info.update(efg_info)
        arrays.update(efg_arrays)
    if "spin" in observables:
        arrays["mulliken_spins"], arrays["hirshfeld_spins"] = spin_populations(mol, dm, grids)
    if "hfc" in observables:
        hfc, used = hfc_tensors(mol, dm)
        arrays.update(hfc=hfc.reshape(-1, 9), hfc_iso=np.trace(hfc, axis1=1, axis2=2) / 3)
        info["hfc_isotopes"] = used
    if "gtensor" in observables:
        g = g_tensor(mf)
        shift = (g - np.eye(3) * nist.G_ELECTRON) * 1e6
        info.update(gtensor=g.reshape(9), g_iso=float(np.trace(g) / 3), delta_g=shift.reshape(9),
                    delta_g_iso=float(np.trace(shift) / 3))
    return info, arrays
