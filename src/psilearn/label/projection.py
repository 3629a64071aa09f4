"""Löwdin-projected (per-atom) density of states of the ``orbitals`` observable.

Each molecular orbital i (AO coefficients C[:, i], AO overlap S) is split over the atoms by a Löwdin
projection: with the symmetric square root S^½ (``scipy.linalg.eigh``; S is symmetric positive definite),
the orthogonalised coefficients are X = S^½ C and the weight of atom A is
w[A, i] = sum_{mu on A} X[mu, i]^2 >= 0. Since C^T S C = 1, sum_A w[A, i] = 1; the small remainder (the
orthonormality error of the solver's C, below 1e-8 or the label is refused) is divided out, so the
projected DOS sums over the atoms to the total ``dos`` exactly (to rounding).

Labels (``atoms.arrays``, per atom): ``orbital_atom_weights`` (n_atoms, n_orbitals), dimensionless, in
the order of ``orbital_energies`` (open shells: ``orbital_atom_weights_alpha``/``_beta`` beside
``orbital_energies_alpha``/``_beta``), and ``pdos`` (n_atoms, dos_npts), states/Hartree on the ``dos``
grid with its width: the total DOS's Gaussians, each weighted by the atom's share of its orbital
(2 states per restricted orbital, 1 per spin orbital). ``info``: ``pdos_emin``/``_emax``/``_npts``/``_sigma``
(Hartree), as ``dos`` records its grid.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from psilearn.data.spectra import ATOM_WEIGHTS_KEY
from psilearn.label.base import LabelError
from psilearn.label.orbitals import DOSGrid, broadened_dos

#: largest |sum_A w[A, i] - 1| accepted before renormalising (the orbitals' S-orthonormality error)
NORM_TOLERANCE = 1e-8


def overlap_sqrt(overlap: np.ndarray) -> np.ndarray:
    """S^½ (n_ao, n_ao) of a symmetric positive definite overlap ``overlap`` (n_ao, n_ao), by ``scipy.linalg.eigh``;
    LabelError (stage 'orbitals') if S is not positive definite."""
    s = np.asarray(overlap, dtype=np.float64)
    vals, vecs = scipy.linalg.eigh(0.5 * (s + s.T))
    if vals[0] <= 0.0:
        raise LabelError(f"the AO overlap matrix is not positive definite (smallest eigenvalue {vals[0]:.3g}): no Löwdin projection",
                         "orbitals")
    return (vecs * np.sqrt(vals)) @ vecs.T


def lowdin_atom_weights(coeff: np.ndarray, overlap: np.ndarray, ao_atom: np.ndarray, n_atoms: int) -> np.ndarray:
    """Löwdin weights w[A, i] (n_atoms, n_orbitals), dimensionless, >= 0, each column summing to 1, of the orbitals
    ``coeff`` (n_ao, n_orbitals; columns are orbitals) with AO overlap ``overlap`` (n_ao, n_ao); ``ao_atom`` (n_ao,)
    is the 0-based atom of each AO. LabelError (stage 'orbitals') if the orbitals are not S-orthonormal."""
    c = np.asarray(coeff, dtype=np.float64)
    x2 = (overlap_sqrt(overlap) @ c) ** 2
    weights = np.zeros((n_atoms, c.shape[1]))
    np.add.at(weights, np.asarray(ao_atom, dtype=int), x2)
    norm = weights.sum(axis=0)
    worst = float(np.abs(norm - 1.0).max()) if norm.size else 0.0
    if worst > NORM_TOLERANCE:
        raise LabelError(f"the orbitals are not orthonormal in the AO overlap (|C^T S C - 1| up to {worst:.3g}): no Löwdin projection",
                         "orbitals")
    return weights / norm


def projected_dos(energies: np.ndarray, weights: np.ndarray, states: float, grid: DOSGrid) -> np.ndarray:
    """Projected DOS (n_atoms, grid.npts), states/Hartree: orbital energies ``energies`` (n_orbitals,) Hartree,
    Löwdin ``weights`` (n_atoms, n_orbitals), ``states`` per orbital (2 restricted, 1 per spin orbital)."""
    w = np.asarray(weights, dtype=np.float64)
    return broadened_dos(np.asarray(energies, dtype=np.float64), states * w.T, grid).T


def projection_labels(info: dict, coeffs: list[np.ndarray], overlap: np.ndarray, ao_atom: np.ndarray, n_atoms: int,
                      grid: DOSGrid) -> dict[str, np.ndarray]:
    """The per-atom labels (``pdos``, ``orbital_atom_weights``[``_alpha``/``_beta``]) of orbitals whose energies
    :func:`psilearn.label.orbitals.orbital_labels` wrote into ``info``; ``coeffs``: one (n_ao, n_orbitals) matrix
    (restricted) or two (alpha, beta), in the order of those energies. Writes the ``pdos`` grid into ``info``."""
    spins = [""] if "orbital_energies" in info else ["_alpha", "_beta"]
    if len(coeffs) != len(spins):
        raise LabelError(f"{len(coeffs)} orbital coefficient sets for {len(spins)} spin channel(s)", "orbitals")
    arrays: dict[str, np.ndarray] = {}
    pdos = np.zeros((n_atoms, grid.npts))
    for spin, c in zip(spins, coeffs):
        energies = np.asarray(info["orbital_energies" + spin], dtype=np.float64)
        if c.shape[1] != len(energies):
            raise LabelError(f"{c.shape[1]} orbital coefficient vectors for {len(energies)} orbital energies", "orbitals")
        w = lowdin_atom_weights(c, overlap, ao_atom, n_atoms)
        arrays[ATOM_WEIGHTS_KEY + spin] = w
        pdos += projected_dos(energies, w, 2.0 if spin == "" else 1.0, grid)
    arrays["pdos"] = pdos
    info.update(pdos_emin=grid.emin, pdos_emax=grid.emax, pdos_npts=grid.npts, pdos_sigma=grid.sigma)
    return arrays


def pyscf_projection_labels(info: dict, mol, mf, ham: dict, grid: DOSGrid) -> dict[str, np.ndarray]:
    """:func:`projection_labels` of a converged molecular PySCF SCF ``mf`` (RHF/RKS or UHF/UKS) of ``mol``: AOs
    mapped to atoms by ``mol.aoslice_by_atom()``, S = ``mf.get_ovlp()``. With ``hamiltonian`` labels ``ham`` the
    orbitals are the eigenvectors of the stored F with S, as the stored ``orbital_energies`` are its eigenvalues."""
    overlap = np.asarray(mf.get_ovlp(), dtype=np.float64)
    ao_atom = np.zeros(mol.nao, dtype=int)
    for atom, (_, _, p0, p1) in enumerate(mol.aoslice_by_atom()):
        ao_atom[p0:p1] = atom
    if "hamiltonian" in ham:
        n = overlap.shape[0]
        coeffs = [scipy.linalg.eigh(np.asarray(ham["hamiltonian"]).reshape(n, n), overlap)[1]]
    else:
        mo = np.asarray(mf.mo_coeff, dtype=np.float64)
        coeffs = [mo] if mo.ndim == 2 else [mo[0], mo[1]]
    return projection_labels(info, coeffs, overlap, ao_atom, mol.natm, grid)


def tblite_projection_labels(info: dict, calc, res, n_atoms: int, grid: DOSGrid) -> dict[str, np.ndarray]:
    """:func:`projection_labels` of a tblite single point ``res`` of ``calc`` (``save-integrals`` on, so the result
    holds the overlap): AOs mapped to atoms by the calculator's ``orbital-map`` (AO -> shell) and ``shell-map``
    (shell -> atom); tblite's orbitals are spin-restricted (2 states each), as its ``dos``."""
    ao_atom = np.asarray(calc.get("shell-map"), dtype=int)[np.asarray(calc.get("orbital-map"), dtype=int)]
    coeff = np.asarray(res.get("orbital-coefficients"), dtype=np.float64)
    return projection_labels(info, [coeff], np.asarray(res.get("overlap-matrix"), dtype=np.float64), ao_atom, n_atoms, grid)
