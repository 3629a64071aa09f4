"""Differentiable charge equilibration in torch, and the training loss of the QEq-NN model.

Everything that depends only on geometry is precomputed once per structure in float64 with the
numpy QEq code (:class:`.qeq.QEqSystem`, Ewald for periodic cells): the response L and offset c
(q = -L chi + c, fixed hardness), or the Coulomb matrix C (learned hardness), and the dipole arm
f (r - o). In torch (always float64, whatever the network's dtype):

* fixed hardness:   q = c - L chi;
* learned hardness: solve the bordered system [[C + diag(J), 1], [1^T, 0]] [q; lambda] = [-chi; Q]
  (``torch.linalg.solve``, differentiable in chi and J; no positive definiteness needed);

then q <- q + (Q - sum q) / n removes rounding, so sum q = Q to a few ulp. Dipoles mu = arm^T q.

The loss (:class:`QEqLoss`) has the interface of :class:`psilearn.models._torch.train.TargetLoss`:
one term per observation row, each residual divided by the RMS of its type (charges e, dipole
components in label units) and weighted: terms = w_t ((pred - ref) / s_t)^2; the training loss
is their mean over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from psilearn.models._torch.graph import Graph, collate
from psilearn.models.qeq.linear_maps import QEqMaps


@dataclass
class QEqItem:
    """Precomputed QEq data of one structure of n atoms (float64 numpy, or torch after :meth:`to`).

    ``species`` (n,) element indices; ``total_charge`` Q (e); ``arm`` (n, 3) f (r - o) in label
    units per e; ``response`` L (n, n) e^2/eV and ``offset`` c (n,) e at the model's fixed hardness;
    ``coulomb`` C (n, n) eV/e^2 (learned hardness only); reference ``charges`` (n,) e and ``dipole``
    (3,) label units, or None."""

    species: object
    total_charge: float
    arm: object
    response: object
    offset: object
    coulomb: object = None
    charges: object = None
    dipole: object = None

    def to(self, device) -> "QEqItem":
        t = lambda a: None if a is None else torch.as_tensor(a, dtype=torch.float64, device=device)  # noqa: E731
        return QEqItem(torch.as_tensor(self.species, dtype=torch.long, device=device), float(self.total_charge),
                       t(self.arm), t(self.response), t(self.offset), t(self.coulomb), t(self.charges), t(self.dipole))


def qeq_items(maps: QEqMaps, species: list[np.ndarray], factor: float, learn_hardness: bool,
              charges: np.ndarray | None = None, dipoles: np.ndarray | None = None) -> list[QEqItem]:
    """One :class:`QEqItem` per structure of ``maps``; ``species[s]`` element indices of structure s;
    ``factor`` label units per e*Angstrom; reference ``charges`` (n_atoms_total,) and ``dipoles``
    (n_structures, 3) optional."""
    out = []
    for s, sys in enumerate(maps.systems):
        sl = maps.atoms_of(s)
        q_tot = float(maps.total_charge[s])
        out.append(QEqItem(
            species=np.asarray(species[s]), total_charge=q_tot, arm=factor * maps.arms[s],
            response=sys.response(np.eye(sys.n)), offset=sys.offset(q_tot),
            coulomb=(sys.A - np.diag(sys.J)) if learn_hardness else None,
            charges=None if charges is None else charges[sl], dipole=None if dipoles is None else dipoles[s]))
    return out


def solve_charges(chi: torch.Tensor, item: QEqItem, hardness: torch.Tensor | None = None) -> torch.Tensor:
    """QEq charges (n,) e, float64, for electronegativities ``chi`` (n,) eV/e of one structure
    (torch item, see :meth:`QEqItem.to`); ``hardness`` (n_species,) eV/e^2 switches to the bordered
    solve with C + diag(J)."""
    chi = chi.to(torch.float64)
    n = chi.shape[0]
    if hardness is None:
        q = item.offset - item.response @ chi
    else:
        a = item.coulomb + torch.diag(hardness[item.species])
        ones = torch.ones(n, 1, dtype=torch.float64, device=chi.device)
        m = torch.cat([torch.cat([a, ones], 1), torch.cat([ones.T, torch.zeros(1, 1, dtype=torch.float64, device=chi.device)], 1)], 0)
        rhs = torch.cat([-chi, torch.tensor([item.total_charge], dtype=torch.float64, device=chi.device)])
        q = torch.linalg.solve(m, rhs)[:n]
    return q + (item.total_charge - q.sum()) / n


class QEqLoss:
    """Loss of the QEq-NN model for :class:`psilearn.models._torch.train.Trainer`.

    ``weights`` {'charges' | 'dipole': w_t} the observation types trained on, ``scales`` {type: s_t}
    (e for charges, label units for dipoles); ``device`` where the per-structure QEq data live."""

    def __init__(self, weights: dict[str, float], scales: dict[str, float], device):
        self.weights, self.scales, self.device = dict(weights), dict(scales), device

    def rows(self, graphs: list[Graph], items: list[QEqItem]) -> list[QEqItem]:
        return [it.to(self.device) for it in items]

    def batch(self, graphs: list[Graph], items: list[QEqItem], idx, device, dtype):
        idx = list(idx)
        return collate([graphs[i] for i in idx], device, dtype), [items[i] for i in idx]

    def terms(self, net: torch.nn.Module, batch) -> torch.Tensor:
        b, items = batch
        chi = net(b)
        hardness = getattr(net, "module", net).hardness()  # net may be wrapped by DistributedDataParallel
        out = []
        start = 0
        for it in items:
            n = it.arm.shape[0]
            q = solve_charges(chi[start : start + n], it, hardness)
            start += n
            if "charges" in self.weights:
                out.append(self.weights["charges"] * ((q - it.charges) / self.scales["charges"]) ** 2)
            if "dipole" in self.weights:
                out.append(self.weights["dipole"] * ((it.arm.T @ q - it.dipole) / self.scales["dipole"]) ** 2)
        return torch.cat(out)
