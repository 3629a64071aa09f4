"""J couplings as a per-pair target: learning curve of the nn kind's pair network (issue 16).

Input: an extxyz labelled with `psilearn label FILE --method XC/BASIS --observables jcoupling`
(per structure `jcoupling_pairs`, `jcoupling` (P x 9, Hz), `jcoupling_iso`). The structures are
split once by structure (a fixed test set, `--test-fraction`, seed 0); models are fitted on growing
subsets of the rest (`--sizes`) with a wall-time budget each, the full tensor as the target
(`--per pair --tensor ij`), and scored on the test pairs:

- J_iso = tr J / 3 (Hz): MAE per coupling type nJ(A,B) (n bonds apart; bonds from ASE's natural
  cutoffs), and over all pairs;
- the full tensor: RMSE over the 9 components (Hz);
- two references: the element-pair mean of J_iso (the composition baseline every model file
  records) and the mean of J_iso per coupling type nJ(A,B) over the training pairs (what a table of
  typical couplings gives; the element-pair mean where a type is absent from training);
- uncertainty: fraction of |error| of J_iso within 1 and 2 predicted sigma.

    OMP_NUM_THREADS=1 python benchmarks/pairs_jcoupling.py LABELLED.xyz [--sizes 10,20,40,0] [--max-seconds 600]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def bonds_apart(atoms, pairs: np.ndarray) -> np.ndarray:
    """Number of bonds between the two atoms of each pair (ASE natural cutoffs; 0 if unconnected)."""
    from ase.neighborlist import natural_cutoffs, neighbor_list
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import shortest_path

    i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.1))
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(len(atoms), len(atoms)))
    d = shortest_path(graph, unweighted=True)
    n = d[pairs[:, 0], pairs[:, 1]]
    return np.where(np.isfinite(n), n, 0).astype(int)


def coupling_types(frames, pairs) -> list[str]:
    from ase.data import chemical_symbols

    out = []
    for a, p in zip(frames, pairs):
        n = bonds_apart(a, p)
        for (i, j), k in zip(p, n):
            x, y = sorted((chemical_symbols[a.numbers[i]], chemical_symbols[a.numbers[j]]))
            out.append(f"{k}J({x},{y})")
    return out


def iso(values: np.ndarray) -> np.ndarray:
    return values.reshape(-1, 3, 3).trace(axis1=1, axis2=2) / 3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--sizes", default="10,20,40,0", help="training structures per point (0: all the training part)")
    ap.add_argument("--test-fraction", type=float, default=0.25)
    ap.add_argument("--max-seconds", type=float, default=600.0, help="training budget per model")
    ap.add_argument("--channels", type=int, default=16)
    args = ap.parse_args()

    from psilearn import Target, load_dataset
    from psilearn.models._torch.network import NetworkConfig
    from psilearn.models._torch.train import TrainConfig
    from psilearn.models.composition import composition_predict
    from psilearn.models.nn.model import NNModel

    target = Target("jcoupling", per="pair", tensor="ij", units="Hz")
    data = load_dataset(args.data, target)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data))
    n_test = max(1, int(round(args.test_fraction * len(data))))
    test, pool = data.subset(order[:n_test]), order[n_test:]
    types = np.array(coupling_types(test.frames, test.pairs))
    ref_iso = iso(test.values)
    print(f"{args.data}: {len(data)} structures, {len(data.values)} pairs; test {len(test)} structures, {len(test.values)} pairs")
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        n = len(pool) if size <= 0 or size > len(pool) else size
        train = data.subset(pool[:n])
        net = NetworkConfig(cutoff=4.0, channels=args.channels, layers=2, correlation=2, lmax=2, radial_hidden=32)
        cfg = TrainConfig(epochs=400, batch_size=4, lr=5e-3, patience=60, threads=1, max_seconds=args.max_seconds)
        t0 = time.perf_counter()
        model = NNModel(target, net, cfg, seed=0).fit(train)
        seconds = time.perf_counter() - t0
        pred = model.predict(test.frames)
        base = target.to_cartesian(composition_predict(model.metadata["composition_baseline"], target, test.frames, test.pairs))
        err, berr = iso(pred.values) - ref_iso, iso(base) - ref_iso
        train_types, train_iso = np.array(coupling_types(train.frames, train.pairs)), iso(train.values)
        type_mean = {t: float(train_iso[train_types == t].mean()) for t in set(train_types)}
        terr = np.array([type_mean.get(t, b) for t, b in zip(types, iso(base))]) - ref_iso
        b0 = next(b for b in target.blocks if b.l == 0)  # the 0e part is tr J / sqrt(3)
        sigma = pred.irreps_std[:, b0.start] / np.sqrt(3.0)
        row = {"n": n, "pairs": len(train.values), "seconds": seconds, "mae": np.mean(np.abs(err)), "base": np.mean(np.abs(berr)),
               "tbase": np.mean(np.abs(terr)),
               "rmse9": float(np.sqrt(np.mean((pred.values - test.values) ** 2))), "within1": float(np.mean(np.abs(err) <= sigma)),
               "within2": float(np.mean(np.abs(err) <= 2 * sigma)), "by_type": {}}
        for t in sorted(set(types), key=lambda s: (-np.sum(types == s), s)):
            m = types == t
            row["by_type"][t] = (int(m.sum()), float(np.mean(np.abs(err[m]))), float(np.mean(np.abs(berr[m]))), float(np.mean(np.abs(terr[m]))),
                                 float(np.std(ref_iso[m])))
        rows.append(row)
        print(f"n={n}: J_iso MAE {row['mae']:.2f} Hz (element-pair mean {row['base']:.2f}, coupling-type mean {row['tbase']:.2f}), "
              f"tensor RMSE {row['rmse9']:.2f} Hz, "
              f"{seconds:.0f} s", flush=True)
    print("\n| training structures | training pairs | J_iso MAE (Hz) | element-pair mean MAE (Hz) | coupling-type mean MAE (Hz) "
          "| tensor RMSE, 9 components (Hz) | within 1σ / 2σ | fit (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']} | {r['pairs']} | {r['mae']:.2f} | {r['base']:.2f} | {r['tbase']:.2f} | {r['rmse9']:.2f} | {100 * r['within1']:.0f}% / "
              f"{100 * r['within2']:.0f}% | {r['seconds']:.0f} |")
    last = rows[-1]
    print(f"\nBy coupling type (n = {last['n']} training structures; test pairs, MAE of J_iso in Hz):\n")
    print("| type | test pairs | model MAE | element-pair mean MAE | coupling-type mean MAE | spread (std) of the reference |")
    print("|---|---|---|---|---|---|")
    for t, (cnt, m, b, tb, s) in last["by_type"].items():
        print(f"| {t} | {cnt} | {m:.2f} | {b:.2f} | {tb:.2f} | {s:.2f} |")
    print("\n(0J: the two atoms are not connected by bonds of ASE's natural cutoffs x 1.1 in that MD frame, e.g. a stretched bond.)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
