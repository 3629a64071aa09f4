"""Options of the kernel QEq model (YAML section ``model:``, or CLI flags)."""

from __future__ import annotations

from dataclasses import dataclass, field

from psilearn.physics.dipole import ORIGINS, PERIODIC_DIPOLES
from psilearn.physics.params import QEqParams

GLOBAL_STATE = ("constraint", "kernel")


@dataclass
class QEqConfig:
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
    width_scales: list = field(default_factory=list)
    atomic_dipoles: bool = False
    atomic_dipole_scales: list = field(default_factory=lambda: [0.03, 0.1, 0.3])

    @classmethod
    def from_dict(cls, d: dict | None) -> "QEqConfig":
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        if set(d) - known:
            raise ValueError(f"unknown QEq model options {sorted(set(d) - known)}; known: {sorted(known)}")
        cfg = cls(**d)
        if cfg.zeta < 1 or cfg.n_sparse < 1 or cfg.cv_folds < 2:
            raise ValueError("QEq options: zeta must be >= 1, n_sparse >= 1, cv_folds >= 2")
        if cfg.sparse_method not in ("fps", "cur"):
            raise ValueError("sparse_method must be 'fps' or 'cur'")
        if not (cfg.regularization in ("ml", "cv") or _positive(cfg.regularization)):
            raise ValueError("regularization must be 'ml', 'cv' or a positive number")
        if cfg.origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}")
        if cfg.periodic_dipole not in PERIODIC_DIPOLES:
            raise ValueError(f"periodic_dipole must be one of {PERIODIC_DIPOLES}")
        if cfg.global_state not in GLOBAL_STATE:
            raise ValueError(f"global_state must be one of {GLOBAL_STATE}")
        if cfg.charge_weight < 0 or cfg.state_width <= 0:
            raise ValueError("charge_weight must be >= 0 and state_width > 0")
        QEqParams.from_dict(cfg.qeq)  # validate early
        if any(not _positive(w) for w in cfg.width_scales):
            raise ValueError("width_scales must be positive numbers")
        if not cfg.atomic_dipole_scales or any(not _positive(a) for a in cfg.atomic_dipole_scales):
            raise ValueError("atomic_dipole_scales must be a non-empty list of positive numbers")
        return cfg


def _positive(x) -> bool:
    try:
        return float(x) > 0
    except (TypeError, ValueError):
        return False


@dataclass
class QEqNNConfig:
    """QEq options of the NN backend (YAML ``model:`` section, or CLI flags).

    origin, periodic_dipole, charges_key, charge_weight, dipole_units, qeq: as for the kernel
    model (:class:`.model.QEqConfig`); ``qeq.width_scale`` is used as given (no CV over widths).
    learn_hardness: learn one hardness J_Z >= 0 (eV/e^2) per element with the network (bordered
        differentiable solve); otherwise J_Z is fixed at ``qeq.hardness`` (default 0).
    hardness_init: starting J_Z (eV/e^2, > 0) for elements without a value in ``qeq.hardness``.
    """

    origin: str = "com"
    periodic_dipole: str = "as_stored"
    charges_key: str = ""
    charge_weight: float = 1.0
    dipole_units: str = ""
    qeq: dict = field(default_factory=dict)
    learn_hardness: bool = False
    hardness_init: float = 1.0

    @classmethod
    def from_dict(cls, d: dict | None) -> "QEqNNConfig":
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        if set(d) - known:
            raise ValueError(f"unknown qeq-nn model options {sorted(set(d) - known)}; known: {sorted(known)} "
                             "(network options go in the 'nn:' section, training options in 'nn_train:')")
        cfg = cls(**d)
        if cfg.origin not in ORIGINS:
            raise ValueError(f"origin must be one of {ORIGINS}")
        if cfg.periodic_dipole not in PERIODIC_DIPOLES:
            raise ValueError(f"periodic_dipole must be one of {PERIODIC_DIPOLES}")
        if cfg.charge_weight < 0:
            raise ValueError("charge_weight must be >= 0")
        if not cfg.hardness_init > 0:
            raise ValueError("hardness_init must be > 0 (eV/e^2)")
        QEqParams.from_dict(cfg.qeq)  # validate early
        return cfg
