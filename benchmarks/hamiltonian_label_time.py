"""What a Hamiltonian label costs: seconds per label for water and methanol (ASE geometries, 1 thread).

    python benchmarks/hamiltonian_label_time.py                      # hf/def2-svp and pbe/def2-svp
    python benchmarks/hamiltonian_label_time.py --methods pbe0/def2-tzvp --repeats 3

Per method and molecule: n_ao, the best of ``--repeats`` whole labels with ``--observables energy``
and with ``--observables hamiltonian`` (the latter converges the orbital gradient to 1e-8), the
size of the labelled extxyz frame, and max |eig(H, S) - PySCF's mo_energy| (the SCF convergence).
Timings on a shared machine swing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import ase.io  # noqa: E402
import numpy as np  # noqa: E402
from ase.build import molecule  # noqa: E402

from psilearn.label.registry import make_labeler  # noqa: E402

MOLECULES = {"water": "H2O", "methanol": "CH3OH"}


def best_seconds(labeler, atoms, repeats: int):
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = labeler.label(atoms)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="hf/def2-svp,pbe/def2-svp")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print("| method | molecule | n_ao | energy label s | hamiltonian label s | extxyz MB | max |eig(H,S) - mo_energy| Ha |")
    print("|---|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        for name, formula in MOLECULES.items():
            atoms = molecule(formula)
            t_e, _ = best_seconds(make_labeler(method, "energy"), atoms, args.repeats)
            lab = make_labeler(method, "hamiltonian")
            t_h, out = best_seconds(lab, atoms, args.repeats)
            mf, _ = lab.run_scf(lab.build_mol(atoms))
            n = out.info["orbital_energies"].size
            with tempfile.TemporaryDirectory() as tmp:
                ase.io.write(os.path.join(tmp, "x.xyz"), out)
                size_mb = os.path.getsize(os.path.join(tmp, "x.xyz")) / 1e6
            diff = np.abs(out.info["orbital_energies"] - mf.mo_energy).max()
            print(f"| {method} | {name} | {n} | {t_e:.2f} | {t_h:.2f} | {size_mb:.2f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
