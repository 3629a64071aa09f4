"""Labeling throughput: labels per hour per observable (water, methanol, ethanol) and campaign
scaling with --workers. Timings on a shared 2-core machine swing up to 2x: compare ratios.

    python benchmarks/labeling_throughput.py                      # pbe0/def2-svp + gfn2
    python benchmarks/labeling_throughput.py --method hf/sto-3g --quick
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from ase.build import molecule  # noqa: E402

from psilearn.label.campaign import run_campaign  # noqa: E402
from psilearn.label.registry import make_labeler  # noqa: E402
from psilearn.label.sampling import rattle_sample  # noqa: E402

MOLECULES = {"water": "H2O", "methanol": "CH3OH", "ethanol": "CH3CH2OH"}


def per_observable(method: str, observables: list[str], repeats: int) -> list[dict]:
    rows = []
    for name, formula in MOLECULES.items():
        frames = rattle_sample(molecule(formula), n=repeats, stdev=0.02, seed=1)
        base = make_labeler(method, "energy")
        base.label(frames[0])  # warm-up (imports, basis parsing)
        for obs in observables:
            try:
                lab = make_labeler(method, obs)
            except ValueError:
                continue
            t0 = time.perf_counter()
            for f in frames:
                lab.label(f)
            sec = (time.perf_counter() - t0) / len(frames)
            rows.append({"method": method, "molecule": name, "observable": obs,
                         "seconds_per_label": round(sec, 4), "labels_per_hour": round(3600 / sec)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def scaling(method: str, n: int, workers_list: list[int]) -> list[dict]:
    rows = []
    frames = rattle_sample(molecule("CH3OH"), n=n, stdev=0.02, seed=2)
    lab = make_labeler(method, "energy,dipole")
    for w in workers_list:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            s = run_campaign(frames, lab, os.path.join(tmp, "b.db"), workers=w, progress=False)
            sec = time.perf_counter() - t0
        rows.append({"method": method, "workers": w, "structures": n, "wall_seconds": round(sec, 2),
                     "labels_per_hour": round(3600 * s.done / sec), "failed": s.failed})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", action="append", help="default: pbe0/def2-svp and gfn2")
    p.add_argument("--observables", default="energy,forces,dipole,polarizability,charges,orbitals,shielding")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--scaling-structures", type=int, default=16)
    p.add_argument("--workers", default="1,2", help="worker counts for the scaling run")
    p.add_argument("--quick", action="store_true", help="1 repeat, 6 structures")
    p.add_argument("-o", "--output", help="write all rows as JSON")
    args = p.parse_args()
    methods = args.method or ["pbe0/def2-svp", "gfn2"]
    repeats = 1 if args.quick else args.repeats
    n = 6 if args.quick else args.scaling_structures
    rows = []
    for m in methods:
        rows += per_observable(m, args.observables.split(","), repeats)
        rows += scaling(m, n, [int(w) for w in args.workers.split(",")])
    if args.output:
        with open(args.output, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
