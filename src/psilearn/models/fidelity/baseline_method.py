"""A baseline computed by psilearn's own labeler (``psilearn fit --baseline-method gfn2|XC/BASIS``).

The Target's key is mapped to one label key of the labelers (``dipole_moment_input`` -> observable
``dipole``, key ``dipole_moment`` in e*Bohr), the Target's declared units are checked against the
label's atomic units through the one unit table (:mod:`psilearn.data.units`), and structures are
labelled through a resumable label store (:func:`psilearn.label.campaign.run_campaign`): a structure
already labelled there with the same method hash is never labelled again, at fit or at predict time.

Density and Hamiltonian targets (:data:`FIELD_LABELS`): the label is the target's own observable,
computed in the target's basis: a density baseline is fitted by the labeler in the target's aux basis
and metric (the method's orbital basis is free), a Fock matrix baseline must come from a method in
the target's AO basis (another basis is refused before any labelling); xTB methods give neither.

Per-pair targets (J couplings, :data:`PAIR_LABELS`): the labeler's per-pair label with its own pair
list (``jcoupling_pairs``); :mod:`psilearn.models.fidelity.delta_pairs` takes it on the target's
pairs. Spectra (a DOS): the labeler's orbital energies, broadened on the target's grid with the
target's width (``derived``; :mod:`psilearn.models.fidelity.delta_spectrum`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from psilearn.data.errors import frame_location
from psilearn.data.units import UNITS as UNIT_TABLE
from psilearn.data.units import canonical_unit, to_ase_factor
from psilearn.errors import ConfigError, DataError
from psilearn.label.base import OBSERVABLE_KEYS, UNITS
from psilearn.label.xtb_methods import xtb_method
from psilearn.targets import Target

#: label keys a Cartesian-tensor Target can take as its baseline -> whether they are per atom
LEARNABLE: dict[str, str] = {
    **{k: "structure" for k in ("total_energy", "dipole_moment", "quadrupole_moment", "alpha", "homo", "lumo", "gap",
                                "gtensor", "g_iso", "delta_g", "delta_g_iso")},
    **{k: "atom" for k in ("atomic_forces", "mulliken_charges", "hirshfeld_charges", "shielding", "apt", "efg", "efg_cq",
                           "efg_eta", "mulliken_spins", "hirshfeld_spins", "hfc", "hfc_iso")},
    **{k: "pair" for k in ("jcoupling", "jcoupling_iso")},
}
#: Cartesian rank of one value of each per-structure and per-atom label of LEARNABLE (0 scalar, 1 vector, 2 3x3)
LABEL_RANK: dict[str, int] = {
    **{k: 0 for k in ("total_energy", "homo", "lumo", "gap", "g_iso", "delta_g_iso", "mulliken_charges", "hirshfeld_charges",
                      "efg_cq", "efg_eta", "mulliken_spins", "hirshfeld_spins", "hfc_iso")},
    **{k: 1 for k in ("dipole_moment", "atomic_forces")},
    **{k: 2 for k in ("quadrupole_moment", "alpha", "gtensor", "delta_g", "shielding", "apt", "efg", "hfc")},
}
#: per-pair label key -> (the label key of its pair list, the rank of one pair's value)
PAIR_LABELS: dict[str, tuple[str, int]] = {"jcoupling": ("jcoupling_pairs", 2), "jcoupling_iso": ("jcoupling_pairs", 0)}
#: other names of an observable's value in a Target key -> the label key
ALIASES: dict[str, str] = {"energy": "total_energy", "dipole": "dipole_moment", "mu": "dipole_moment",
                           "quadrupole": "quadrupole_moment", "polarizability": "alpha", "forces": "atomic_forces",
                           "charges": "mulliken_charges"}
#: label key -> its observable (the inverse of OBSERVABLE_KEYS, first observable that writes it)
OBSERVABLE_OF: dict[str, str] = {}
for _obs, _keys in OBSERVABLE_KEYS.items():
    for _k in _keys:
        OBSERVABLE_OF.setdefault(_k, _obs)
#: target kind of density and Hamiltonian targets -> (label key, the labels describing its basis)
FIELD_LABELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "density": ("density_coefficients", ("density_aux_basis", "density_metric", "density_aux_shells")),
    "hamiltonian": ("hamiltonian", ("hamiltonian_basis", "hamiltonian_shells")),
}
#: model kinds of density and Hamiltonian targets (the inner kinds of a field delta model) -> the target kind they learn
FIELD_INNER = {"density": "density", "hamiltonian": "hamiltonian", "hamiltonian-sagpr": "hamiltonian"}


def check_field_method(method: str, kind: str, label: str | None = None) -> str:
    """The label key of the baseline of a target learned by model kind ``kind`` ('density', 'hamiltonian',
    'hamiltonian-sagpr'); ConfigError (one line, before any data is read) for an xTB method (it computes
    neither) or another ``label``."""
    kind = FIELD_INNER.get(kind, kind)
    found = FIELD_LABELS[kind][0]
    if xtb_method(method):
        raise ConfigError(f"--baseline-method {method.strip()}: xTB methods compute no {kind} labels ({found} in a PySCF "
                          "basis); use XC/BASIS (e.g. hf/def2-svp)")
    if label and label != found:
        raise ConfigError(f"--baseline-label {label!r}: the baseline of a {kind} target is the labeler's {found!r}")
    return found


def campaign_record(summary, seconds: float, checked=None) -> dict:
    """The training record of a baseline method's labels: how many structures, their stored compute seconds
    (summed however many were reused), and how many this fit labelled and reused. ``summary``: the fit's own
    campaign; ``checked``: the one the CLI ran just before (``check_baseline``), whose labels the fit then reuses:
    on the same structures (the same label keys, not only as many) they count as labelled by this fit."""
    before = checked.done if checked is not None and checked.keys == summary.keys else 0
    return {"n_structures": summary.n_input, "label_seconds": round(seconds, 3), "labelled_now": summary.done + before,
            "reused_from_store": max(summary.skipped - before, 0)}


def label_unit(label: str) -> str:
    """The unit of a label key as :data:`psilearn.label.base.UNITS` states it ('e*Bohr', 'Bohr^3', 'Hartree')."""
    text = UNITS[label].split(",")[0].strip()
    return re.sub(r"\s*\(a\.u\.\)$", "", text)


def _quantity(unit: str) -> str | None:
    """The quantity of the unit table (psilearn.data.units) that knows ``unit``, if any."""
    key = canonical_unit(unit)
    for quantity, (_, names) in UNIT_TABLE.items():
        if key in {canonical_unit(n) for n in names}:
            return quantity
    return None


def label_for_target(target: Target, label: str | None = None) -> str:
    """The label key providing the baseline of ``target``: ``label`` if given, else the Target's key
    (``_input`` suffixes removed; aliases such as ``dipole``/``polarizability``; or a label key
    followed by ``_`` and a level name, e.g. ``alpha_pbe0``). ConfigError if there is none."""
    choices = ", ".join(LEARNABLE)
    if label:
        if label not in LEARNABLE:
            raise ConfigError(f"--baseline-label: {label!r} is not a label the labelers compute for a Cartesian or per-pair "
                              f"target; choose from {choices}")
        found = label
    else:
        key = target.key
        while key.endswith("_input"):
            key = key[: -len("_input")]
        names = {**{k: k for k in LEARNABLE}, **ALIASES}
        found = names.get(key)
        if found is None:  # a label key followed by a level name: alpha_pbe0, dipole_moment_dft
            prefixes = sorted((n for n in names if key.startswith(n + "_")), key=len, reverse=True)
            found = names[prefixes[0]] if prefixes else None
        if found is None:
            raise ConfigError(f"--baseline-method: the target {target.key!r} has no labeler observable: name it after "
                              f"a label key ({choices}; a suffix such as _input or _pbe0 is allowed) or give "
                              f"--baseline-label LABEL")
    if LEARNABLE[found] != target.per:
        raise ConfigError(f"--baseline-method: the label {found!r} is per {LEARNABLE[found]}, the target {target.key!r} "
                          f"per {target.per}")
    if found in LABEL_RANK and LABEL_RANK[found] != target.rank:
        raise ConfigError(f"--baseline-method: the label {found!r} is a rank-{LABEL_RANK[found]} tensor, the target {target.key!r} "
                          f"of rank {target.rank}; give --baseline-label with a label of rank {target.rank}")
    if found in PAIR_LABELS and PAIR_LABELS[found][1] != target.rank:
        other = [k for k, (_, r) in PAIR_LABELS.items() if r == target.rank]
        raise ConfigError(f"--baseline-method: the label {found!r} is a rank-{PAIR_LABELS[found][1]} value per pair, the target "
                          f"{target.key!r} of rank {target.rank}" + (f"; use --baseline-label {other[0]}" if other else ""))
    if found in PAIR_LABELS and target.parity != 1:
        raise ConfigError(f"--baseline-method: the label {found!r} is a true (polar) tensor, the target {target.key!r} is declared pseudo")
    return found


def check_units(target: Target, label: str) -> None:
    """ConfigError unless the Target's declared units are the label's (atomic) units, compared through
    the unit table: 'e*Bohr', 'a.u.' and 'e a0' are one dipole unit; values are never converted."""
    unit = label_unit(label)
    if not target.units:
        raise ConfigError(f"--baseline-method: declare the units of {target.key!r} with --units (Target.units): the "
                          f"baseline {label!r} is in {unit}, and values are never converted")
    quantity = _quantity(unit)
    if quantity is not None:
        try:
            same = abs(to_ase_factor(quantity, target.units) / to_ase_factor(quantity, unit) - 1) < 1e-12
        except ValueError:
            same = False
    else:
        atomic = "(a.u.)" in UNITS[label]
        same = canonical_unit(target.units) in {canonical_unit(unit)} | ({"au"} if atomic else set())
    if not same:
        raise ConfigError(f"--baseline-method: the target {target.key!r} is in {target.units!r} but the baseline "
                          f"{label!r} is in {unit}; values are never converted: convert the labels and declare {unit}")


@dataclass(frozen=True)
class BaselineMethod:
    """A labeler method providing one label key as the baseline of a Target.

    ``method`` is canonical ('gfn2', 'pbe0/def2-svp'); ``method_hash`` the labeler's hash (recorded at
    fit; at predict time the labeler built from ``method`` must reproduce it)."""

    method: str
    observable: str
    label: str
    units: str
    method_hash: str
    name: str
    options: tuple[tuple[str, str], ...] = ()  # labeler options (density: the target's aux basis and metric)
    derived: tuple[tuple[str, str], ...] = ()  # how the baseline is made from the label (spectra: grid units, width, reference)

    @classmethod
    def resolve(cls, method: str, target, label: str | None = None) -> "BaselineMethod":
        """ConfigError for an unknown method, a Target without a labeler observable, a label the
        method cannot compute, or units that differ; density and Hamiltonian targets: :meth:`resolve_field`."""
        text = (method or "").strip().lower()
        if not text:
            raise ConfigError("--baseline-method: the method is empty (gfn2, gfn1 or XC/BASIS)")
        if getattr(target, "kind", None) in FIELD_LABELS:
            return cls.resolve_field(text, target, label)
        text = xtb_method(text) or text
        found = label_for_target(target, label)
        check_units(target, found)
        observable = OBSERVABLE_OF[found]
        labeler = _labeler(text, observable)
        return cls(text, observable, found, label_unit(found), labeler.method_hash(), labeler.name)

    @classmethod
    def resolve_field(cls, method: str, target, label: str | None = None) -> "BaselineMethod":
        """The baseline of a density or Hamiltonian ``target``, in its basis: a density fitted in the
        target's aux basis and metric; a Fock matrix from a method in the target's AO basis. ConfigError
        (one line, before any labelling) for xTB methods, another AO basis, or another label."""
        kind = target.kind
        found = check_field_method(method, kind, label)
        options = {"density_aux_basis": target.aux_basis, "density_metric": target.metric} if kind == "density" else {}
        labeler = _labeler(method, kind, options)
        if kind == "hamiltonian":
            from psilearn.targets.ao_basis import normalise_aux_basis

            have = normalise_aux_basis(labeler.basis)
            if have != target.basis:
                raise ConfigError(f"--baseline-method {method}: its Fock matrix is in the AO basis {have!r}, the target "
                                  f"{target.key!r} in {target.basis!r}; Δ-learning needs the baseline in the same basis "
                                  f"(e.g. hf/{target.basis})")
        return cls(method, kind, found, target.units, labeler.method_hash(), labeler.name, tuple(sorted(options.items())))

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "BaselineMethod":
        options = tuple(sorted((str(k), str(v)) for k, v in (record.get("options") or {}).items()))
        derived = tuple(sorted((str(k), str(v)) for k, v in (record.get("derived") or {}).items()))
        return cls(**{k: str(record[k]) for k in ("method", "observable", "label", "units", "method_hash", "name")}, options=options,
                   derived=derived)

    def record(self) -> dict[str, Any]:
        return {"method": self.method, "observable": self.observable, "label": self.label, "units": self.units,
                "method_hash": self.method_hash, "name": self.name, **({"options": dict(self.options)} if self.options else {}),
                **({"derived": dict(self.derived)} if self.derived else {})}

    @property
    def key(self) -> str:
        """The key the baseline values get in copies of the input frames (never the input's own keys)."""
        return f"{self.label}@{self.method}"

    def labeler(self):
        """The labeler; ConfigError if its method hash is not the recorded one (another code version or options)."""
        labeler = _labeler(self.method, self.observable, dict(self.options))
        if labeler.method_hash() != self.method_hash:
            raise ConfigError(f"the baseline method {self.name} now hashes to {labeler.method_hash()[:12]}, not "
                              f"{self.method_hash[:12]} as when the model was fitted (spec now: {labeler.spec()}); "
                              f"the baseline would not be the one the correction was learned on: refit the model")
        return labeler

    def stored_labels(self, frames: list[Atoms], db: str | Path, workers: int = 0, progress: bool = False):
        """Each structure's stored labels (the row's ``{"info": ..., "arrays": ...}``) of this method, labelled
        through the store ``db`` (labels already there for this method hash are reused), the campaign summary,
        and the summed compute seconds the store records for these labels (however many were reused).
        DataError (one line) for a structure that could not be labelled."""
        from psilearn.label.campaign import run_campaign
        from psilearn.label.store import LabelStore

        summary = run_campaign(frames, self.labeler(), db, workers=workers, progress=progress)
        wanted = set(summary.keys)
        rows = {r.key_value_pairs["label_key"]: r for r in LabelStore(db).rows(method_hash=self.method_hash, label_status="ok")
                if r.key_value_pairs["label_key"] in wanted}
        failed = {shash: (stage, reason) for _, shash, stage, reason in summary.failures}
        out, seconds = [], 0.0
        for i, lkey in enumerate(summary.keys):
            if lkey not in rows:
                stage, reason = failed.get(lkey.split("-")[0], ("?", "no label stored"))
                raise DataError(f"{frame_location(frames[i], i)}: --baseline-method {self.name} could not label it ({stage}): {reason} "
                                f"(database {db}; psilearn label --retry-failed relabels failures)")
            seconds += float(rows[lkey].key_value_pairs.get("label_seconds", 0.0))
            data = rows[lkey].data or {}
            out.append({"info": data.get("info", {}), "arrays": data.get("arrays", {})})
        return out, summary, seconds

    def label_frames(self, frames: list[Atoms], db: str | Path, workers: int = 0, progress: bool = False):
        """Copies of ``frames`` carrying the baseline under :attr:`key` (density and Hamiltonian labels also
        the labels describing its basis, as ``KEY_aux_basis``, ``KEY_metric``, ``KEY_basis``, ...; per-pair
        labels their pair list as ``KEY_pairs``), labelled through the store ``db`` (:meth:`stored_labels`),
        the campaign summary, and the summed compute seconds the store records for these labels."""
        labels, summary, seconds = self.stored_labels(frames, db, workers, progress)
        out = []
        for i, (atoms, data) in enumerate(zip(frames, labels)):
            where = "arrays" if LEARNABLE.get(self.label) == "atom" else "info"
            if self.label not in data[where]:
                raise DataError(f"--baseline-method {self.name}: the labeler wrote no {self.label!r} for structure {i}")
            copy = atoms.copy()
            getattr(copy, where)[self.key] = data[where][self.label]
            for name in FIELD_LABELS.get(self.observable, ("", ()))[1]:  # e.g. density_aux_basis -> KEY_aux_basis
                if name in data["info"]:
                    copy.info[f"{self.key}_{name.split('_', 1)[1]}"] = data["info"][name]
            if self.label in PAIR_LABELS:  # jcoupling_pairs -> KEY_pairs
                copy.info[f"{self.key}_pairs"] = data["info"][PAIR_LABELS[self.label][0]]
            if self.observable == "density" and "density_core_electrons" in data.get("arrays", {}):  # ECPs of its basis
                copy.arrays[f"{self.key}_core_electrons"] = np.asarray(data["arrays"]["density_core_electrons"])
            out.append(copy)
        return out, summary, seconds


def _labeler(method: str, observable: str, options: dict | None = None):
    from psilearn.label.registry import make_labeler

    try:
        return make_labeler(method, (observable,), **(options or {}))
    except ValueError as exc:
        raise ConfigError(f"--baseline-method {method!r}: {exc}") from None
