"""Unlabelled crystal frames for the crystal half of the EFG benchmark (issue 16, docs/magnetic.md).

Li3N (P6/mmm, a = 3.648 A, c = 3.875 A; N at 1a, Li(1) at 1b, Li(2) at 2c: two Li sites with
different field gradients, and 7Li and 14N are both quadrupolar), each frame strained by a random
symmetric strain (normal, sigma 0.02 per component, then symmetrised) and rattled (sigma 0.06 A per
Cartesian component). Label with

    psilearn label li3n_frames.xyz --method pbe/6-31g --observables energy,efg --kmesh 2,2,2 -o li3n_efg.xyz

then learn with ``benchmarks/magnetic_efg.py li3n_efg.xyz --n-test 20 --sizes 5,10,20,40,max``.

    .venv/bin/python benchmarks/magnetic_efg_crystal_frames.py 120 --seed 0 -o li3n_frames.xyz
"""

from __future__ import annotations

import argparse

import numpy as np


def li3n_frames(n: int, seed: int) -> list:
    from ase.spacegroup import crystal

    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        atoms = crystal(["N", "Li", "Li"], [(0, 0, 0), (0, 0, 0.5), (1 / 3, 2 / 3, 0)], spacegroup=191,
                        cellpar=[3.648, 3.648, 3.875, 90, 90, 120])
        strain = rng.normal(0, 0.02, (3, 3))
        strain = (strain + strain.T) / 2
        atoms.set_cell(np.array(atoms.cell) @ (np.eye(3) + strain), scale_atoms=True)
        atoms.positions += rng.normal(0, 0.06, atoms.positions.shape)
        atoms.info["frame_seed"] = k
        frames.append(atoms)
    return frames


def main() -> int:
    from ase.io import write

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int, help="number of frames")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    write(args.output, li3n_frames(args.n, args.seed), format="extxyz")
    print(f"wrote {args.n} Li3N frames to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
