"""Spectra as labels: spectrum Targets from data, spectrum Datasets, and DOS from orbital energies.

Grids and grid reconciliation live in :mod:`psilearn.data.grids`, readers and tables in
:mod:`psilearn.data.spectrum_io`; their public names are importable from here too.
"""

from __future__ import annotations

import warnings

import numpy as np
from ase import Atoms

from psilearn.data.errors import DataError
from psilearn.data.grids import (  # noqa: F401  (re-exported)
    GRID_SUFFIX,
    GridWarning,
    common_grid,
    conform_to_grid,
    data_grid,
    frame_grid,
    interpolate_spectra,
    match_spectra,
    parse_grid,
    same_grid,
)
from psilearn.data.spectrum_io import (  # noqa: F401  (re-exported)
    load_spectra,
    read_deepmd_dos,
    read_plain_xyz,
    read_spectrum_table,
    read_structures_or_xanes,
    read_xanes,
    write_spectrum_table,
)


def check_absorber(frames: list[Atoms], absorber: str) -> None:
    """Every structure must contain the absorbing element (DataError naming the first that does not)."""
    for i, a in enumerate(frames):
        if absorber not in a.get_chemical_symbols():
            where = str(a.info.get("source", f"frame {i}")).replace(":", ", frame ", 1)
            raise DataError(f"{where}: no {absorber} atom, but the spectrum is declared to belong to {absorber}")


def load_spectrum_dataset(source, target, on_mismatch: str = "interpolate"):
    """A :class:`psilearn.data.Dataset` for a spectrum Target: reads ``source`` (path/spec or a list
    of Atoms), puts every spectrum on ``target.grid`` (see :func:`conform_to_grid`), checks the
    absorber, then validates lengths and NaNs as for any Target."""
    from psilearn.data.dataset import load_dataset
    from psilearn.data.io import read_structures

    if not target.is_spectrum:
        raise ValueError(f"{target.key}: not a spectrum target (no grid)")
    frames, name = (list(source), "<memory>") if isinstance(source, (list, tuple)) else (read_structures(source), str(source))
    frames = conform_to_grid(frames, target.key, target.per, target.grid, on_mismatch)
    if target.absorber:
        check_absorber(frames, target.absorber)
    ds = load_dataset(frames, target)
    ds.name = name
    return ds


def spectrum_target(frames: list[Atoms], key: str, per: str = "structure", grid=None, grid_units: str = "",
                    units: str = "", pool: str | None = None, absorber: str = ""):
    """The spectrum :class:`psilearn.targets.Target` of label ``key`` in ``frames``, on ``grid``
    (an array, or text for :func:`parse_grid`) when given, else on the grid recorded in the data
    (:func:`data_grid`), else on the point index 0..n-1 (GridWarning; grid units 'index').
    ``pool`` defaults to 'mean' for an absorber-centred spectrum and 'sum' otherwise."""
    from psilearn.targets import Target

    if isinstance(grid, str):
        grid = parse_grid(grid)
    grid = data_grid(frames, key) if grid is None else np.asarray(grid, dtype=np.float64)
    if grid is None:
        store = frames[0].info if per == "structure" else frames[0].arrays
        if key not in store:
            raise DataError(f"no spectrum {key!r} (per {per}) in the training data")
        n = np.asarray(store[key]).shape[-1]
        warnings.warn(f"no grid recorded for {key!r}; using the point index 0..{n - 1} (give --grid to record energies)",
                      GridWarning, stacklevel=2)
        grid, grid_units = np.arange(n, dtype=float), grid_units or "index"
    pool = pool or ("mean" if absorber else "sum")
    return Target(key, per=per, pool=pool, units=units, grid=grid, grid_units=grid_units, absorber=absorber or "")


#: per-atom label of the labelers' ``orbitals``: Löwdin weights (n_atoms, n_orbitals) of each orbital on each atom
#: (``_alpha``/``_beta`` for open shells), in the order of ``orbital_energies`` (:mod:`psilearn.label.projection`)
ATOM_WEIGHTS_KEY = "orbital_atom_weights"


def _orbital_levels(info: dict, arrays: dict | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(levels (n,) Hartree, states (n,) or with ``arrays`` states x Löwdin weights (n, n_atoms)) of one structure's
    orbitals: ``orbital_energies`` (2 states each) or ``_alpha`` and ``_beta`` (1 each); None without them."""
    if "orbital_energies" in info:
        spins, states = ("",), 2.0
    elif "orbital_energies_alpha" in info and "orbital_energies_beta" in info:
        spins, states = ("_alpha", "_beta"), 1.0
    else:
        return None
    levels = np.concatenate([np.asarray(info["orbital_energies" + s], float) for s in spins])
    if arrays is None:
        return levels, np.full(len(levels), states)
    if any(ATOM_WEIGHTS_KEY + s not in arrays for s in spins):
        return None
    weights = np.concatenate([np.asarray(arrays[ATOM_WEIGHTS_KEY + s], float) for s in spins], axis=1)
    return levels, states * weights.T


def orbital_dos(info: dict, grid: np.ndarray, sigma: float, reference: str = "none", per_hartree: float = 1.0,
                where: str = "", arrays: dict | None = None) -> np.ndarray | None:
    """Gaussian-broadened DOS (states per grid unit), shape (n_grid,), of one structure's orbital energies in ``info``
    (Hartree as labelled: ``orbital_energies``, two states each, or ``_alpha`` and ``_beta``, one each)
    on ``grid`` with width ``sigma`` (grid units; ``per_hartree`` grid units per Hartree), energies
    absolute (``reference`` 'none') or relative to ``info['homo']`` ('homo'). With the structure's per-atom labels
    ``arrays``: the Löwdin-projected DOS (n_atoms, n_grid), each Gaussian weighted by the atom's share of its orbital
    (``arrays['orbital_atom_weights']``, or ``_alpha``/``_beta``); summed over the atoms it is the DOS. None without
    orbital energies (or, with ``arrays``, their weights); DataError (``where``: the frame) without a HOMO to align on."""
    from psilearn.spectral.broadening import gaussian_broadening

    found = _orbital_levels(info, arrays)
    if found is None:
        return None
    levels, weights = found
    if reference == "homo":
        if "homo" not in info:
            raise DataError(f"{where}: no 'homo' label to align on")
        levels = levels - float(info["homo"])
    dos = gaussian_broadening(levels * per_hartree, weights, np.asarray(grid, dtype=np.float64), sigma)
    return dos if arrays is None else dos.T


def dos_from_orbitals(frames: list[Atoms], grid, sigma: float, key: str = "dos", reference: str = "none") -> list[Atoms]:
    """Gaussian-broadened DOS (states per energy unit) from the labelers' orbital energies
    (``info['orbital_energies']``, or ``_alpha``/``_beta`` for open shells; Hartree as labelled) on
    ``grid`` (same units), width ``sigma`` (:func:`orbital_dos`). ``reference``: 'none' (absolute energies) or 'homo'
    (energies relative to the HOMO: an alignment on a stated feature). Returns labelled copies with
    ``info[key]``, ``info[key + '_grid']`` and the broadening, ``info[key + '_sigma']`` and ``info[key + '_reference']``
    (what ``--baseline-method`` reproduces for a Δ model of this DOS)."""
    if reference not in ("none", "homo"):
        raise ValueError(f"reference must be 'none' or 'homo', got {reference!r}")
    g = np.asarray(grid, dtype=np.float64)
    out = []
    for i, a in enumerate(frames):
        dos = orbital_dos(a.info, g, sigma, reference, where=f"frame {i}")
        if dos is None:
            where = str(a.info.get("source", f"frame {i}")).replace(":", ", frame ", 1)
            raise DataError(f"{where}: no orbital energies (label with --observables orbitals)")
        b = a.copy()
        b.info[key] = dos
        b.info[key + GRID_SUFFIX] = g.copy()
        b.info[key + "_sigma"], b.info[key + "_reference"] = float(sigma), reference
        out.append(b)
    return out


def structure_spectra(target, frames: list[Atoms], values: np.ndarray) -> np.ndarray:
    """(n_structures, n_grid): ``values`` per structure as they are, per-atom spectra summed over each structure's atoms."""
    if target.per == "structure":
        return values
    owner = np.repeat(np.arange(len(frames)), [len(a) for a in frames])
    out = np.zeros((len(frames), values.shape[1]))
    np.add.at(out, owner, values)
    return out
