"""SCF guesses from a learned Hamiltonian on molecules like the training ones and on larger ones.

    python benchmarks/hamiltonian_larger.py DIMERS.xyz --train 250 --test 10 \\
        --liquid ../shared/data/deepmd_sets/water_tensor/dipole/validation_data_reformat/global_system \\
        --waters 3,4,6 --clusters 5 --method pbe/def2-svp [--config opts.yaml] [--kind hamiltonian-sagpr]

DIMERS.xyz: water dimers labelled with ``psilearn label --observables hamiltonian`` (e.g. the first
frames of ../shared/data/water_tensors/water_dimer at PBE/def2-SVP). The model (default: the
hamiltonian-sagpr kind) is fitted on the first ``--train`` dimers; the SCF (``--method``, the labels'
method) is run from the predicted F and from PySCF's default guess (minao) on the next ``--test``
dimers (like the training molecules) and on clusters of n = 3, 4, 6 waters cut from liquid-water
frames (a water and its n-1 nearest neighbours by O-O distance under the cell's periodicity,
molecules kept whole): larger than anything in training. Prints one table of mean cycles, with the
H MAE against the labels for the held-out dimers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def water_clusters(frames, n_waters: int, count: int, seed: int = 0) -> list:
    """``count`` clusters of ``n_waters`` whole water molecules cut from periodic liquid ``frames``
    (Atoms with a cubic cell; every O with its two nearest H): non-periodic Atoms, O then its Hs."""
    from ase import Atoms

    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        a = frames[int(rng.integers(len(frames)))]
        cell = np.diag(a.cell.array)
        pos, z = a.positions, a.numbers
        o, h = np.flatnonzero(z == 8), np.flatnonzero(z == 1)
        mic = lambda d: d - cell * np.round(d / cell)  # noqa: E731 (minimum image, orthorhombic cell)
        centre = o[int(rng.integers(len(o)))]
        d_oo = np.linalg.norm(mic(pos[o] - pos[centre]), axis=1)
        symbols, xyz = [], []
        for oi in o[np.argsort(d_oo)[:n_waters]]:
            ro = pos[centre] + mic(pos[oi] - pos[centre])
            dh = mic(pos[h] - pos[oi])
            near = np.argsort(np.linalg.norm(dh, axis=1))[:2]
            symbols += ["O", "H", "H"]
            xyz += [ro, ro + dh[near[0]], ro + dh[near[1]]]
        out.append(Atoms(symbols, positions=np.array(xyz)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--train", type=int, default=250)
    ap.add_argument("--test", type=int, default=10)
    ap.add_argument("--liquid", required=True, help="DeePMD system (or any file) of liquid-water frames with a cell")
    ap.add_argument("--waters", default="3,4,6")
    ap.add_argument("--clusters", type=int, default=5)
    ap.add_argument("--method", default="pbe/def2-svp")
    ap.add_argument("--kind", default="hamiltonian-sagpr")
    ap.add_argument("--config")
    args = ap.parse_args()

    from psilearn.config import load_config
    from psilearn.data import load_hamiltonian_dataset, read_structures
    from psilearn.metrics.hamiltonian import dataset_metrics
    from psilearn.models.registry import model_class
    from psilearn.observe.hamiltonian import scf_guess_cycles

    ds = load_hamiltonian_dataset(args.data)
    train, test = ds.subset(np.arange(args.train)), ds.subset(np.arange(args.train, args.train + args.test))
    t0 = time.perf_counter()
    model = model_class(args.kind).build(ds.target, load_config(args.config) if args.config else {}, seed=0, progress=True).fit(train)
    print(f"fitted {args.kind} on {len(train)} dimers in {time.perf_counter() - t0:.0f} s", flush=True)
    liquid = read_structures(args.liquid)
    sets = [("water dimers (held out)", test.frames)]
    sets += [(f"{n}-water clusters from liquid", water_clusters(liquid, n, args.clusters, seed=n)) for n in map(int, args.waters.split(","))]
    rows = []
    for name, frames in sets:
        t0 = time.perf_counter()
        preds = model.predict(frames).matrices
        pred_ms = 1e3 * (time.perf_counter() - t0) / len(frames)
        res = [scf_guess_cycles(a, f, args.method) for a, f in zip(frames, preds)]
        g, d = np.mean([r.cycles_guess for r in res]), np.mean([r.cycles_default for r in res])
        de = max(abs(r.energy_guess - r.energy_default) for r in res)
        mae = f"{1e6 * dataset_metrics(preds, test)['h_mae']:.1f}" if frames is test.frames else "-"
        rows.append((name, len(frames), len(frames[0]), mae, g, d, de, pred_ms))
        print(rows[-1], flush=True)
    print(f"\n{args.kind} fitted on {len(train)} water dimers ({args.data}); SCF {args.method}, PySCF's default guess = minao")
    print("| molecules | n | atoms | H MAE uHa | SCF cycles from prediction | from minao | saved | max abs(dE) Ha | predict ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, n, atoms, mae, g, d, de, ms in rows:
        print(f"| {name} | {n} | {atoms} | {mae} | {g:.1f} | {d:.1f} | {100 * (1 - g / d):.0f} % | {de:.1e} | {ms:.0f} |")


if __name__ == "__main__":
    main()
