"""Structure sampling: RDKit conformers from SMILES, GFN2-xTB Langevin MD, random
displacements and harmonic normal-mode sampling. Positions in Angstrom, temperatures in K."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from psilearn.data.periodicity import apply_periodicity
from psilearn.label.hashing import charge_multiplicity
from psilearn.label.xtb_methods import check_xtb_method, tblite_name

_MD_CHUNK = 50  # MD steps between progress-bar updates


def conformers_from_smiles(smiles: str, n: int = 1, seed: int = 0, optimize: bool = True) -> list[Atoms]:
    """Up to ``n`` RDKit ETKDG conformers (MMFF-relaxed if ``optimize``) of ``smiles``, with
    explicit hydrogens. ``info`` gets ``smiles``, ``charge`` (formal) and ``multiplicity``."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"invalid SMILES {smiles!r}")
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=int(n), params=params))
    if not ids:
        raise ValueError(f"RDKit could not embed a 3D conformer for {smiles!r}")
    if optimize and AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMoleculeConfs(mol, maxIters=500)
    charge = Chem.GetFormalCharge(mol)
    radicals = sum(a.GetNumRadicalElectrons() for a in mol.GetAtoms())
    numbers = [a.GetAtomicNum() for a in mol.GetAtoms()]
    out = []
    for cid in ids:
        pos = mol.GetConformer(cid).GetPositions()
        atoms = Atoms(numbers=numbers, positions=pos)
        atoms.info.update(smiles=smiles, charge=int(charge), multiplicity=int(radicals) + 1, conformer=int(cid))
        out.append(atoms)
    return out


def xtb_calculator(atoms: Atoms, method: str = "GFN2-xTB"):
    """tblite's ASE calculator for ``atoms`` (charge/multiplicity from ``atoms.info``); ``method``
    is any name of :mod:`psilearn.label.xtb_methods` ('gfn2', 'GFN1-xTB', ...)."""
    from tblite.ase import TBLite

    charge, mult = charge_multiplicity(atoms)
    return TBLite(method=tblite_name(method), charge=charge, multiplicity=mult, verbosity=0)


def md_sample(
    atoms: Atoms,
    temperature: float = 300.0,
    steps: int = 1000,
    stride: int = 10,
    timestep_fs: float = 0.5,
    friction_per_fs: float = 0.01,
    seed: int = 0,
    method: str = "GFN2-xTB",
    progress: bool | str = False,
) -> list[Atoms]:
    """Langevin MD with GFN2-xTB; returns ``steps // stride`` frames (every ``stride`` steps).

    Frames carry ``info['md_step']``, ``info['md_temperature']`` (target, K), ``info['md_timestep_fs']``
    (so the time between frames, md_step difference x md_timestep_fs, is known) and keep the input's
    charge/multiplicity. Velocities start Maxwell-Boltzmann at ``temperature``. ``progress``: a
    progress bar over the steps (on stderr; a string is its label).
    """
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from tqdm.auto import tqdm

    if steps < 1 or stride < 1:
        raise ValueError("steps and stride must be >= 1")
    if temperature <= 0:
        raise ValueError("temperature must be > 0 K")
    work = apply_periodicity(atoms.copy())  # an all-zero lattice is a molecule (psilearn.data.periodicity)
    work.calc = xtb_calculator(work, method)
    rng = np.random.RandomState(seed)
    MaxwellBoltzmannDistribution(work, temperature_K=temperature, rng=rng)
    dyn = Langevin(work, timestep_fs * units.fs, temperature_K=temperature,
                   friction=friction_per_fs / units.fs, rng=rng, fixcm=False)
    frames: list[Atoms] = []
    bar = tqdm(total=steps - steps % stride, desc=progress if isinstance(progress, str) else "MD", unit="step",
               disable=not progress, leave=False)
    for step in range(stride, steps + 1, stride):
        for done in range(0, stride, _MD_CHUNK):  # pieces, for the progress bar (the same trajectory)
            dyn.run(min(_MD_CHUNK, stride - done))
            bar.update(min(_MD_CHUNK, stride - done))
        frame = Atoms(numbers=work.numbers, positions=work.positions.copy(), cell=work.cell, pbc=work.pbc)
        frame.info.update({k: v for k, v in atoms.info.items() if k in ("charge", "multiplicity", "smiles")})
        frame.info.update(md_step=step, md_temperature=float(temperature), md_timestep_fs=float(timestep_fs))
        frames.append(frame)
    bar.close()
    return frames


def md_trajectory(atoms: Atoms, steps: int, method: str = "gfn2", temperature: float = 300.0, timestep_fs: float = 0.5,
                  stride: int = 1, friction_per_fs: float = 0.001, equilibration: int = 0, seed: int = 0,
                  progress: bool = False) -> list[Atoms]:
    """A trajectory for time-correlation spectra: ``equilibration`` Langevin steps run first and
    discarded (seed ``seed + 1``), then ``steps`` steps of which every ``stride``-th is kept (see
    :func:`md_sample`). Frames record ``md_timestep_fs`` and ``md_calculator`` (the xTB method) so
    that the time between frames is known. The default friction is weak, keeping bands sharp.
    ``progress``: progress bars over the equilibration and production steps (stderr)."""
    method = check_xtb_method(method)
    if steps < 1 or stride < 1 or equilibration < 0:
        raise ValueError("steps and stride must be >= 1, equilibration >= 0")
    opts = dict(temperature=temperature, timestep_fs=timestep_fs, friction_per_fs=friction_per_fs, method=method)
    if equilibration:
        atoms = md_sample(atoms, steps=equilibration, stride=equilibration, seed=seed + 1, progress=progress and "equilibration", **opts)[-1]
    traj = md_sample(atoms, steps=steps, stride=stride, seed=seed, progress=progress and "MD", **opts)
    for f in traj:
        f.info["md_calculator"] = method
    return traj


def rattle_sample(atoms: Atoms, n: int = 10, stdev: float = 0.05, seed: int = 0,
                  min_distance: float = 0.5, max_tries: int = 100) -> list[Atoms]:
    """``n`` copies with independent Gaussian displacements (``stdev`` A per Cartesian
    component); draws that bring two atoms closer than ``min_distance`` A are redrawn."""
    rng = np.random.default_rng(seed)
    out: list[Atoms] = []
    for k in range(n):
        for _ in range(max_tries):
            pos = atoms.positions + rng.normal(0.0, stdev, size=atoms.positions.shape)
            if len(atoms) < 2 or _min_distance(pos) >= min_distance:
                break
        else:
            raise ValueError(f"could not draw a displacement keeping atoms {min_distance} A apart")
        frame = atoms.copy()
        frame.calc = None
        frame.positions = pos
        frame.info["rattle_stdev"] = float(stdev)
        frame.info["sample_index"] = k
        out.append(frame)
    return out


def _min_distance(pos: np.ndarray) -> float:
    d = np.linalg.norm(pos[:, None] - pos[None, :], axis=-1)
    d[np.diag_indices(len(pos))] = np.inf
    return float(d.min())


def hessian(atoms: Atoms, calc=None, delta: float = 0.005) -> np.ndarray:
    """Cartesian Hessian (eV/A^2), shape (3N, 3N), by central differences of forces."""
    work = apply_periodicity(atoms.copy())
    work.calc = calc if calc is not None else xtb_calculator(work)
    n3 = 3 * len(work)
    h = np.zeros((n3, n3))
    x0 = work.positions.copy()
    for i in range(n3):
        a, c = divmod(i, 3)
        grads = []
        for sign in (1.0, -1.0):
            x = x0.copy()
            x[a, c] += sign * delta
            work.positions = x
            grads.append(-work.get_forces().reshape(-1))
        h[i] = (grads[0] - grads[1]) / (2 * delta)
    return 0.5 * (h + h.T)


def normal_mode_sample(atoms: Atoms, n: int = 10, temperature: float = 300.0, seed: int = 0,
                       optimize: bool = True, fmax: float = 0.01) -> list[Atoms]:
    """Classical harmonic (Boltzmann) sampling along GFN2-xTB normal modes.

    The structure is first relaxed (BFGS to ``fmax`` eV/A) if ``optimize``. Each vibrational mode
    k gets an independent amplitude q_k ~ N(0, kT / omega_k^2) in mass-weighted coordinates; the
    6 (5 for linear molecules) smallest-|omega| modes are translations/rotations and are skipped.
    """
    from ase import units

    ref = apply_periodicity(atoms.copy())
    ref.calc = xtb_calculator(ref)
    if optimize:
        from ase.optimize import BFGS

        BFGS(ref, logfile=None).run(fmax=fmax, steps=500)
    h = hessian(ref, ref.calc)
    masses = np.repeat(ref.get_masses(), 3)
    mw = h / np.sqrt(np.outer(masses, masses))
    w2, modes = np.linalg.eigh(mw)
    n_rigid = 5 if _is_linear(ref.positions) else 6
    order = np.argsort(np.abs(w2))
    vib = np.sort(order[n_rigid:])
    w2v = np.clip(w2[vib], 1e-8, None)  # imaginary modes (not a minimum) get a tiny, safe width
    kT = units.kB * temperature
    rng = np.random.default_rng(seed)
    out: list[Atoms] = []
    for k in range(n):
        q = rng.normal(0.0, np.sqrt(kT / w2v))
        dx = (modes[:, vib] @ q) / np.sqrt(masses)
        frame = Atoms(numbers=ref.numbers, positions=ref.positions + dx.reshape(-1, 3))
        frame.info.update({k2: v for k2, v in atoms.info.items() if k2 in ("charge", "multiplicity", "smiles")})
        frame.info.update(normal_mode_temperature=float(temperature), sample_index=k)
        out.append(frame)
    return out


def _is_linear(pos: np.ndarray, tol: float = 1e-3) -> bool:
    if len(pos) < 3:
        return True
    centred = pos - pos.mean(axis=0)
    s = np.linalg.svd(centred, compute_uv=False)
    return bool(s[1] < tol * max(s[0], 1e-12))


def sample_many(structures: Sequence[Atoms], mode: str, **kwargs) -> list[Atoms]:
    """Apply one sampler (``'md'``, ``'rattle'``, ``'normal-modes'``) to every structure; structure
    ``i`` uses seed ``seed + i``."""
    funcs = {"md": md_sample, "rattle": rattle_sample, "normal-modes": normal_mode_sample}
    if mode not in funcs:
        raise ValueError(f"unknown sampling mode {mode!r}; choose from {', '.join(funcs)}")
    seed = int(kwargs.pop("seed", 0))
    out: list[Atoms] = []
    for i, atoms in enumerate(structures):
        # a distinct, reproducible seed per structure: identical inputs do not give identical samples
        for frame in funcs[mode](atoms, seed=seed + i, **kwargs):
            frame.info["source_index"] = i
            out.append(frame)
    return out
