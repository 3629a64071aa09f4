"""Options of the kernel QEq model (YAML section ``model:``, or CLI flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from psilearn.config import Checks, Options, positive_number
from psilearn.models._kernel.gpr import REGULARIZATION_MODES, REGULARIZATION_RULE
from psilearn.physics.dipole import ORIGINS, PERIODIC_DIPOLES
from psilearn.physics.params import QEqParams

GLOBAL_STATE = ("constraint", "kernel")


@dataclass
class QEqConfig(Options):
    """Options of the QEq model (YAML ``model:`` section, or CLI flags).

    zeta, n_sparse, sparse_method, regularization, cv_folds, seed: as for SA-GPR.
    origin: dipole origin ``com`` | ``nuclear_charge`` | ``zero`` (see :mod:`.dipole`).
    periodic_dipole: ``as_stored`` | ``molecules`` (periodic cells, see :mod:`.dipole`).
    charges_key: per-atom reference charges (e) also fitted when the Target is a dipole.
    charge_weight: weight of each (normalised) charge row relative to a dipole row.
    dipole_units: units of dipole labels (default: the Target's units): e*A, e*Bohr, Debye.
    global_state: ``constraint`` (total charge only through sum q = Q; multiplicity validated) or
        ``kernel`` (also a Gaussian kernel of width ``state_width`` on (charge, unpaired
        electrons) in the chi model, so cations, anions and radicals get different chi).
    qeq: element parameters (:class:`.params.QEqParams`): width_scale, widths, hardness.
    width_scales: candidate Gaussian width scales (e.g. [0.5, 0.75, 1.0]); the one with the lowest
        k-fold error of the Target is kept (stored as qeq.width_scale). Empty: use qeq's.
    atomic_dipoles: add local atomic dipoles to the dipole (dipole Targets only).
    atomic_dipole_scales: candidate prior amplitudes of the atomic dipoles relative to chi (label
        units per eV/e); chosen by k-fold CV after the width.
    """

    section: ClassVar[str] = "model"

    zeta: float = 2.0
    n_sparse: int = 400
    sparse_method: str = "fps"
    regularization: str | float = "ml"
    cv_folds: int = 5
    seed: int = 0
    origin: str = "com"
    periodic_dipole: str = "as_stored"
    charges_key: str = ""
    charge_weight: float = 1.0
    dipole_units: str = ""
    global_state: str = "constraint"
    state_width: float = 1.0
    qeq: dict = field(default_factory=dict)
    width_scales: list[float] = field(default_factory=list)
    atomic_dipoles: bool = False
    atomic_dipole_scales: list[float] = field(default_factory=lambda: [0.03, 0.1, 0.3])

    def check(self, c: Checks) -> None:
        c.require(self.zeta >= 1, "zeta", "must be >= 1")
        c.require(self.n_sparse >= 1, "n_sparse", "must be >= 1")
        c.require(self.cv_folds >= 2, "cv_folds", "must be >= 2")
        c.one_of("sparse_method", ("fps", "cur"))
        c.require(self.regularization in REGULARIZATION_MODES or positive_number(self.regularization),
                  "regularization", REGULARIZATION_RULE)
        c.require(self.seed >= 0, "seed", "must be >= 0")
        c.one_of("global_state", GLOBAL_STATE)
        c.require(self.state_width > 0, "state_width", "must be > 0")
        c.require(all(w > 0 for w in self.width_scales), "width_scales", "must be positive numbers")
        c.require(bool(self.atomic_dipole_scales) and all(a > 0 for a in self.atomic_dipole_scales),
                  "atomic_dipole_scales", "must be a non-empty list of positive numbers")
        check_qeq_options(self, c)


def check_qeq_options(cfg, c: Checks) -> None:
    """Checks of the QEq options the kernel and NN backends share."""
    c.one_of("origin", ORIGINS)
    c.one_of("periodic_dipole", PERIODIC_DIPOLES)
    c.require(cfg.charge_weight >= 0, "charge_weight", "must be >= 0")
    c.nested(QEqParams, "qeq")  # validate early


@dataclass
class QEqNNConfig(Options):
    """QEq options of the NN backend (YAML ``model:`` section, or CLI flags).

    origin, periodic_dipole, charges_key, charge_weight, dipole_units, qeq: as for the kernel
    model (:class:`.model.QEqConfig`); ``qeq.width_scale`` is used as given (no CV over widths).
    learn_hardness: learn one hardness J_Z >= 0 (eV/e^2) per element with the network (bordered
        differentiable solve); otherwise J_Z is fixed at ``qeq.hardness`` (default 0).
    hardness_init: starting J_Z (eV/e^2, > 0) for elements without a value in ``qeq.hardness``.
    """

    section: ClassVar[str] = "model"
    unknown_hint: ClassVar[str] = " (network options go in the 'nn:' section, training options in 'nn_train:')"

    origin: str = "com"
    periodic_dipole: str = "as_stored"
    charges_key: str = ""
    charge_weight: float = 1.0
    dipole_units: str = ""
    qeq: dict = field(default_factory=dict)
    learn_hardness: bool = False
    hardness_init: float = 1.0

    def check(self, c: Checks) -> None:
        c.require(self.hardness_init > 0, "hardness_init", "must be > 0 (eV/e^2)")
        check_qeq_options(self, c)
