"""The search space of ``psilearn fit --tune``: which settings are searched, over which ranges.

For the SA-GPR kind (``sagpr``) a trial sets, in the ``soap`` section, ``cutoff`` (2.5-8 Angstrom,
steps of 0.5), ``max_radial`` (3-12), ``max_angular`` (the smallest value the Target's channels
allow, up to 6 or that value + 2), ``density_width`` (0.15-0.8 Angstrom, log) and
``radial_scaling`` (off, or Willatt's c / (c + (r/r0)^m) with rate c = 1, exponent m 2-6 and
scale r0 1-4 Angstrom); in the ``model`` section ``zeta`` (1-4) and ``n_sparse`` (per element:
the data-scaled default times a factor 0.25-4, log, at most the element's number of environments).
The same space serves ``qeq`` (its electronegativity kernel is invariant, so
``max_angular`` only shapes the invariant SOAP) and ``spectrum`` (loss 'l2').
The regularisation is not searched: each trial's GP chooses it by its marginal likelihood (or as
the options file says). Every option stated in the options file is kept fixed, and the first
trial is the untuned configuration, so the study never reports worse than the defaults.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from psilearn.models._kernel.sparse import auto_sparse_size

#: kinds ``--tune`` can tune, and why the others cannot (yet)
TUNABLE = ("sagpr", "qeq", "spectrum")
NOT_TUNABLE = {
    "nn": "its training has no fast cross-validation; set nn/nn_train options by hand",
    "qeq-nn": "its training has no fast cross-validation; set nn/nn_train options by hand",
    "baseline": "it has no hyperparameters",
    "delta": "tune the inner kind's settings on the corrected labels instead",
}

DEFAULT_TRIAL = {"cutoff": 5.0, "max_radial": 6, "density_width": 0.3, "radial_scaling": False, "zeta": 2,
                 "n_sparse_factor": 1.0}


def tunable_error(kind, options: dict | None = None) -> str | None:
    """One line saying why ``kind`` (a name or a wrapped kind; with its validated ``options`` when
    known) cannot be tuned, or None."""
    name = kind if isinstance(kind, str) else getattr(kind, "kind", str(kind))
    loss = getattr((options or {}).get("model"), "loss", "l2")
    if name == "spectrum" and loss != "l2":
        return (f"--tune: spectrum models with loss {loss!r} cannot be tuned yet (their CV error is measured against "
                "each trial's own alignment); tune with loss l2, then refit with the chosen settings")
    if name == "per-element":  # each element's model is tuned on its own
        inner = getattr(kind, "inner_kind", "sagpr")
        return None if inner in TUNABLE else tunable_error(inner)
    if name in TUNABLE:
        return None
    why = NOT_TUNABLE.get(name, "only kernel kinds with a fast k-fold estimate can be tuned")
    return f"--tune: model kind {name!r} cannot be tuned yet ({why}); tunable kinds: {', '.join(TUNABLE)}"


@dataclass
class SearchSpace:
    """What a trial may set, given the user's options (``config``: {section: {option: value}}, kept
    fixed), the smallest ``max_angular`` the Target allows and the environments per element."""

    config: dict
    l_min: int
    counts: dict[int, int]
    fixed: set = field(default_factory=set)

    @classmethod
    def for_data(cls, config: dict, target, counts: dict[int, int]) -> "SearchSpace":
        l_top = max((b.l for b in target.blocks), default=0)
        fixed = {f"{s}.{k}" for s, opts in config.items() for k in (opts or {})}
        return cls(copy.deepcopy(config), (l_top + 1) // 2, dict(counts), fixed)

    def free(self, name: str) -> bool:
        return name not in self.fixed

    def ranges(self) -> dict:
        """The searched settings and their ranges (JSON, stored with the study)."""
        a_hi = max(6, self.l_min + 2)
        out = {"soap.cutoff": [2.5, 8.0, "step 0.5"], "soap.max_radial": [3, 12], "soap.max_angular": [max(self.l_min, 1), a_hi],
               "soap.density_width": [0.15, 0.8, "log"], "soap.radial_scaling": ["off", "rate 1, exponent 2-6, scale 1-4"],
               "model.zeta": [1, 4], "model.n_sparse": ["data-scaled default per element times", 0.25, 4.0, "log"]}
        return {k: v for k, v in out.items() if self.free(k)}

    def first_trial(self) -> dict:
        """Optuna parameters of the untuned configuration (the defaults, the user's options fixed)."""
        names = {"cutoff": "soap.cutoff", "max_radial": "soap.max_radial", "density_width": "soap.density_width",
                 "radial_scaling": "soap.radial_scaling", "zeta": "model.zeta", "n_sparse_factor": "model.n_sparse"}
        out = {k: v for k, v in DEFAULT_TRIAL.items() if self.free(names[k])}
        if self.free("soap.max_angular"):
            out["max_angular"] = max(4, self.l_min)
        return out

    def suggest(self, trial) -> dict:
        """The options dict of one Optuna trial (the user's options plus the suggested ones)."""
        soap = dict(self.config.get("soap") or {})
        model = dict(self.config.get("model") or {})
        if self.free("soap.cutoff"):
            soap["cutoff"] = trial.suggest_float("cutoff", 2.5, 8.0, step=0.5)
        if self.free("soap.max_radial"):
            soap["max_radial"] = trial.suggest_int("max_radial", 3, 12)
        if self.free("soap.max_angular"):
            soap["max_angular"] = trial.suggest_int("max_angular", max(self.l_min, 1), max(6, self.l_min + 2))
        if self.free("soap.density_width"):
            soap["density_width"] = trial.suggest_float("density_width", 0.15, 0.8, log=True)
        if self.free("soap.radial_scaling") and trial.suggest_categorical("radial_scaling", [False, True]):
            soap["radial_scaling"] = {"rate": 1.0, "exponent": trial.suggest_int("scaling_exponent", 2, 6),
                                      "scale": trial.suggest_float("scaling_scale", 1.0, 4.0)}
        if self.free("model.zeta"):
            model["zeta"] = trial.suggest_int("zeta", 1, 4)
        if self.free("model.n_sparse"):
            factor = trial.suggest_float("n_sparse_factor", 0.25, 4.0, log=True)
            if factor != DEFAULT_TRIAL["n_sparse_factor"]:  # the untuned trial keeps the data-scaled default, which a
                model["n_sparse"] = self.n_sparse(factor)  # fit may shrink to fit in memory (stated sizes never change)
        out = {k: v for k, v in self.config.items() if k not in ("soap", "model")}
        return {**out, "soap": soap, "model": model}

    def n_sparse(self, factor: float) -> dict[str, int]:
        """{symbol: M_Z}: the data-scaled default times ``factor``, between 1 and n_Z."""
        from ase.data import chemical_symbols

        return {chemical_symbols[z]: int(max(1, min(n, round(factor * auto_sparse_size(n))))) for z, n in sorted(self.counts.items())}
