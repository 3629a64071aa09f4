"""Predictions into structures: the one writer of a model's Prediction into ASE Atoms.

Conventions (those of the labels, see docs/architecture.md): a per-structure target goes to
``atoms.info[KEY]``, a per-atom target to ``atoms.arrays[KEY]``, flattened row-major (a scalar is a
float per structure, or one number per atom); ``KEY_std`` holds the predictive standard deviation;
a label ``KEY`` already present is kept as ``KEY_reference``. Spectrum targets also record their
grid in ``info[KEY_grid]``. By-products of a prediction (``extra_info`` per structure and
``extra_arrays`` per atom, e.g. QEq charges next to a predicted dipole) are written under their own
names, an existing one kept as ``NAME_reference``.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.data.grids import GRID_SUFFIX
from psilearn.data.pairs import pair_offsets
from psilearn.data.prediction import DensityPrediction, HamiltonianPrediction, Prediction


def atom_offsets(frames: list[Atoms]) -> np.ndarray:
    """(n_frames + 1,) start of each structure's atoms in per-atom arrays concatenated over ``frames``."""
    return np.concatenate([[0], np.cumsum([len(a) for a in frames])]).astype(int)


def _per_structure(v: np.ndarray):
    return float(v[0]) if v.shape[0] == 1 else v


def _per_atom(v: np.ndarray) -> np.ndarray:
    return v[:, 0] if v.shape[1] == 1 else v


def _write_extras(atoms: Atoms, pred: Prediction, i: int, atoms_slice: slice) -> None:
    for name, values in getattr(pred, "extra_info", {}).items():
        if name in atoms.info and f"{name}_reference" not in atoms.info:
            atoms.info[f"{name}_reference"] = atoms.info[name]
        v = np.asarray(values[i])
        atoms.info[name] = float(v) if v.ndim == 0 else v
    for name, values in getattr(pred, "extra_arrays", {}).items():
        if name in atoms.arrays and f"{name}_reference" not in atoms.arrays:
            atoms.arrays[f"{name}_reference"] = atoms.arrays.pop(name)
        atoms.arrays[name] = np.asarray(values[atoms_slice])


def _write_field_extras(atoms: Atoms, pred, i: int, key: str) -> None:
    """A delta model's baseline and correction of structure ``i`` (density coefficients or F), flat,
    as ``KEY_baseline`` and ``KEY_correction`` (existing ones kept as ``NAME_reference``)."""
    for part in ("baseline", "correction"):
        values = getattr(pred, part, None)
        if values is None:
            continue
        name = f"{key}_{part}"
        if name in atoms.info:
            atoms.info[f"{name}_reference"] = atoms.info.pop(name)
        atoms.info[name] = np.asarray(values[i], dtype=np.float64).ravel()


def _density_to_atoms(frames: list[Atoms], pred: DensityPrediction, target, with_std: bool) -> list[Atoms]:
    """Density predictions in the labeler's layout (a valid density-labelled file): ``KEY`` (flat,
    PySCF's order), ``density_aux_basis``, ``density_metric``, ``density_aux_shells``,
    ``density_electrons`` (when computed), ``KEY_std`` (when the model has one) and the per-atom
    ``density_core_electrons`` of the model's target (ECPs; zeros without); labels already
    present are kept as ``NAME_reference``."""
    if len(pred.coefficients) != len(frames):
        raise ValueError(f"{len(pred.coefficients)} predicted densities for {len(frames)} structures")
    out = []
    for i, a in enumerate(frames):
        b = a.copy()
        b.calc = None
        values = {target.key: np.asarray(pred.coefficients[i], dtype=np.float64), "density_aux_basis": pred.aux_basis,
                  "density_metric": pred.metric, "density_aux_shells": target.shells_text()}
        if pred.electrons is not None:
            values["density_electrons"] = float(pred.electrons[i])
        if with_std and pred.std is not None:
            values[f"{target.key}_std"] = np.asarray(pred.std[i], dtype=np.float64)
        for name in (target.key, "density_electrons"):
            if name in b.info and name in values:
                b.info[f"{name}_reference"] = b.info.pop(name)
        b.info.update(values)
        if hasattr(target, "core_of"):  # the ECP core electrons the predicted density leaves out
            b.arrays["density_core_electrons"] = target.core_of(b)
        _write_field_extras(b, pred, i, target.key)
        out.append(b)
    return out


def _hamiltonian_to_atoms(frames: list[Atoms], pred: HamiltonianPrediction, target, with_std: bool) -> list[Atoms]:
    """Hamiltonian predictions in the labeler's layout: ``KEY`` (F, Hartree, flat row-major, PySCF's
    AO order), ``hamiltonian_basis``, ``hamiltonian_shells`` and ``KEY_std`` (when the model has one);
    labels already present (F and what derives from it) are kept as ``NAME_reference``."""
    if len(pred.matrices) != len(frames):
        raise ValueError(f"{len(pred.matrices)} predicted hamiltonians for {len(frames)} structures")
    out = []
    for i, a in enumerate(frames):
        b = a.copy()
        b.calc = None
        for name in (target.key, f"{target.key}_std", "orbital_energies", "mo_occ", "homo", "lumo", "gap", "dipole_moment"):
            if name in b.info:
                b.info[f"{name}_reference"] = b.info.pop(name)
        b.info[target.key] = np.asarray(pred.matrices[i], dtype=np.float64).ravel()
        b.info["hamiltonian_basis"] = pred.basis
        b.info["hamiltonian_shells"] = target.shells_text()
        if with_std and pred.std is not None:
            b.info[f"{target.key}_std"] = np.asarray(pred.std[i], dtype=np.float64).ravel()
        _write_field_extras(b, pred, i, target.key)
        out.append(b)
    return out


def _pairs_to_atoms(frames: list[Atoms], pred: Prediction, target, with_std: bool) -> list[Atoms]:
    """Per-pair predictions in the labels' layout (:mod:`psilearn.data.pairs`): ``KEY_pairs``
    (2P ints), ``KEY`` (P * 3**rank, row-major) and ``KEY_std``, none of them for a structure without
    a pair; a label ``KEY`` already present is kept as ``KEY_reference`` (for the same pairs: the
    model predicts the pairs a file lists)."""
    if pred.pairs is None or len(pred.pairs) != len(frames):
        raise ValueError("a per-pair prediction needs the pairs of every structure")
    ends = pair_offsets(pred.pairs)
    if len(pred.values) != ends[-1]:
        raise ValueError(f"{len(pred.values)} predicted values for {ends[-1]} pairs")
    out = []
    for i, a in enumerate(frames):
        b = a.copy()
        b.calc = None
        key, sl = target.key, slice(ends[i], ends[i + 1])
        if key in b.info:
            b.info[f"{key}_reference"] = b.info.pop(key)
        b.info.pop(target.pairs_key, None)
        if ends[i + 1] == ends[i]:  # no pair: nothing to write (extxyz cannot hold an empty array)
            out.append(b)
            continue
        b.info[target.pairs_key] = np.asarray(pred.pairs[i], dtype=np.int64).ravel()
        b.info[key] = np.asarray(pred.values[sl], dtype=np.float64).ravel()
        if with_std:
            b.info[f"{key}_std"] = np.asarray(pred.std[sl], dtype=np.float64).ravel()
        for name, v in getattr(pred, "pair_extras", {}).items():  # e.g. a delta model's baseline and correction
            b.info[name] = np.asarray(v[sl], dtype=np.float64).ravel()
        out.append(b)
    return out


def predictions_to_atoms(frames: list[Atoms], pred: Prediction | DensityPrediction | HamiltonianPrediction, target,
                         with_std: bool = True) -> list[Atoms]:
    """Copies of ``frames`` (calculators dropped) carrying ``pred``, the prediction of ``target``
    (a :class:`psilearn.targets.Target`) for them, as described in the module docstring.
    ``with_std=False`` writes no ``KEY_std`` (for predictions made without uncertainties). A
    :class:`DensityPrediction` or :class:`HamiltonianPrediction` is written in its labeler's layout."""
    if isinstance(pred, DensityPrediction):
        return _density_to_atoms(frames, pred, target, with_std)
    if isinstance(pred, HamiltonianPrediction):
        return _hamiltonian_to_atoms(frames, pred, target, with_std)
    if target.per == "pair":
        return _pairs_to_atoms(frames, pred, target, with_std)
    key, per = target.key, target.per
    offsets = atom_offsets(frames)
    n = len(frames) if per == "structure" else int(offsets[-1])
    if len(pred.values) != n:
        raise ValueError(f"{len(pred.values)} predicted values for {n} {'structures' if per == 'structure' else 'atoms'}")
    grid = np.asarray(target.grid, dtype=np.float64) if getattr(target, "is_spectrum", False) else None
    out = []
    for i, a in enumerate(frames):
        b = a.copy()
        b.calc = None
        sl = slice(offsets[i], offsets[i + 1])
        if per == "structure":
            if key in b.info:
                b.info[f"{key}_reference"] = b.info.pop(key)
            b.info[key] = _per_structure(pred.values[i])
            if with_std:
                b.info[f"{key}_std"] = _per_structure(pred.std[i])
        else:
            if key in b.arrays:
                b.arrays[f"{key}_reference"] = b.arrays.pop(key)
            b.arrays[key] = _per_atom(pred.values[sl])
            if with_std:
                b.arrays[f"{key}_std"] = _per_atom(pred.std[sl])
        if grid is not None:
            b.info[key + GRID_SUFFIX] = grid.copy()
        _write_extras(b, pred, i, sl)
        out.append(b)
    return out


def cartesian_per_structure(frames: list[Atoms], pred: Prediction, target) -> list[tuple]:
    """(value, std) per structure of ``frames``, shaped as the Target: a float for a scalar,
    (3,) * rank for a Cartesian tensor, (n_grid,) for a spectrum; per-atom targets get a leading
    axis of the structure's atoms ((n_atoms,) for a scalar, (n_atoms, 3) for a vector, ...)."""
    shape = (target.size,) if getattr(target, "is_spectrum", False) else (3,) * target.rank
    offsets = atom_offsets(frames)
    if target.per == "pair":  # a leading axis of the structure's pairs (pred.pairs)
        offsets = pair_offsets(pred.pairs)
    out = []
    for i in range(len(frames)):
        if target.per == "structure":
            val, std = pred.values[i].reshape(shape), pred.std[i].reshape(shape)
            if not shape:
                val, std = float(val), float(std)
        else:
            sl = slice(offsets[i], offsets[i + 1])
            n_atoms = offsets[i + 1] - offsets[i]
            val, std = pred.values[sl].reshape(n_atoms, *shape), pred.std[sl].reshape(n_atoms, *shape)
        out.append((val, std))
    return out
