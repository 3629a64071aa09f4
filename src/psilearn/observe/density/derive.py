"""Every derived observable of many structures at once: what ``psilearn density`` runs.

The densities come from the labels stored in the structures (``density_coefficients`` and
``density_aux_basis`` in ``atoms.info``) or from a model whose ``predict`` returns a
:class:`psilearn.data.prediction.DensityPrediction`. Each structure gets a copy with the derived
values in ``atoms.info`` / ``atoms.arrays`` (keys and units in :data:`DERIVED_UNITS`) and a summary
row for the table the CLI prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from psilearn.errors import DataError
from psilearn.observe.density.structure import fitted_density

DERIVED_UNITS: dict[str, str] = {
    "density_dipole": "e*Bohr, (3,), nuclei + fitted density, origin: centre of mass (as dipole_moment)",
    "density_quadrupole": "e*Bohr^2, traceless Buckingham, 9 numbers row-major, origin: centre of mass (as quadrupole_moment)",
    "density_fitted_electrons": "e, sum_P c_P int phi_P",
    "density_core_electrons": "e, per atom, electrons replaced by effective core potentials (not in the density; nuclear charges Z - core)",
    "density_dipole_std": "e*Bohr, (3,), predictive std of density_dipole's components (model with density.uncertainty)",
    "density_quadrupole_std": "e*Bohr^2, 9 numbers, predictive std of density_quadrupole's components (model with density.uncertainty)",
    "density_esp": "Hartree/e, ESP of nuclei + fitted density at the --esp points, in their order",
    "density_esp_std": "Hartree/e, predictive std of density_esp (model with density.uncertainty)",
    "density_esp_surface_points": "Angstrom, 3n numbers (x, y, z per point), Merz-Kollman points on the scaled vdW surfaces (--esp-surface)",
    "density_esp_surface_layer": "index of each surface point's scale in density_esp_surface_scales",
    "density_esp_surface_scales": "the multiples of the van der Waals radii (ase.data.vdw_radii) of the surface layers",
    "density_esp_surface": "Hartree/e, ESP of nuclei + fitted density at density_esp_surface_points, in their order",
    "density_esp_surface_std": "Hartree/e, predictive std of density_esp_surface (model with density.uncertainty)",
    "density_hirshfeld_charges": "e, per atom, Hirshfeld charges of the fitted density",
    "density_hirshfeld_charges_std": "e, per atom, predictive std of density_hirshfeld_charges (model with density.uncertainty)",
    "density_cube": "path of the density cube file (rho in e/Bohr^3)",
    "density_cube_electrons": "e, sum(rho) dV on the cube grid",
    "density_scf_cycles_guess": "SCF cycles from the fitted-density guess (density_scf_method, conv_tol density_scf_conv_tol)",
    "density_scf_cycles_default": "SCF cycles from PySCF's default guess (minao), same SCF",
}


@dataclass
class DeriveOptions:
    """What to derive: ``multipoles``; the ESP at ``esp_points`` (one (n, 3) Angstrom array for all
    structures or one per structure); the ESP on Merz-Kollman points (``esp_surface``: spheres of
    ``surface_scales`` x the vdW radii, ``surface_density`` points per Angstrom^2,
    :mod:`psilearn.observe.density.surface`); cube files in ``cube_dir`` (``spacing``/``margin`` Angstrom, and
    ESP cubes with ``esp_grid``); ``hirshfeld`` charges (free atoms in ``hirshfeld_basis``); the SCF
    guess for ``scf_method`` (``XC/BASIS``) at ``scf_conv_tol``; ``source`` is recorded as
    ``density_source`` ('labels' or the model path)."""

    multipoles: bool = True
    esp_points: list[np.ndarray] | None = None
    esp_surface: bool = False
    surface_scales: tuple[float, ...] = (1.4, 1.6, 1.8, 2.0)
    surface_density: float = 1.0
    esp_grid: bool = False
    cube_dir: str | None = None
    spacing: float = 0.2
    margin: float = 4.0
    hirshfeld: bool = False
    hirshfeld_basis: str = "def2-svp"
    scf_method: str | None = None
    scf_conv_tol: float = 1e-9
    source: str = "labels"

    def __post_init__(self) -> None:
        if self.esp_grid and not self.cube_dir:
            raise DataError("--esp-grid writes ESP cube files: give --cube DIR")


def label_densities(frames: list[Atoms]) -> tuple[list[np.ndarray], list[str]]:
    """The stored density labels of ``frames`` (coefficients, aux basis per frame); DataError naming the frame."""
    coefficients, bases = [], []
    for i, a in enumerate(frames):
        missing = [k for k in ("density_coefficients", "density_aux_basis") if k not in a.info]
        if missing:
            raise DataError(f"frame {i}: no {' or '.join(repr(k) for k in missing)} (label with psilearn label "
                            "--observables density, or give a density model instead of 'labels')")
        coefficients.append(np.asarray(a.info["density_coefficients"], dtype=float).ravel())
        bases.append(str(a.info["density_aux_basis"]))
    return coefficients, bases


def model_densities(model, frames: list[Atoms], with_cov: bool = False):
    """Coefficients predicted by ``model`` (a density model: ``predict`` returns a DensityPrediction)
    and the aux basis per frame; with ``with_cov`` also the predictive covariances (None when the
    model has none, i.e. was not fitted with ``density.uncertainty``)."""
    from psilearn.data.prediction import DensityPrediction

    has_cov = with_cov and getattr(model, "posterior", None) is not None
    pred = model.predict(frames, return_std=True, return_cov=True) if has_cov else model.predict(frames, return_std=False)
    if not isinstance(pred, DensityPrediction):
        target = getattr(getattr(model, "target", None), "key", "?")
        raise DataError(f"the model predicts {target!r}, not density-fitting coefficients: give a density model "
                        "(or 'labels' to use the density labels stored in the structures)")
    coefficients = [np.asarray(c, dtype=float).ravel() for c in pred.coefficients]
    if with_cov:
        return coefficients, [pred.aux_basis] * len(frames), pred.cov
    return coefficients, [pred.aux_basis] * len(frames)


def esp_points_for(points: list[np.ndarray] | None, n_frames: int) -> list[np.ndarray] | None:
    """One points array per structure from one shared array or one per structure (DataError otherwise)."""
    if points is None:
        return None
    if len(points) == 1:
        return list(points) * n_frames
    if len(points) != n_frames:
        raise DataError(f"--esp: the points file has {len(points)} frames for {n_frames} structures "
                        "(give one frame for all, or one per structure)")
    return list(points)


def _cube_name(index: int, atoms: Atoms, suffix: str = "") -> str:
    return f"{index:04d}_{atoms.get_chemical_formula()}{suffix}.cube"


def derive_structure(index: int, atoms: Atoms, coefficients, aux_basis: str, options: DeriveOptions,
                     points: np.ndarray | None = None, cov: np.ndarray | None = None, core=None) -> tuple[Atoms, dict]:
    """(a copy of ``atoms`` with the derived values, the summary row) for one structure; with the
    coefficients' covariance ``cov`` (e^2) also the std of the dipole and of the ESP values. ``core``:
    the electrons replaced by ECPs per atom (default: as labelled in ``atoms``; a model's from its target)."""
    from psilearn.observe.density import cube, hirshfeld, multipoles, scf_guess
    from psilearn.targets.density import CORE_KEY

    density = fitted_density(atoms, coefficients, aux_basis, core_electrons=core)
    out = atoms.copy()
    out.calc = None
    out.arrays[CORE_KEY] = density.core_electrons.copy()
    info = out.info
    info["density_fitted_electrons"] = density.fitted_electrons
    row: dict = {"index": index, "formula": atoms.get_chemical_formula(), "electrons": density.fitted_electrons,
                 "n_electrons": density.n_electrons}
    if options.multipoles:
        mu, theta = multipoles.multipoles(density)
        info["density_dipole"], info["density_quadrupole"] = mu, theta.reshape(9)
        row["dipole_debye"] = float(np.linalg.norm(multipoles.debye(mu)))
        if cov is not None:
            c_mu = multipoles.dipole_covariance(density, cov)
            info["density_dipole_std"] = np.sqrt(np.clip(np.diag(c_mu), 0.0, None))
            info["density_quadrupole_std"] = np.sqrt(np.clip(np.diag(multipoles.quadrupole_covariance(density, cov)), 0.0, None))
            unit = mu / max(np.linalg.norm(mu), 1e-300)  # std of |mu| to first order: sqrt(u^T Sigma u)
            row["dipole_std_debye"] = float(multipoles.debye(np.sqrt(max(unit @ c_mu @ unit, 0.0))))
    if points is not None:
        _put_esp(info, "density_esp", density, points, cov)
        row["esp_points"] = len(points)
    if options.esp_surface:
        _esp_surface(info, row, density, options, cov)
    if options.cube_dir:
        path = os.path.join(options.cube_dir, _cube_name(index, atoms))
        info["density_cube_electrons"] = row["cube_electrons"] = cube.write_density_cube(
            path, density, options.spacing, options.margin)
        info["density_cube"] = path
        if options.esp_grid:
            cube.write_esp_cube(os.path.join(options.cube_dir, _cube_name(index, atoms, "_esp")), density,
                                options.spacing, options.margin)
    if options.hirshfeld:
        q = hirshfeld.hirshfeld_of(density, options.hirshfeld_basis, cov=cov)
        if cov is not None:
            q, out.arrays["density_hirshfeld_charges_std"] = q
        out.arrays["density_hirshfeld_charges"] = q
        row["hirshfeld_sum"] = float(q.sum())
    if options.scf_method:
        r = scf_guess.scf_guess_of(density, options.scf_method, options.scf_conv_tol)
        info["density_scf_method"], info["density_scf_conv_tol"] = r.method, options.scf_conv_tol
        info["density_scf_cycles_guess"], info["density_scf_cycles_default"] = r.cycles_guess, r.cycles_default
        row.update(scf_guess=r.cycles_guess, scf_default=r.cycles_default,
                   scf_converged=r.converged_guess and r.converged_default, scf_de=r.energy_guess - r.energy_default,
                   scf_seconds_guess=r.seconds_guess, scf_seconds_default=r.seconds_default)
    info["density_source"] = options.source
    return out, row


def _put_esp(info: dict, key: str, density, points, cov) -> None:
    """``info[key]``: the ESP (Hartree/e) at ``points``; with the coefficients' covariance ``cov`` also ``info[key_std]``."""
    from psilearn.observe.density import esp

    if cov is None:
        info[key] = esp.esp_of(density, points)
    else:
        info[key], info[f"{key}_std"] = esp.esp_of(density, points, cov)


def _esp_surface(info: dict, row: dict, density, options: DeriveOptions, cov) -> None:
    from psilearn.observe.density.surface import surface_points

    pts, layer = surface_points(density.atoms, options.surface_scales, options.surface_density)
    info["density_esp_surface_points"], info["density_esp_surface_layer"] = pts.reshape(-1), layer
    info["density_esp_surface_scales"] = np.asarray(options.surface_scales, dtype=float)
    _put_esp(info, "density_esp_surface", density, pts, cov)
    row["surface_points"] = len(pts)


def derive_all(frames: list[Atoms], coefficients: list[np.ndarray], aux_bases: list[str], options: DeriveOptions,
               progress: bool = True, covariances: list[np.ndarray] | None = None,
               core_electrons: list[np.ndarray] | None = None) -> tuple[list[Atoms], list[dict]]:
    """:func:`derive_structure` over ``frames`` with a progress bar (and the coefficients'
    covariances and ECP core electrons per atom, when given); errors name the frame."""
    from tqdm.auto import tqdm

    points = esp_points_for(options.esp_points, len(frames))
    out, rows = [], []
    for i in tqdm(range(len(frames)), desc="density", unit="structure", disable=not progress):
        try:
            a, row = derive_structure(i, frames[i], coefficients[i], aux_bases[i], options,
                                      None if points is None else points[i], None if covariances is None else covariances[i],
                                      None if core_electrons is None else core_electrons[i])
        except DataError as exc:
            raise DataError(f"frame {i}: {exc}") from None
        out.append(a)
        rows.append(row)
    return out, rows
