"""Options of the kernel QEq model (YAML section ``model:``, or CLI flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from psilearn.config import Checks, Options
from psilearn.models._kernel.options import SparseKernelOptions
from psilearn.physics.dipole import ORIGINS, PERIODIC_DIPOLES
from psilearn.physics.params import QEqParams

GLOBAL_STATE = ("auto", "constraint", "kernel")


@dataclass
class QEqOptions(Options):
    """The QEq options the kernel and NN backends share (YAML ``model:`` section, or CLI flags):
    ``origin``, ``periodic_dipole``, ``charges_key``, ``charge_weight``, ``dipole_units`` and the
    element parameters ``qeq`` (see :class:`QEqConfig`)."""

    section: ClassVar[str] = "model"

    origin: str = "com"
    periodic_dipole: str = "as_stored"
    charges_key: str = ""
    charge_weight: float = 1.0
    dipole_units: str = ""
    qeq: dict = field(default_factory=dict)

    def check(self, c: Checks) -> None:
        super().check(c)  # cooperative: QEqConfig also inherits the sparse-kernel checks
        c.one_of("origin", ORIGINS)
        c.one_of("periodic_dipole", PERIODIC_DIPOLES)
        c.require(self.charge_weight >= 0, "charge_weight", "must be >= 0")
        c.nested(QEqParams, "qeq")  # validate early


@dataclass
class QEqConfig(QEqOptions, SparseKernelOptions):
    """Options of the QEq model (YAML ``model:`` section, or CLI flags).

    zeta, n_sparse, sparse_method, regularization, cv_folds, seed: as for SA-GPR.
    origin: dipole origin ``com`` | ``nuclear_charge`` | ``zero`` (see :mod:`.dipole`).
    periodic_dipole: ``as_stored`` | ``molecules`` (periodic cells, see :mod:`.dipole`).
    charges_key: per-atom reference charges (e) also fitted when the Target is a dipole.
    charge_weight: weight of each (normalised) charge row relative to a dipole row.
    dipole_units: units of dipole labels (default: the Target's units): e*A, e*Bohr, Debye.
    global_state: ``constraint`` (total charge only through sum q = Q; multiplicity validated) or
        ``kernel`` (also a Gaussian kernel of width ``state_width`` on (charge, unpaired
        electrons) in the chi model, so cations, anions and radicals get different chi), or ``auto``
        (default): ``kernel`` when the training structures are in several electronic states, else
        ``constraint`` (stored as chosen).
    qeq: element parameters (:class:`.params.QEqParams`): width_scale, widths, hardness.
    width_scales: candidate Gaussian width scales (e.g. [0.5, 0.75, 1.0]); the one with the lowest
        k-fold error of the Target is kept (stored as qeq.width_scale). Empty: use qeq's.
    atomic_dipoles: add local atomic dipoles to the dipole (dipole Targets only).
    atomic_dipole_scales: candidate prior amplitudes of the atomic dipoles relative to chi (label
        units per eV/e); chosen by k-fold CV after the width.
    """

    global_state: str = "auto"
    state_width: float = 1.0
    width_scales: list[float] = field(default_factory=list)
    atomic_dipoles: bool = False
    atomic_dipole_scales: list[float] = field(default_factory=lambda: [0.03, 0.1, 0.3])

    def check(self, c: Checks) -> None:
        super().check(c)
        c.one_of("global_state", GLOBAL_STATE)
        c.require(self.state_width > 0, "state_width", "must be > 0")
        c.require(all(w > 0 for w in self.width_scales), "width_scales", "must be positive numbers")
        c.require(bool(self.atomic_dipole_scales) and all(a > 0 for a in self.atomic_dipole_scales),
                  "atomic_dipole_scales", "must be a non-empty list of positive numbers")


@dataclass
class QEqNNConfig(QEqOptions):
    """QEq options of the NN backend (YAML ``model:`` section, or CLI flags).

    origin, periodic_dipole, charges_key, charge_weight, dipole_units, qeq: as for the kernel
    model (:class:`.model.QEqConfig`); ``qeq.width_scale`` is used as given (no CV over widths).
    learn_hardness: learn one hardness J_Z >= 0 (eV/e^2) per element with the network (bordered
        differentiable solve); otherwise J_Z is fixed at ``qeq.hardness`` (default 0).
    hardness_init: starting J_Z (eV/e^2, > 0) for elements without a value in ``qeq.hardness``.
    """

    unknown_hint: ClassVar[str] = " (network options go in the 'nn:' section, training options in 'nn_train:')"

    learn_hardness: bool = False
    hardness_init: float = 1.0

    def check(self, c: Checks) -> None:
        super().check(c)
        c.require(self.hardness_init > 0, "hardness_init", "must be > 0 (eV/e^2)")
