"""What a model returns: Cartesian values in the user's units, with uncertainties."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Prediction:
    """Predictions for n samples (structures, or atoms for per-atom targets).

    ``values`` (n, 3**rank) Cartesian, row-major, in the units of the training labels;
    ``std`` (n, 3**rank) predictive standard deviation of each Cartesian component;
    ``irreps`` (n, n_irreps) and ``irreps_std`` the same in the irreducible (e3nn) basis;
    ``cov`` optional (n, 3**rank, 3**rank) full predictive covariance of the Cartesian components.
    """

    values: np.ndarray
    std: np.ndarray
    irreps: np.ndarray
    irreps_std: np.ndarray
    cov: np.ndarray | None = None
