"""How many centres of held-out dimers and of larger water clusters a kernel Hamiltonian model fitted on
water dimers finds outside its training range (``HamiltonianPrediction.n_centres_outside``).

    python benchmarks/hamiltonian_coverage.py DIMERS.xyz --train 250 \\
        --liquid ../shared/data/deepmd_sets/water_tensor/dipole/validation_data_reformat/global_system

DIMERS.xyz as for benchmarks/hamiltonian_larger.py (water dimers labelled with --observables hamiltonian);
the model is the hamiltonian-sagpr kind with default options and no held-out step; the held-out set is
the dimers after the first ``--train``; the clusters are those of hamiltonian_larger.py (same seeds).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--train", type=int, default=250)
    ap.add_argument("--liquid", required=True)
    ap.add_argument("--waters", default="3,4,6")
    ap.add_argument("--clusters", type=int, default=5)
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    from hamiltonian_larger import water_clusters

    from psilearn.data import load_hamiltonian_dataset, read_structures
    from psilearn.models.registry import model_class

    ds = load_hamiltonian_dataset(args.data)
    model = model_class("hamiltonian-sagpr").build(ds.target, {"model": {"holdout": 0.0}}).fit(ds.subset(np.arange(args.train)))
    liquid = read_structures(args.liquid)
    sets = [("dimers (held out)", ds.subset(np.arange(args.train, len(ds))).frames)]
    sets += [(f"{n}-water clusters", water_clusters(liquid, n, args.clusters, seed=n)) for n in map(int, args.waters.split(","))]
    print("| molecules | structures | with centres outside | centres outside / all |")
    print("|---|---|---|---|")
    for name, frames in sets:
        pred = model.predict(frames)
        total = sum(len(a) + 2 * w for a, w in zip(frames, pred.n_pairs_within_cutoff))
        out = sum(pred.n_centres_outside)
        flagged = sum(n > 0 for n in pred.n_centres_outside)
        print(f"| {name} | {len(frames)} | {flagged} | {out} / {total} ({100 * out / total:.0f} %) |", flush=True)


if __name__ == "__main__":
    main()
