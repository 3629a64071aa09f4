"""Observables from a Hamiltonian label, and the SCF cycles it saves (ASE geometries, 1 thread).

    python benchmarks/hamiltonian_derive.py                  # hf/def2-svp and pbe/def2-svp, water and methanol
    python benchmarks/hamiltonian_derive.py --methods pbe0/def2-svp --noise 1e-3

Per method and molecule: max |derived - labelled| orbital energy (Ha) and dipole (e*Bohr) with the
exact labelled F; SCF cycles from the exact F, from F plus symmetric Gaussian noise of standard
deviation ``--noise`` Ha (seed 0), and from PySCF's default guess; E(guess) - E(default) (Ha).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from ase.build import molecule  # noqa: E402

from psilearn.label.registry import make_labeler  # noqa: E402
from psilearn.observe.hamiltonian import derive, scf_guess_cycles  # noqa: E402

MOLECULES = {"water": "H2O", "methanol": "CH3OH"}


def row(method: str, name: str, noise: float) -> str:
    lab = make_labeler(method, "hamiltonian,dipole")
    a = lab.label(molecule(MOLECULES[name]))
    f = a.info["hamiltonian"]
    d = derive(a, f, lab.basis)
    n = d.orbital_energies.size
    p = np.random.default_rng(0).normal(size=(n, n))
    exact = scf_guess_cycles(a, f, method)
    noisy = scf_guess_cycles(a, f.reshape(n, n) + noise * 0.5 * (p + p.T), method)
    return (f"| {method} | {name} | {n} | {np.abs(d.orbital_energies - a.info['orbital_energies']).max():.1e} | "
            f"{np.abs(d.dipole - a.info['dipole_moment']).max():.1e} | {exact.cycles_guess} | {noisy.cycles_guess} | "
            f"{exact.cycles_default} | {exact.energy_guess - exact.energy_default:.1e} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="hf/def2-svp,pbe/def2-svp")
    ap.add_argument("--molecules", default="water,methanol")
    ap.add_argument("--noise", type=float, default=1e-2, help="Ha, standard deviation of the symmetric noise on F")
    args = ap.parse_args()
    print(f"| method | molecule | n_ao | max dE orbital Ha | max d dipole e*Bohr | cycles exact F | cycles F+{args.noise:g} noise "
          "| cycles minao | E(F) - E(minao) Ha |")
    print("|---|---|---|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        for name in args.molecules.split(","):
            print(row(method, name, args.noise), flush=True)


if __name__ == "__main__":
    main()
