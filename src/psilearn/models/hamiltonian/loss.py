"""The Hamiltonian kind's training loss, in the form the shared torch Trainer takes (rows/batch/terms).

Per structure s with n_ao^2 entries: mean over entries of ((F_pred - F_ref) / u)^2, u =
``hamiltonian.loss_unit`` (1 mHa), plus, with ``eigenvalue_weight`` w > 0, w times the mean of
((eps_pred - eps_ref) / u)^2 over the occupied and ``eigenvalue_virtual`` lowest virtual orbital
energies. eps_pred are the eigenvalues of L^-1 F_pred L^-T with S = L L^T (Cholesky of the exact
overlap, computed once per structure), the generalised eigenproblem F C = S C eps in a form whose
gradient torch.linalg.eigvalsh gives (stable for non-degenerate eigenvalues; the labels' degeneracies
are exact only at symmetric geometries, which MD frames almost never are).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from psilearn.models._torch.graph import Graph, collate
from psilearn.models.hamiltonian.layout import StructureIndex, collate_index


@dataclass
class StructureRecord:
    """What the loss needs of one training structure: its scatter index, flat F (Hartree) and, for
    the eigenvalue term, L^-1 (n_ao, n_ao) and the reference orbital energies (n_eig,)."""

    index: StructureIndex
    h: np.ndarray
    l_inv: np.ndarray | None = None
    eps: np.ndarray | None = None


def structure_record(index: StructureIndex, h: np.ndarray, s: np.ndarray, n_eig: int) -> StructureRecord:
    """A record; with ``n_eig`` > 0 also the Cholesky inverse of S and the n_eig lowest eigenvalues."""
    if n_eig <= 0:
        return StructureRecord(index, h)
    n = index.n_ao
    l_inv = scipy.linalg.solve_triangular(np.linalg.cholesky(s.reshape(n, n)), np.eye(n), lower=True)
    eps = scipy.linalg.eigh(h.reshape(n, n), s.reshape(n, n), eigvals_only=True)[:n_eig]
    return StructureRecord(index, h, l_inv, eps)


class HamiltonianLoss:
    """Loss object for :class:`psilearn.models._torch.train.Trainer` (``y`` rows are StructureRecords)."""

    # the body's own readout and the heads of element pairs absent from a batch get no gradient: under
    # DistributedDataParallel they must be searched for (find_unused_parameters)
    unused_parameters = True

    def __init__(self, unit: float, eigenvalue_weight: float = 0.0):
        self.unit, self.eigenvalue_weight = float(unit), float(eigenvalue_weight)

    def rows(self, graphs: list[Graph], y: list[StructureRecord]) -> list[StructureRecord]:
        return y

    def batch(self, graphs: list[Graph], rows: list[StructureRecord], idx, device, dtype):
        idx = list(idx)
        gs, recs = [graphs[i] for i in idx], [rows[i] for i in idx]
        b = collate(gs, device, dtype)
        index = collate_index([r.index for r in recs], gs)
        y = torch.as_tensor(np.concatenate([r.h for r in recs]), dtype=dtype, device=device)
        return b, index, y, recs

    def terms(self, net: torch.nn.Module, batch) -> torch.Tensor:
        """Loss of each structure of the batch, (S,)."""
        b, index, y, recs = batch
        pred = net(b, index)
        es = torch.as_tensor(index.entry_structure, device=y.device)
        sq = ((pred - y) / self.unit) ** 2
        per = torch.zeros(len(recs), dtype=y.dtype, device=y.device).index_add(0, es, sq)
        sizes = torch.as_tensor(np.diff(index.starts), dtype=y.dtype, device=y.device)
        per = per / sizes
        if self.eigenvalue_weight > 0:
            per = per + self.eigenvalue_weight * self._eigen_terms(pred, index, recs)
        return per

    def _eigen_terms(self, pred: torch.Tensor, index, recs: list[StructureRecord]) -> torch.Tensor:
        out = []
        for s, r in enumerate(recs):
            n = r.index.n_ao
            f = pred[index.starts[s] : index.starts[s + 1]].reshape(n, n)
            l_inv = torch.as_tensor(r.l_inv, dtype=pred.dtype, device=pred.device)
            eps = torch.linalg.eigvalsh(l_inv @ f @ l_inv.T)[: len(r.eps)]
            ref = torch.as_tensor(r.eps, dtype=pred.dtype, device=pred.device)
            out.append((((eps - ref) / self.unit) ** 2).mean())
        return torch.stack(out)
