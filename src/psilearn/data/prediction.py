"""What a model returns: Cartesian values in the user's units, with uncertainties."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Prediction:
    """Predictions for n samples (structures, atoms for per-atom targets, pairs for per-pair targets).

    ``values`` (n, 3**rank) Cartesian, row-major, in the units of the training labels;
    ``std`` (n, 3**rank) predictive standard deviation of each Cartesian component;
    ``irreps`` (n, n_irreps) and ``irreps_std`` the same in the irreducible (e3nn) basis;
    ``cov`` optional (n, 3**rank, 3**rank) full predictive covariance of the Cartesian components;
    ``pairs`` per-pair targets: each structure's (P_s, 2) atom pairs, the rows in that order.
    """

    values: np.ndarray
    std: np.ndarray
    irreps: np.ndarray
    irreps_std: np.ndarray
    cov: np.ndarray | None = None
    pairs: list[np.ndarray] | None = None


@dataclass
class DensityPrediction:
    """Predicted density-fitting coefficients of n structures (the ``density`` target kind).

    ``coefficients[s]`` the flat vector of structure s in the labeler's layout (PySCF's order for
    ``make_auxmol(mol, aux_basis)``; e per PySCF-normalised auxiliary function, see
    :mod:`psilearn.targets.density`); ``std[s]`` its per-coefficient predictive standard deviation,
    or None where the model gives none; ``aux_basis`` and ``metric`` as in the training labels;
    ``electrons[s]`` the predicted electron count sum_P c_P int phi_P, where the model computed it;
    ``cov[s]`` the full predictive covariance (n_coef, n_coef) in e^2, same order, where asked for
    (``return_cov``) and available.
    """

    coefficients: list[np.ndarray]
    aux_basis: str
    metric: str
    std: list[np.ndarray] | None = None
    electrons: list[float] | None = None
    cov: list[np.ndarray] | None = None


@dataclass
class HamiltonianPrediction:
    """Predicted AO Hamiltonians of n structures (the ``hamiltonian`` target kind).

    ``matrices[s]`` the (n_ao, n_ao) Fock/Kohn-Sham matrix of structure s in Hartree, PySCF's AO
    order for ``basis`` (symmetric); ``std[s]`` its per-entry predictive standard deviation, or None
    where the model gives none; ``n_pairs``/``n_pairs_within_cutoff`` per structure: how many atom
    pairs there are and how many the model predicted (pairs beyond its cutoff are zero blocks);
    ``n_centres_outside[s]`` (kernel models) how many of structure s's atoms and atom pairs lie outside
    the training range (less similar to every sparse centre than any training centre was), else None.
    """

    matrices: list[np.ndarray]
    basis: str
    std: list[np.ndarray] | None = None
    n_pairs: list[int] | None = None
    n_pairs_within_cutoff: list[int] | None = None
    n_centres_outside: list[int] | None = None
