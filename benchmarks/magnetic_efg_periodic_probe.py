"""Is an all-electron periodic EFG label affordable here? (issue 16, crystals; docs/magnetic.md)

Times an all-electron PySCF periodic SCF (Gaussian density fitting, KRKS) of a rattled cell from
ASE's bulk builder on the threads given by OMP_NUM_THREADS, then calls pyscf-properties'
``pyscf.pbc.prop.efg.rhf.kernel`` on it: first with the SCF's GDF object, then with an AFTDF object
(the density-fitting kinds that module handles). Prints the seconds and whatever the EFG call raises.

    OMP_NUM_THREADS=1 .venv/bin/python -W ignore benchmarks/magnetic_efg_periodic_probe.py LiF --kmesh 1
    OMP_NUM_THREADS=1 .venv/bin/python -W ignore benchmarks/magnetic_efg_periodic_probe.py LiF --kmesh 2
    OMP_NUM_THREADS=1 .venv/bin/python -W ignore benchmarks/magnetic_efg_periodic_probe.py LiF8 --kmesh 1
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def build(name: str):
    from ase.build import bulk

    cells = {
        "LiF": lambda: bulk("LiF", "rocksalt", a=4.03),
        "LiF8": lambda: bulk("LiF", "rocksalt", a=4.03, cubic=True),
        "NaCl": lambda: bulk("NaCl", "rocksalt", a=5.64),
        "BN": lambda: bulk("BN", "zincblende", a=3.615),
        "AlN": lambda: bulk("AlN", "wurtzite", a=3.11, c=4.98),
    }
    atoms = cells[name]()
    atoms.rattle(0.05, seed=1)
    return atoms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cell", choices=["LiF", "LiF8", "NaCl", "BN", "AlN"])
    ap.add_argument("--basis", default="6-31g")
    ap.add_argument("--xc", default="pbe")
    ap.add_argument("--kmesh", type=int, default=1, help="k-points per direction (1: Gamma only)")
    args = ap.parse_args()
    from pyscf.pbc import df, dft, gto
    from pyscf.pbc.prop.efg import rhf as pbc_efg

    atoms = build(args.cell)
    cell = gto.Cell()
    cell.atom = list(zip(atoms.get_chemical_symbols(), atoms.positions))
    cell.a, cell.basis, cell.unit, cell.verbose = np.array(atoms.cell), args.basis, "A", 0
    cell.exp_to_discard = 0.1  # drop very diffuse primitives (usual for periodic Gaussian bases)
    cell.build()
    kpts = cell.make_kpts([args.kmesh] * 3)
    t0 = time.perf_counter()
    mf = dft.KRKS(cell, kpts).density_fit()
    mf.xc = args.xc
    mf.kernel()
    print(
        f"{args.cell} ({len(atoms)} atoms) all-electron {args.xc}/{args.basis} k={args.kmesh}^3 GDF: nao {cell.nao}, "
        f"converged {mf.converged}, E {mf.e_tot:.6f} Ha, SCF {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    for kind in ("GDF", "AFTDF"):
        if kind == "AFTDF":
            mf.with_df = df.AFTDF(cell, kpts)
            print(f"AFTDF mesh for this all-electron cell: {[int(m) for m in mf.with_df.mesh]}", flush=True)
        t0 = time.perf_counter()
        try:
            v = pbc_efg.kernel(mf)
            print(f"pyscf.pbc.prop.efg with {kind}: {time.perf_counter() - t0:.1f} s, V_zz {np.abs(np.linalg.eigvalsh(v)).max(axis=1)}")
        except Exception as exc:  # the point of the probe is to report what fails
            print(f"pyscf.pbc.prop.efg with {kind} fails after {time.perf_counter() - t0:.1f} s: {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
