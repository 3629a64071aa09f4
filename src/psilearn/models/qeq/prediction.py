"""What the QEq model returns: the Target plus charges, dipoles, electronegativities and energies."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from psilearn.data.prediction import Prediction


@dataclass
class QEqPrediction(Prediction):
    """A :class:`~psilearn.data.prediction.Prediction` of the Target with the QEq by-products.

    ``charges``/``charges_std`` (n_atoms_total,) e; ``dipoles``/``dipoles_std`` (n_structures, 3) in
    the dipole Target's units (e*Angstrom for charge models); ``chi`` (n_atoms_total,) eV/e;
    ``energy`` (QEq energy) and ``electrostatic_energy`` (n_structures,) eV; ``atomic_dipoles``
    (n_atoms_total, 3) in the dipole units when the model has them (else None).
    ``charges_name``/``dipole_name`` are the keys they are written under; ``target_key`` is the
    Target's own key (written by the caller, so not repeated in the extras).
    """

    charges: np.ndarray = field(default_factory=lambda: np.zeros(0))
    charges_std: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dipoles: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    dipoles_std: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    chi: np.ndarray = field(default_factory=lambda: np.zeros(0))
    energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    electrostatic_energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    charges_name: str = "qeq_charges"
    dipole_name: str = "qeq_dipole"
    target_key: str = ""
    atomic_dipoles: np.ndarray | None = None

    @classmethod
    def from_target(cls, target, values: np.ndarray, cov: np.ndarray, return_cov: bool = False, **fields) -> "QEqPrediction":
        """Fill the Target part from Cartesian ``values`` (n, 3**rank) and covariance ``cov``
        (n, 3**rank, 3**rank) (std, irreps, irreps_std); ``fields`` are the QEq by-products."""
        from psilearn.targets.cartesian import cartesian_basis

        to_irr = cartesian_basis(target.tensor).to_irreps  # (3**rank, n_irreps), orthogonal for rank <= 1
        irr_cov = np.einsum("ka,nkl,lb->nab", to_irr, cov, to_irr)
        return cls(values=values, std=np.sqrt(np.clip(np.einsum("nkk->nk", cov), 0.0, None)), irreps=target.to_irreps(values),
                   irreps_std=np.sqrt(np.clip(np.einsum("naa->na", irr_cov), 0.0, None)), cov=cov if return_cov else None,
                   target_key=target.key, **fields)

    @property
    def extra_arrays(self) -> dict[str, np.ndarray]:
        """Per-atom outputs besides the Target (flattened over structures): name -> (n_atoms_total, ...)."""
        out = {"qeq_electronegativity": self.chi}
        if self.atomic_dipoles is not None:
            out["qeq_atomic_dipoles"] = self.atomic_dipoles
        if self.charges_name != self.target_key:
            out[self.charges_name] = self.charges
            out[f"{self.charges_name}_std"] = self.charges_std
        return out

    @property
    def extra_info(self) -> dict[str, np.ndarray]:
        """Per-structure outputs besides the Target: name -> (n_structures, ...)."""
        out = {"qeq_energy": self.energy, "qeq_electrostatic_energy": self.electrostatic_energy}
        if self.dipole_name != self.target_key:
            out[self.dipole_name] = self.dipoles
            out[f"{self.dipole_name}_std"] = self.dipoles_std
        return out
