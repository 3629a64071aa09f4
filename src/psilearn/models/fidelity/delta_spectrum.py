"""Δ-learning of spectra (DOS, XANES, ... on a grid): what the ``delta`` kind needs beyond Cartesian targets.

Allowed with the spectrum kind's plain ``l2`` loss only: the model is then linear in the labels (kernel
regression per grid point plus a per-element baseline), so learning ``KEY - BASELINE`` on the target's
grid and adding the baseline back is well defined. The ``shift`` and ``align`` losses move each
*target* spectrum in energy during the fit; a difference of two spectra has no such energy reference
unless the baseline is moved with it, so they stay refused. The baseline spectrum must be on the
model's grid (a recorded ``BASELINE_grid`` or ``BASELINE_emin/_emax/_npts`` that differs is refused:
interpolate it beforehand, e.g. with the reader of ``fit-spectrum``).

With a baseline method (``fit-spectrum --baseline-method gfn2|XC/BASIS``) the target must be a density
of states: psilearn's labelers give orbital energies (Hartree) and each orbital's Löwdin weights on the
atoms, and the baseline is their DOS, Gaussian-broadened with the target's width on the target's grid
(in its energy units; absolute energies or relative to the HOMO, as the target's), i.e. exactly what the
labeler's ``dos`` label or :func:`psilearn.data.spectra.dos_from_orbitals` computes for the target. A
per-atom target (``--per atom``, e.g. the labeler's ``pdos``) gets the projected DOS: the same Gaussians,
each weighted by the atom's share of its orbital (``orbital_atom_weights``, :mod:`psilearn.label.projection`).
X-ray spectra, other spectra, non-energy grids and DOS units that are not states per grid unit are
refused with one line before any labelling.
"""

from __future__ import annotations

import re

import numpy as np
from ase import Atoms

from psilearn.data.errors import DataError, frame_location
from psilearn.data.spectra import ATOM_WEIGHTS_KEY, orbital_dos
from psilearn.errors import ConfigError

SHIFT_LOSSES_REFUSED = ("the spectrum losses 'shift' and 'align' move each target spectrum in energy during the fit; a "
                        "difference of two spectra has no energy reference of its own unless the baseline moves with it, so "
                        "Δ-learning of spectra takes the plain loss 'l2' only (--loss l2)")


def check_spectrum_inner(target, inner) -> None:
    """ConfigError unless a spectrum target is learned by the spectrum kind with loss 'l2' (``inner``:
    the inner model, or None before it is built)."""
    if not getattr(target, "is_spectrum", False):
        return
    if inner is not None and inner.kind != "spectrum":
        raise ConfigError(f"the delta model of the spectrum {target.key!r} needs the spectrum kind inside, not {inner.kind!r}")
    loss = getattr(getattr(inner, "config", None), "loss", "l2")
    if loss != "l2":
        raise ConfigError(f"--baseline with --loss {loss}: {SHIFT_LOSSES_REFUSED}")


def check_baseline_grid(frames: list[Atoms], target, key: str) -> None:
    """DataError (one line: file, frame, key) for a baseline spectrum whose recorded grid is not the target's."""
    if not getattr(target, "is_spectrum", False):
        return
    from psilearn.data.grids import frame_grid, same_grid

    grid = np.asarray(target.grid, dtype=np.float64)
    for i, a in enumerate(frames):
        g = frame_grid(a, key)
        if g is not None and not same_grid(g, grid):
            raise DataError(f"{frame_location(a, i)}: the baseline spectrum {key!r} is on another grid ({len(g)} points, "
                            f"{g[0]:g}..{g[-1]:g}) than the model's ({len(grid)} points, {grid[0]:g}..{grid[-1]:g}); "
                            "Δ-learning needs the baseline on the target's grid")


# ---- a DOS baseline computed by psilearn's labeler (--baseline-method) --------------------------------
#: what the labelers give for spectra: orbital energies (Hartree) and Löwdin weights, hence a (projected) density of states
DOS_KEY = re.compile(r"(^|_)p?dos(_|$)")
REFERENCES = ("none", "homo")


def _energy_factor(unit: str) -> float | None:
    """How many ``unit`` make one Hartree (``unit``: an energy unit of the unit table), or None if it is not one."""
    from psilearn.data.units import to_ase_factor

    try:
        return to_ase_factor("energy", "Hartree") / to_ase_factor("energy", unit)
    except ValueError:
        return None


def _refuse_spectrum(method: str, target, why: str) -> None:
    raise ConfigError(f"--baseline-method {method}: the spectrum {target.key!r} {why}")


def check_dos_target(method: str, target) -> float:
    """Grid units per Hartree of a DOS ``target`` (per structure, or per atom: a projected DOS) the labelers can
    compute; ConfigError (one line, before any labelling) for an X-ray spectrum, a per-pair target, a key that
    names no DOS, or grid/DOS units that do not fit."""
    if target.absorber:
        _refuse_spectrum(method, target, f"belongs to the {target.absorber} absorber (an X-ray spectrum): psilearn's labelers "
                         "compute orbital energies, hence a density of states, and no X-ray spectra")
    if target.per not in ("structure", "atom"):
        _refuse_spectrum(method, target, f"is per {target.per}: psilearn's labelers compute a DOS per structure and a "
                         "Löwdin-projected DOS per atom, nothing per pair")
    if not DOS_KEY.search(target.key.lower()):
        _refuse_spectrum(method, target, "is not named as a density of states (dos, dos_pbe0, pdos, ...): psilearn's labelers "
                         "compute orbital energies, hence a DOS (per atom: projected), and no other spectrum; name a DOS target after it")
    factor = _energy_factor(target.grid_units)
    if factor is None:
        _refuse_spectrum(method, target, f"has the grid units {target.grid_units or 'none'!r}: a DOS baseline from orbital "
                         "energies needs an energy grid; declare --grid-units Hartree (or eV, ...)")
    if target.units:
        per = target.units.replace(" ", "").split("/", 1)
        if len(per) != 2 or per[0].lower() not in ("states", "1", "") or _energy_factor(per[1]) != factor:
            _refuse_spectrum(method, target, f"is in {target.units!r}: the DOS from orbital energies on a grid in "
                             f"{target.grid_units} is in states/{target.grid_units}; values are never converted")
    return factor


def resolve_spectrum_method(method: str, target, sigma: float | None, reference: str = "none"):
    """The :class:`BaselineMethod` of a DOS target: the labeler's orbital energies (observable 'orbitals'),
    broadened with Gaussians of width ``sigma`` (grid units) on the target's grid, energies absolute or
    relative to the HOMO (``reference``); per atom, each Gaussian weighted by the atom's Löwdin weight
    (label ``orbital_atom_weights``). ConfigError (one line, before any labelling) otherwise."""
    from psilearn.label.xtb_methods import xtb_method
    from psilearn.models.fidelity.baseline_method import BaselineMethod, _labeler

    text = (method or "").strip().lower()
    text = xtb_method(text) or text
    factor = check_dos_target(text, target)
    if sigma is None or not float(sigma) > 0:
        _refuse_spectrum(text, target, "needs the Gaussian width of its broadening (grid units; fit-spectrum reads it from "
                         f"--from-orbitals or from info[{target.key + '_sigma'!r}] of TRAIN)")
    if reference not in REFERENCES:
        raise ConfigError(f"--baseline-method: the DOS reference must be one of {', '.join(REFERENCES)}, not {reference!r}")
    labeler = _labeler(text, "orbitals")
    derived = (("grid_units", target.grid_units), ("units_per_hartree", repr(factor)), ("reference", reference), ("sigma", repr(float(sigma))))
    label = ATOM_WEIGHTS_KEY if target.per == "atom" else "orbital_energies"
    return BaselineMethod(text, "orbitals", label, target.units or f"states/{target.grid_units}", labeler.method_hash(),
                          labeler.name, derived=derived)


def recorded_broadening(frames: list[Atoms], key: str) -> tuple[float | None, str]:
    """(Gaussian width, reference) the spectra ``key`` of ``frames`` (per structure in ``info``, per atom in ``arrays``)
    record in ``info`` (``key_sigma``, ``key_reference``; the labeler's ``dos`` and ``pdos`` and
    :func:`psilearn.data.spectra.dos_from_orbitals` write them); width None if none does.
    DataError (one line) when structures record different ones."""
    seen = {(float(a.info[key + "_sigma"]) if key + "_sigma" in a.info else None, str(a.info.get(key + "_reference", "none")))
            for a in frames if key in a.info or key in a.arrays}
    recorded = {s for s in seen if s[0] is not None}
    if len(recorded) > 1 or (recorded and len(seen) > 1):
        raise DataError(f"the spectra {key!r} record different broadenings ({key}_sigma, {key}_reference: {sorted(seen, key=str)}); "
                        "a baseline method needs one")
    return next(iter(recorded)) if recorded else (None, "none")


def method_spectrum_baseline(model, frames: list[Atoms]) -> np.ndarray:
    """DOS baselines of a spectrum DeltaModel with a baseline method: the labeler's orbital energies (through the
    model's label store) broadened on the target's grid as the target is; (n_structures, n_grid), or for a per-atom
    target the Löwdin-projected DOS (n_atoms_total, n_grid), atoms in frame order."""
    method, key = model.baseline_method, model.target.key
    how = dict(method.derived)
    sigma, reference, factor = float(how["sigma"]), how["reference"], float(how["units_per_hartree"])
    for i, a in enumerate(frames):  # an input that records its own broadening must record the model's
        if key + "_sigma" in a.info and (abs(float(a.info[key + "_sigma"]) - sigma) > 1e-9 * sigma
                                         or str(a.info.get(key + "_reference", "none")) != reference):
            raise DataError(f"{frame_location(a, i)}: {key!r} is broadened with {key}_sigma={float(a.info[key + '_sigma']):g} "
                            f"(reference {a.info.get(key + '_reference', 'none')}); the model's baseline with {sigma:g} ({reference})")
    labels, model.last_baseline_summary, model.last_baseline_seconds = method.stored_labels(
        frames, model.baseline_db, workers=model.baseline_workers, progress=model.progress)
    grid = np.asarray(model.target.grid, dtype=np.float64)
    per_atom = model.target.per == "atom"
    out = []
    for i, (a, lab) in enumerate(zip(frames, labels)):
        # Hartree -> grid units; per atom: projected with the stored Löwdin weights
        dos = orbital_dos(lab["info"], grid, sigma, reference, factor, frame_location(a, i), lab["arrays"] if per_atom else None)
        if dos is None:
            what = f"orbital energies with their Löwdin weights ({ATOM_WEIGHTS_KEY})" if per_atom else "orbital energies"
            old = " (a row labelled before psilearn stored them: use a new --baseline-db)" if per_atom else ""
            raise DataError(f"{frame_location(a, i)}: the baseline method {method.name} stored no {what}{old}")
        if per_atom and len(dos) != len(a):
            raise DataError(f"{frame_location(a, i)}: the baseline method {method.name} stored weights on {len(dos)} atoms, "
                            f"the structure has {len(a)}")
        out.append(np.atleast_2d(dos))
    return np.concatenate(out) if out else np.zeros((0, len(grid)))
