"""IR validation: spectra from MD (GFN2-xTB dynamics, dipoles from GFN2-xTB or from an ML dipole
model) against harmonic spectra (PySCF Hessian + atomic polar tensors, and GFN2-xTB Hessian +
finite-difference dipoles). Reports the positions of the main bands and their relative intensities.

Harmonic intensities are stick intensities (km/mol, normalised to the strongest band); MD band
intensities are integrals of the IR lineshape over a window around each band (normalised the same
way). MD bands include anharmonicity and classical rotational broadening at the MD temperature, so
they sit below the harmonic ones on the same PES; PySCF-vs-GFN2 differences are PES differences.

    nice -n 10 python benchmarks/spectra_water_ir.py --out bench-ir          # water, ~20 min
    nice -n 10 python benchmarks/spectra_water_ir.py --molecules water,methanol --steps 8000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from ase import Atoms, units  # noqa: E402
from ase.build import molecule  # noqa: E402

from psilearn.observe.harmonic import normal_modes  # noqa: E402
from psilearn.observe.ir import ir_spectrum  # noqa: E402
from psilearn.observe.vibrational import SpectrumOptions  # noqa: E402

HERE = os.path.dirname(__file__)
WATER_SET = os.path.join(HERE, "..", "..", "shared", "data", "water_tensors", "water_monomer", "coords_1000.xyz")
ANGSTROM_PER_BOHR = units.Bohr

WATER_NAMES = ("bend", "sym. stretch", "asym. stretch")


# ---- harmonic: PySCF ------------------------------------------------------------------------------
def pyscf_harmonic(atoms: Atoms, method: str) -> dict:
    """Optimise (scipy BFGS on analytic gradients), then analytic Hessian and finite-difference APTs."""
    from scipy.optimize import minimize

    from psilearn.label.registry import make_labeler

    lab = make_labeler(method, "energy")
    mol = lab.build_mol(atoms)

    def energy_grad(x):
        m = mol.set_geom_(x.reshape(-1, 3), unit="Bohr", inplace=False)
        mf, _ = lab.run_scf(m)
        g = mf.nuc_grad_method()
        g.verbose = 0
        return mf.e_tot, g.kernel().ravel()

    t0 = time.perf_counter()
    res = minimize(energy_grad, mol.atom_coords().ravel(), jac=True, method="BFGS", options={"gtol": 1e-6})
    mol = mol.set_geom_(res.x.reshape(-1, 3), unit="Bohr", inplace=False)
    mf, _ = lab.run_scf(mol)
    h = mf.Hessian()
    h.verbose = 0
    hess = h.kernel()
    apt = lab.atomic_polar_tensors(mol, mf)
    modes = normal_modes(hess, mol.atom_mass_list(isotope_avg=True), mol.atom_coords(), apt)
    return {"wavenumber_cm1": modes.wavenumber_cm1, "ir_km_mol": modes.ir_km_mol, "seconds": time.perf_counter() - t0,
            "max_grad": float(np.abs(res.jac).max())}


# ---- harmonic: GFN2-xTB ------------------------------------------------------------------------------
def xtb_dipole(atoms: Atoms, calc) -> np.ndarray:
    """GFN2-xTB dipole (e*Angstrom) of ``atoms`` with a TBLite calculator."""
    a = atoms.copy()
    a.calc = calc
    return np.asarray(a.get_dipole_moment())


def xtb_harmonic(atoms: Atoms, delta: float = 0.005) -> tuple[dict, Atoms]:
    from ase.optimize import BFGS

    from psilearn.label.sampling import hessian, xtb_calculator

    ref = atoms.copy()
    ref.calc = xtb_calculator(ref)
    BFGS(ref, logfile=None).run(fmax=1e-4, steps=1000)
    h = hessian(ref, ref.calc) * ANGSTROM_PER_BOHR**2 / units.Hartree  # eV/A^2 -> Ha/Bohr^2
    apt = np.zeros((len(ref), 3, 3))
    x0 = ref.positions.copy()
    calc = xtb_calculator(ref)
    for k in range(len(ref)):
        for b in range(3):
            mus = []
            for sign in (1, -1):
                a = ref.copy()
                x = x0.copy()
                x[k, b] += sign * delta
                a.positions = x
                mus.append(xtb_dipole(a, calc))
            apt[k, :, b] = (mus[0] - mus[1]) / (2 * delta)  # e*A / A = e
    modes = normal_modes(h, ref.get_masses(), ref.positions / ANGSTROM_PER_BOHR, apt)
    return {"wavenumber_cm1": modes.wavenumber_cm1, "ir_km_mol": modes.ir_km_mol}, ref


# ---- MD ----------------------------------------------------------------------------------------------
def md_trajectories(start: Atoms, args) -> list[list[Atoms]]:
    """``args.trajectories`` independent Langevin runs (different seeds), each equilibrated first."""
    from psilearn.label.sampling import md_sample

    opts = dict(temperature=args.temperature, timestep_fs=args.timestep, friction_per_fs=args.friction)
    out = []
    for k in range(args.trajectories):
        seed = args.seed + 100 * k
        eq = md_sample(start, steps=args.equilibration, stride=args.equilibration, seed=seed + 1, **opts)[-1]
        out.append(md_sample(eq, steps=args.steps, stride=args.stride, seed=seed, **opts))
    return out


def ml_dipole_model(n_train: int, source: str = "water"):
    """SA-GPR dipole model (e*Bohr) trained on the shared water monomer set ('water', key 'mu') or on
    psilearn's bundled PBE0/def2-SVPD molecules ('demo': water, ammonia, methanol, formaldehyde)."""
    from psilearn.data import load_dataset
    from psilearn.features import SoapConfig
    from psilearn.models import SAGPR, SAGPRConfig
    from psilearn.targets import Target

    if source == "demo":
        from psilearn.cli.demo_cmd import demo_data_path

        target = Target("dipole_moment", tensor="i", units="e*Bohr")
        ds = load_dataset(f"{demo_data_path()}@:{n_train}", target)
    else:
        target = Target("mu", tensor="i", units="e*Bohr")
        ds = load_dataset(f"{WATER_SET}@:{n_train}", target)
    return SAGPR(target, SoapConfig(cutoff=4.0, max_radial=6, max_angular=4), SAGPRConfig(n_sparse=200)).fit(ds)


# ---- bands ---------------------------------------------------------------------------------------------
def band_groups(res: dict, min_rel: float = 0.05, merge_cm1: float = 60.0) -> list[list[int]]:
    """Modes with at least ``min_rel`` of the strongest intensity, in ascending frequency, grouped
    when closer than ``merge_cm1`` (MD cannot separate them at finite temperature)."""
    wn, inten = res["wavenumber_cm1"], res["ir_km_mol"]
    idx = [int(i) for i in np.flatnonzero(inten >= min_rel * inten.max())]
    groups: list[list[int]] = []
    for i in idx:
        if groups and wn[i] - wn[groups[-1][-1]] < merge_cm1:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def group_names(name: str, ref: dict, groups: list[list[int]]) -> list[str]:
    if name == "water" and len(ref["wavenumber_cm1"]) == 3:
        return [" + ".join(WATER_NAMES[i] for i in g) for g in groups]
    return [" + ".join(f"mode {i + 1}" for i in g) + f" (~{ref['wavenumber_cm1'][g].mean():.0f} GFN2)" for g in groups]


def harmonic_table(res: dict, groups: list[list[int]], names: list[str]) -> dict:
    """Per group (modes matched across methods by frequency order): intensity-weighted mean
    position and summed intensity."""
    wn, inten = res["wavenumber_cm1"], res["ir_km_mol"]
    out = {}
    for n, g in zip(names, groups):
        w = inten[g]
        pos = float(np.sum(w * wn[g]) / w.sum()) if w.sum() > 0 else float(wn[g].mean())
        out[n] = {"position": pos, "intensity": float(w.sum())}
    return out


def windows(centres: list[float], margin: float = 300.0) -> list[tuple[float, float]]:
    """Band windows split at the midpoints between neighbouring reference positions."""
    c = np.asarray(centres, float)
    mids = 0.5 * (c[1:] + c[:-1])
    lo = np.concatenate([[c[0] - margin], mids])
    hi = np.concatenate([mids, [c[-1] + margin]])
    return list(zip(lo, hi))


def md_bands(spec, names: list[str], wins) -> dict:
    """Per band, inside its window: the centroid (first moment) of the MD lineshape, which for the
    classical rotational P/Q/R envelope of a gas-phase molecule sits at the band origin, as the
    position; the highest point as ``peak``; the integral as the intensity."""
    nu, y = spec.wavenumber_cm1, spec.columns["ir"]
    out = {}
    for name, (lo, hi) in zip(names, wins):
        sel = (nu >= lo) & (nu < hi)
        if sel.any():
            i = np.flatnonzero(sel)[np.argmax(y[sel])]
            area = float(np.trapezoid(y[sel], nu[sel]))
            out[name] = {"position": float(np.trapezoid(y[sel] * nu[sel], nu[sel]) / area), "peak": float(nu[i]), "intensity": area}
    return out


def relative(b: dict) -> dict:
    top = max((v["intensity"] for v in b.values()), default=1.0) or 1.0
    return {k: {**v, "relative": v["intensity"] / top} for k, v in b.items()}


def run_molecule(name: str, args, ml_model) -> dict:
    start = molecule({"water": "H2O", "methanol": "CH3OH"}[name])
    out = {}
    t0 = time.perf_counter()
    ph = pyscf_harmonic(start, args.method)
    print(f"{name}: PySCF harmonic {time.perf_counter() - t0:.0f} s (max gradient {ph['max_grad']:.1e} a.u.)", file=sys.stderr)
    xh, opt = xtb_harmonic(start)
    groups = band_groups(xh)
    names = group_names(name, xh, groups)
    out["harmonic PySCF " + args.method] = relative(harmonic_table(ph, groups, names))
    out["harmonic GFN2-xTB"] = relative(harmonic_table(xh, groups, names))
    modes = {"PySCF " + args.method: ph, "GFN2-xTB": xh}
    t0 = time.perf_counter()
    trajs = md_trajectories(opt, args)
    print(f"{name}: MD {len(trajs)} x {len(trajs[0])} frames in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    from psilearn.label.sampling import xtb_calculator

    calc = xtb_calculator(opt)
    dips = [np.array([xtb_dipole(f, calc) for f in traj]) for traj in trajs]
    dt = args.timestep * args.stride
    opts = SpectrumOptions(timestep_fs=dt, temperature_k=args.temperature, max_cm1=4500, correlation_fs=args.correlation)
    spectra = {"MD GFN2-xTB + GFN2 dipoles": ir_spectrum(dips, opts, "e*Angstrom")}
    if ml_model is not None and set(start.numbers) <= set(ml_model.species):
        t0 = time.perf_counter()
        mus = [ml_model.predict(traj, return_std=False).values for traj in trajs]
        print(f"{name}: ML dipoles for {sum(map(len, trajs))} frames in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        spectra["MD GFN2-xTB + ML dipoles (SA-GPR)"] = ir_spectrum(mus, opts, "e*Bohr")
    wins = windows([out["harmonic GFN2-xTB"][n]["position"] for n in names])
    for k, sp in spectra.items():
        out[k] = relative(md_bands(sp, names, wins))
        if args.out:
            sp.to_csv(os.path.join(args.out, f"ir_{name}_{k.split('+')[1].strip().split()[0].lower()}.csv"))
    if args.out:
        _plot(name, spectra, out, args)
    out["_modes"] = {k: {"wavenumber_cm1": v["wavenumber_cm1"].round(1).tolist(), "ir_km_mol": v["ir_km_mol"].round(2).tolist()}
                     for k, v in modes.items()}
    return out


def _plot(name, spectra, out, args):
    from psilearn.observe.plots import _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    for k, s in spectra.items():
        vib = s.wavenumber_cm1 >= 500  # scale to the vibrational bands, not the rotational wing
        ax.plot(s.wavenumber_cm1, s.columns["ir"] / s.columns["ir"][vib].max(), lw=1, label=k)
    for k, b in out.items():
        if k.startswith("harmonic"):
            for v in b.values():
                ax.axvline(v["position"], color="k" if "PySCF" in k else "0.6", ls=":", lw=0.8)
    ax.set_xlim(500, 4300)
    ax.set_xlabel("wavenumber (cm$^{-1}$)")
    ax.set_ylabel("IR intensity (max above 500 cm$^{-1}$ = 1)")
    ax.set_ylim(0, 1.1)
    ax.set_title(f"{name}: MD IR vs harmonic (dotted: black PySCF, grey GFN2)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, f"ir_{name}.png"), dpi=120)
    plt.close(fig)


def table(results: dict) -> str:
    lines = []
    for mol, res in results.items():
        methods = [m for m in res if not m.startswith("_")]
        bands = list(res["harmonic GFN2-xTB"])
        lines += [f"### {mol}", "", "| band | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for b in bands:
            cells = []
            for m in methods:
                v = res[m].get(b)
                cells.append((f"{v['position']:.0f}" + (f" [max {v['peak']:.0f}]" if "peak" in v else "") + f" ({v['relative']:.2f})") if v else "-")
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
        lines.append("")
        for m, v in res["_modes"].items():
            lines.append(f"harmonic modes {m}: " + ", ".join(f"{w:.0f} ({i:.1f} km/mol)" for w, i in zip(v["wavenumber_cm1"], v["ir_km_mol"])))
        lines.append("")
    lines.append("Entries: band position in cm^-1 (relative intensity, strongest band = 1). Bands: the GFN2-xTB harmonic modes "
                 "with at least 5% of the strongest intensity, modes closer than 60 cm^-1 grouped; PySCF modes matched by frequency "
                 "order. Positions are first moments: intensity-weighted mean of the harmonic modes in a group, centroid of the MD "
                 "lineshape between the midpoints of neighbouring GFN2 harmonic bands ([max ...]: its highest point, a rotational "
                 "branch); MD intensities are integrals over the same windows.")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--molecules", default="water")
    p.add_argument("--method", default="pbe0/def2-svp", help="PySCF level for the harmonic reference")
    p.add_argument("--temperature", type=float, default=300.0)
    p.add_argument("--trajectories", type=int, default=8, help="independent runs whose lineshapes are averaged")
    p.add_argument("--steps", type=int, default=8000, help="steps per run after equilibration")
    p.add_argument("--equilibration", type=int, default=2000)
    p.add_argument("--timestep", type=float, default=0.5, help="fs")
    p.add_argument("--stride", type=int, default=2)
    p.add_argument("--friction", type=float, default=0.002, help="1/fs (thermalises each run in ~1/friction)")
    p.add_argument("--correlation", type=float, default=2000.0, help="correlation length, fs")
    p.add_argument("--ml-train", type=int, default=300, help="training structures for the ML dipole model (0: none)")
    p.add_argument("--ml-data", choices=["water", "demo"], default="water",
                   help="ML dipole training data: shared water monomers, or psilearn's bundled molecules (incl. methanol)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench-spectra")
    args = p.parse_args(argv)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    ml = (ml_dipole_model(args.ml_train, args.ml_data)
          if args.ml_train and (args.ml_data == "demo" or os.path.exists(WATER_SET)) else None)
    results = {m: run_molecule(m, args, ml) for m in args.molecules.split(",")}
    text = table(results)
    settings = (f"MD: {args.trajectories} independent GFN2-xTB Langevin runs (friction {args.friction}/fs) at {args.temperature:g} K, each "
        f"{args.equilibration} + {args.steps} steps "
                f"of {args.timestep} fs, frames every {args.stride * args.timestep:g} fs, correlation length {args.correlation:g} fs, Hann "
                f"window, harmonic QCF." + (f" ML dipoles: SA-GPR trained on {args.ml_train} structures ({args.ml_data} set)."
                                                        if ml is not None else ""))
    print(text + "\n\n" + settings)
    if args.out:
        with open(os.path.join(args.out, "ir_table.md"), "w") as fh:
            fh.write(text + "\n\n" + settings + "\n")
        with open(os.path.join(args.out, "ir_results.json"), "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
