"""Indirect nuclear spin-spin coupling tensors J (Hz) with pyscf-properties (``pyscf.prop.ssc``).

Non-relativistic Ramsey terms, closed-shell RHF/RKS reference with coupled response (CPHF/CPKS):

* DSO (diamagnetic spin-orbit): expectation value, no response;
* PSO (paramagnetic spin-orbit): singlet imaginary response;
* FC + SD (Fermi contact + spin-dipolar, including the FC/SD cross term that makes J anisotropic):
  triplet response, as pyscf-properties' ``make_fcsd`` but with 6 right-hand sides per atom.

For a pair of nuclei (A, B) the reduced coupling K_AB (a.u., the fine-structure factor alpha^4
included, as pyscf-properties returns it) is the mixed second derivative of the energy with respect
to the nuclear magnetic moments, E = mu_A^T K_AB mu_B: the row index belongs to A, the column to B,
so that K_BA = K_AB^T. J_AB = K_AB g_A g_B mu_N^2 / h (Hz) with the nuclear g factors g of the
isotopes of :data:`psilearn.label.isotopes.HYPERFINE` (values from PySCF's nucprop table) and
mu_N = (1/2) m_e/m_p in atomic units; E = h I_A^T J_AB I_B. Under a rotation R of the molecule
J_AB -> R J_AB R^T.

Points where psilearn does not take pyscf-properties 0.1 as is (checked in
``tests/label/test_jcoupling.py``):

1. ``make_dso`` returns <(r_A.r_B) 1 - r_A r_B^T> / (r_A^3 r_B^3); the DSO term of
   E = <A_A . A_B> (A_K = alpha^2 mu_K x r_K / r_K^3) is <(r_A.r_B) 1 - r_B r_A^T> / (r_A^3 r_B^3),
   its transpose (same isotropic value, opposite antisymmetric part). psilearn transposes it.
2. ``make_pso`` reshapes the response of the second atoms of the pairs with the number of first
   atoms and fails (or mixes atoms) when the two sets differ in size; psilearn contracts the PSO
   response itself with pyscf-properties' integrals and CPHF solver.
3. A triplet-unstable reference (the FC/SD response is then meaningless) is refused when a
   self-response has the wrong sign (:func:`_check_triplet_stability`); pyscf-properties does not check.

Open shells are refused: pyscf-properties' UHF/UKS route keeps only the zz spin block of the
FC/SD response (``ZZ_ONLY``), and J of a paramagnetic molecule is not the NMR splitting anyway.
Effective core potentials are refused (no core, no Fermi-contact density at the nucleus).
Density fitting is accepted (the response uses the fitted integrals).
"""

from __future__ import annotations

import warnings

import numpy as np

from psilearn.label.base import LabelError
from psilearn.label.isotopes import hyperfine_isotope

#: Default pair cutoff (Angstrom).
DEFAULT_CUTOFF = 4.0


def coupling_pairs(symbols: list[str], positions: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray, str]:
    """Pairs (i < j, lexicographic) within ``cutoff`` (Angstrom; ``positions`` in Angstrom, (n, 3))
    whose two atoms both have a magnetic isotope; returns ``(pairs (P, 2) int, g factors (n,),
    'H:1H;C:13C')``. An element without isotope data is a LabelError; no pair is a LabelError."""
    g = np.zeros(len(symbols))
    used: dict[str, str] = {}
    for k, s in enumerate(symbols):
        used[s], g[k] = hyperfine_isotope(s, "jcoupling")
    pos = np.asarray(positions, dtype=float)
    n = len(symbols)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)
             if g[i] != 0 and g[j] != 0 and np.linalg.norm(pos[i] - pos[j]) <= cutoff]
    if not pairs:
        raise LabelError(f"jcoupling: no pair of magnetic nuclei within {cutoff:g} A in {''.join(symbols)}", "jcoupling")
    return np.array(pairs, dtype=int).reshape(-1, 2), g, ";".join(f"{s}:{i}" for s, i in used.items())


def check_jcoupling_mol(mol, cutoff: float = DEFAULT_CUTOFF) -> None:
    """LabelError before any SCF for an open shell, an ECP or a structure without a coupled pair."""
    _check_mol(mol, unrestricted=False)
    coupling_pairs([mol.atom_pure_symbol(i) for i in range(mol.natm)], mol.atom_coords(unit="Angstrom"), cutoff)


def _check_reference(mf) -> None:
    from pyscf import scf

    _check_mol(mf.mol, isinstance(mf, scf.uhf.UHF))


def _check_mol(mol, unrestricted: bool) -> None:
    if mol.spin != 0 or unrestricted:
        raise LabelError("jcoupling is implemented for closed-shell (RHF/RKS) molecules only; this one has "
                         f"multiplicity {mol.spin + 1}", "jcoupling")
    if mol.has_ecp():
        raise LabelError("jcoupling is not implemented with effective core potentials (the Fermi-contact "
                         "term needs the core density); use an all-electron basis", "jcoupling")


def _pso(ssc, mf, pairs: list[tuple[int, int]]) -> np.ndarray:
    """PSO term (a.u., alpha^4 included), (P, 3, 3), row index of atom i, column of atom j."""
    from pyscf.data import nist
    from pyscf.prop.ssc import rhf as rhf_ssc

    first = sorted({i for i, _ in pairs})
    second = sorted({j for _, j in pairs})
    h_second = np.asarray(rhf_ssc.make_h1_pso(mf.mol, mf.mo_coeff, mf.mo_occ, second))
    mo1 = np.asarray(ssc.solve_mo1(h1=h_second)[0])  # imaginary first-order orbitals, (3 n_second, nvir, nocc)
    h_first = np.asarray(rhf_ssc.make_h1_pso(mf.mol, mf.mo_coeff, mf.mo_occ, first))
    nvir, nocc = h_first.shape[1:]
    h_first = h_first.reshape(len(first), 3, nvir, nocc)
    mo1 = mo1.reshape(len(second), 3, nvir, nocc)
    # 4 = 2 (complex conjugate) * 2 (doubly occupied orbitals), as in pyscf-properties
    out = [4 * np.einsum("xai,yai->xy", h_first[first.index(i)], mo1[second.index(j)]) for i, j in pairs]
    return np.asarray(out) * nist.ALPHA**4


_UNIQUE = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def _check_triplet_stability(h: np.ndarray, mo1: np.ndarray) -> None:
    """LabelError if a self-response h^T mo1 = -h^T A^-1 h is positive: then the triplet orbital
    Hessian A is not positive definite (an RHF -> UHF instability, e.g. HF on many multiple bonds)
    and the FC/SD response, hence J, is meaningless. A sufficient test, free with the solved response."""
    self_terms = np.einsum("kai,kai->k", h, mo1)
    scale = np.abs(self_terms).max()
    if scale > 0 and self_terms.max() > 1e-8 * scale:
        raise LabelError("jcoupling: the closed-shell reference is triplet-unstable (a Fermi-contact/spin-dipolar "
                         "self-response has the wrong sign), so J is meaningless; try a hybrid functional instead of HF", "jcoupling")


def _fcsd(ssc, mf, pairs: list[tuple[int, int]]) -> np.ndarray:
    """FC + SD term (a.u., alpha^4 included), (P, 3, 3), as pyscf-properties' ``make_fcsd`` but with
    6 instead of 9 triplet right-hand sides per atom: the FC+SD operator h[x, w] (x: nuclear moment
    component, w: electron spin component) is symmetric in (x, w), and so is its response."""
    from pyscf.data import nist
    from pyscf.prop.ssc import rhf as rhf_ssc

    first = sorted({i for i, _ in pairs})
    second = sorted({j for _, j in pairs})
    nocc = int(np.count_nonzero(mf.mo_occ > 0))
    nvir = mf.mo_occ.size - nocc
    h2 = np.asarray(rhf_ssc.make_h1_fcsd(mf.mol, mf.mo_coeff, mf.mo_occ, second)).reshape(len(second), 3, 3, nvir, nocc)
    unique = np.array([h2[a, x, w] for a in range(len(second)) for x, w in _UNIQUE])
    mo1_u = np.asarray(rhf_ssc.solve_mo1_fc(ssc, unique)).reshape(len(second), 6, nvir, nocc)
    _check_triplet_stability(unique, mo1_u.reshape(unique.shape))
    mo1 = np.empty((len(second), 3, 3, nvir, nocc))
    for k, (x, w) in enumerate(_UNIQUE):
        mo1[:, x, w] = mo1[:, w, x] = mo1_u[:, k]
    h1 = np.asarray(rhf_ssc.make_h1_fcsd(mf.mol, mf.mo_coeff, mf.mo_occ, first)).reshape(len(first), 3, 3, nvir, nocc)
    # 4 = 2 (complex conjugate) * 2 (doubly occupied orbitals), as in pyscf-properties
    out = [4 * np.einsum("xwai,ywai->xy", h1[first.index(i)], mo1[second.index(j)]) for i, j in pairs]
    return np.asarray(out) * nist.ALPHA**4


def reduced_couplings(mf, pairs: np.ndarray, conv_tol: float = 1e-9, max_cycle: int = 50) -> dict[str, np.ndarray]:
    """Reduced coupling tensors K (a.u., alpha^4 included) per term, each (P, 3, 3):
    ``{'dso', 'pso', 'fcsd', 'total'}``, for a converged closed-shell SCF and pairs (P, 2)."""
    _check_reference(mf)
    from pyscf import dft

    pair_list = [(int(i), int(j)) for i, j in np.asarray(pairs).reshape(-1, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(mf, dft.rks.KohnShamDFT):
            from pyscf.prop.ssc.rks import SSC
        else:
            from pyscf.prop.ssc.rhf import SSC
        ssc = SSC(mf)
        ssc.verbose = 0
        ssc.nuc_pair = pair_list
        ssc.conv_tol = conv_tol
        ssc.max_cycle_cphf = max_cycle
        try:
            # pyscf-properties' DSO has the transposed antisymmetric part (module docstring, point 1)
            dso = np.asarray(ssc.make_dso(mf.mol, mf.make_rdm1(), pair_list)).transpose(0, 2, 1)
            pso = _pso(ssc, mf, pair_list)
            fcsd = _fcsd(ssc, mf, pair_list)
        except LabelError:
            raise
        except Exception as exc:
            raise LabelError(f"jcoupling failed in pyscf-properties: {type(exc).__name__}: {exc}", "jcoupling") from None
    total = dso + pso + fcsd
    if total.shape != (len(pair_list), 3, 3) or not np.all(np.isfinite(total)):
        raise LabelError(f"jcoupling returned an invalid result of shape {total.shape}", "jcoupling")
    return {"dso": dso, "pso": pso, "fcsd": fcsd, "total": total}


def hz_per_au() -> float:
    """Hz per (reduced coupling in a.u. * g_A * g_B): mu_N^2 E_h / h with mu_N = m_e / (2 m_p)."""
    from pyscf.data import nist

    return nist.HARTREE2J / nist.PLANCK * (0.5 * nist.E_MASS / nist.PROTON_MASS) ** 2


def jcoupling_labels(mf, cutoff: float = DEFAULT_CUTOFF) -> dict:
    """The ``jcoupling`` info keys (layout in ``docs/magnetic.md``) of a converged closed-shell SCF."""
    mol = mf.mol
    _check_reference(mf)
    symbols = [mol.atom_pure_symbol(i) for i in range(mol.natm)]
    pairs, g, used = coupling_pairs(symbols, mol.atom_coords(unit="Angstrom"), cutoff)
    k = reduced_couplings(mf, pairs)["total"]
    j = k * hz_per_au() * (g[pairs[:, 0]] * g[pairs[:, 1]])[:, None, None]
    return {
        "jcoupling_pairs": pairs.reshape(-1).astype(int),
        "jcoupling": j.reshape(-1),
        "jcoupling_iso": np.trace(j, axis1=1, axis2=2) / 3,
        "jcoupling_isotopes": used,
        "jcoupling_cutoff": float(cutoff),
    }
