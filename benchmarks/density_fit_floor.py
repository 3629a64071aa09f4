"""The density-fitting floor: how well the auxiliary basis reproduces the SCF density itself
(water and methanol, ASE geometries), and what a density label costs.

    python benchmarks/density_fit_floor.py                                  # pbe/def2-svp, grid 3 and 4
    python benchmarks/density_fit_floor.py --method pbe0/def2-svp --aux-basis cc-pvtz-jkfit

Per molecule: L2 = sqrt(int (rho_fit - rho)^2 / int rho^2) and L1 = int |rho_fit - rho| / N_el on the
SCF's integration grid, the dipole error (Debye) of nuclei + fitted density against the SCF dipole,
the fitted electron count, and seconds (1 thread): the SCF, the density labels alone (aux basis,
fit, grid errors, dipole) and a whole ``density`` label. Timings on a shared machine swing.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from ase.build import molecule  # noqa: E402

from psilearn.label.density import density_auxmol, density_labels  # noqa: E402
from psilearn.label.registry import make_labeler  # noqa: E402

DEBYE = 2.541746473
MOLECULES = {"water": "H2O", "methanol": "CH3OH"}


def _seconds(fn, repeats: int) -> float:
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="pbe/def2-svp")
    ap.add_argument("--aux-basis", default="def2-universal-jkfit")
    ap.add_argument("--metric", default="coulomb", choices=["coulomb", "overlap"])
    ap.add_argument("--grid-levels", default="3,4")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{args.method}, density in {args.aux_basis} ({args.metric} metric)")
    print("| molecule | grid level | L2 % | L1 % | dipole error (D) | electrons | SCF s | density labels s | label s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, formula in MOLECULES.items():
        atoms = molecule(formula)
        for level in (int(x) for x in args.grid_levels.split(",")):
            lab = make_labeler(args.method, "density", density_aux_basis=args.aux_basis,
                               density_metric=args.metric, grid_level=level)
            info = lab.label(atoms).info  # also the warm-up
            mol = lab.build_mol(atoms)
            mf, _ = lab.run_scf(mol)
            grids = lab.grids(mol, mf)

            def density():
                auxmol = density_auxmol(mol, args.aux_basis)
                density_labels(mol, mf.make_rdm1(), auxmol, args.aux_basis, args.metric, grids)

            t_scf = _seconds(lambda: lab.run_scf(mol), args.repeats)
            t_density = _seconds(density, args.repeats)
            t_label = _seconds(lambda: lab.label(atoms), args.repeats)
            print(f"| {name} | {level} | {100 * info['density_fit_l2']:.3f} | {100 * info['density_fit_l1']:.3f} | "
                  f"{DEBYE * info['density_fit_dipole_error']:.4f} | {info['density_electrons']:.5f} | "
                  f"{t_scf:.2f} | {t_density:.3f} | {t_label:.2f} |", flush=True)

if __name__ == "__main__":
    main()
