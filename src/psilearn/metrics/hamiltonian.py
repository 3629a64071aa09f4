"""Errors of predicted AO Hamiltonians: matrix entries, orbital energies, gaps and orbital coefficients.

The quantities of the MD17-Hamiltonian literature (SchNOrb, PhiSNet, QHNet), so numbers compare:

* ``h_mae``: mean absolute error over every entry of F (Hartree);
* ``occupied_energy_mae``: mean absolute error of the occupied orbital energies, eigenvalues of
  (F, S) with the exact S (Hartree);
* ``gap_mae``: HOMO-LUMO gap (Hartree);
* ``coefficient_cosine``: mean over occupied orbitals of |<c_pred, c_ref>_S| (the cosine similarity of
  the orbital coefficient vectors in the S metric; 1 is perfect; the sign of an orbital is arbitrary);
  degenerate orbitals are compared as they come (no subspace alignment), as in QHNet's reference code.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg


def closed_shell_occupied(numbers, charge: float = 0.0) -> int:
    """Doubly occupied orbitals of a closed-shell molecule: (sum Z - charge) / 2 (ValueError if odd)."""
    n = int(round(float(np.sum(numbers)) - charge))
    if n % 2:
        raise ValueError(f"{n} electrons: not a closed shell")
    return n // 2


def hamiltonian_errors(pred: np.ndarray, ref: np.ndarray, overlap: np.ndarray, n_occ: int) -> dict:
    """Errors of one structure: (n_ao, n_ao) predicted and reference F (Hartree), S, and the number
    of doubly occupied orbitals. Returns h_mae, occupied_energy_mae, gap_error (signed), cosine and
    the sums needed to pool structures (``n_entries``, ``occ_abs_sum``)."""
    e_p, c_p = scipy.linalg.eigh(pred, overlap)
    e_r, c_r = scipy.linalg.eigh(ref, overlap)
    occ = slice(0, n_occ)
    cos = np.abs(np.einsum("ik,ij,jk->k", c_p[:, occ], overlap, c_r[:, occ]))
    gap_p = e_p[n_occ] - e_p[n_occ - 1] if n_occ < len(e_p) else np.nan
    gap_r = e_r[n_occ] - e_r[n_occ - 1] if n_occ < len(e_r) else np.nan
    return {"h_abs_sum": float(np.abs(pred - ref).sum()), "n_entries": int(pred.size),
            "occ_abs_sum": float(np.abs(e_p[occ] - e_r[occ]).sum()), "n_occ": int(n_occ),
            "gap_error": float(gap_p - gap_r), "cosine_sum": float(cos.sum())}


def hamiltonian_metrics(preds, refs, overlaps, n_occs) -> dict:
    """Pooled errors over structures (lists of square arrays and occupied counts): ``h_mae``,
    ``occupied_energy_mae``, ``gap_mae`` (Hartree), ``coefficient_cosine`` (mean over occupied
    orbitals of all structures), ``n_structures``. Each in the units of F (Hartree)."""
    rows = [hamiltonian_errors(np.asarray(p), np.asarray(r), np.asarray(s), int(n)) for p, r, s, n in zip(preds, refs, overlaps, n_occs)]
    if not rows:
        raise ValueError("no structures to compare")
    n_occ = sum(r["n_occ"] for r in rows)
    gaps = np.array([r["gap_error"] for r in rows])
    return {"n_structures": len(rows),
            "h_mae": sum(r["h_abs_sum"] for r in rows) / sum(r["n_entries"] for r in rows),
            "occupied_energy_mae": sum(r["occ_abs_sum"] for r in rows) / n_occ,
            "gap_mae": float(np.nanmean(np.abs(gaps))),
            "coefficient_cosine": sum(r["cosine_sum"] for r in rows) / n_occ}


def dataset_metrics(preds, data) -> dict:
    """:func:`hamiltonian_metrics` of predicted matrices (one per structure, in order) against a
    :class:`psilearn.data.HamiltonianDataset`: its F, its S, and the closed-shell occupation of each
    structure (charge from ``info['charge']``, default 0)."""
    occ = [closed_shell_occupied(a.numbers, a.info.get("charge", 0)) for a in data.frames]
    n = range(len(data))
    return hamiltonian_metrics(preds, [data.matrix(i) for i in n], [data.overlap(i) for i in n], occ)
