"""Synthetic spin lattice: SA-GPR with and without collinear magnetic moments as inputs (issue 16).

Structures: bcc Fe (a = 2.87 A) supercells (3x3x3 cubic cells, 54 atoms, so that no pair within the
exchange cutoff is counted through two periodic images), every atom displaced by a Gaussian of
0.05 A. Moments: half the configurations random +-1, half random signs times magnitudes in
[0.5, 2.5]. Energy (eV) E = -sum_{i<j} J(r_ij) m_i m_j over all pairs within 4.5 A (periodic
images included) with J(r) = J0 exp(-(r - r1)/1.2) cos(2 pi (r - r1)/2.4) fc(r), J0 = 20 meV,
r1 = 2.485 A (the first shell), fc a cosine cutoff from 4.0 to 4.5 A: ferromagnetic first and
second shells, antiferromagnetic third shell.

Two models of the per-structure energy are fitted on the same training set: `model:
{magnetic_moments: collinear}` and the default (geometry only). With `--noncollinear` the moments are
vectors (half the configurations collinear along z with the magnitudes above, half random directions
with magnitudes in [0.5, 2.5]), E = -sum_{i<j} J(r_ij) m_i . m_j, and the moment model is `noncollinear`. Reported: test RMSE (meV/atom and
relative to the test set's std), Spearman's rank correlation of the test energies (the ordering), and
J(r) recovered from the model by the four-state method on test geometries and moment backgrounds,
J_ij = -[E(++) + E(--) - E(+-) - E(-+)] / 4 (m_i, m_j set to +-1, the rest fixed), against the
true J(r_ij) for the neighbours of one atom of each of the first test structures.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/magnetic_spin_lattice.py            # ~2-4 min
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/magnetic_spin_lattice.py --noncollinear
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/magnetic_spin_lattice.py --model nn --max-seconds 300
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/magnetic_spin_lattice.py --n-train 100 --supercell 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np

A_FE, R1, J0, RC_IN, RC = 2.87, 2.485, 0.020, 4.0, 4.5
SOAP = {"cutoff": 5.0, "smoothing": 0.5, "density_width": 0.25, "max_radial": 8, "max_angular": 2}
NET = {"cutoff": 4.6, "channels": 16, "layers": 2, "correlation": 2, "lmax": 1, "n_basis": 8}


def exchange(r: np.ndarray) -> np.ndarray:
    """J(r) in eV."""
    fc = np.where(r < RC_IN, 1.0, np.where(r < RC, 0.5 * (1 + np.cos(np.pi * (r - RC_IN) / (RC - RC_IN))), 0.0))
    return J0 * np.exp(-(r - R1) / 1.2) * np.cos(2 * np.pi * (r - R1) / 2.4) * fc


def energy(atoms, m: np.ndarray) -> float:
    """-sum_{i<j} J(r_ij) m_i . m_j (m (n,) or (n, 3)), periodic images included (each pair appears
    twice in the list)."""
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, RC)
    mm = m.reshape(len(m), -1)
    return float(-0.5 * np.sum(exchange(d) * np.einsum("pa,pa->p", mm[i], mm[j])))


def structures(n: int, supercell: int, seed: int, noncollinear: bool = False) -> list:
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = bulk("Fe", "bcc", a=A_FE, cubic=True).repeat(supercell)
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        m = rng.choice([-1.0, 1.0], len(a))
        if k % 2:
            m = m * rng.uniform(0.5, 2.5, len(a))
        if noncollinear:
            if k % 4 >= 2:  # random directions
                u = rng.normal(size=(len(a), 3))
                m = u / np.linalg.norm(u, axis=1, keepdims=True) * rng.uniform(0.5, 2.5, (len(a), 1))
            else:
                m = np.outer(m, [0.0, 0.0, 1.0])
        a.arrays["initial_magmoms"] = m
        a.info["energy"] = energy(a, m)
        out.append(a)
    return out


def four_state_j(model, atoms, i: int, neighbours: np.ndarray) -> np.ndarray:
    """J_ij of the model for each j in ``neighbours``, by the four-state method on ``atoms``' moments."""
    frames = []
    for j in neighbours:
        for si, sj in ((1, 1), (-1, -1), (1, -1), (-1, 1)):
            b = atoms.copy()
            m = b.arrays["initial_magmoms"].copy()
            if m.ndim == 2:  # vectors: the pair along +-z
                si, sj = np.array([0.0, 0.0, si]), np.array([0.0, 0.0, sj])
            m[i], m[j] = si, sj
            b.arrays["initial_magmoms"] = m
            frames.append(b)
    e = model.predict(frames, return_std=False).values[:, 0].reshape(-1, 4)
    return -(e[:, 0] + e[:, 1] - e[:, 2] - e[:, 3]) / 4


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, default=150)
    ap.add_argument("--n-test", type=int, default=50)
    ap.add_argument("--supercell", type=int, default=3)
    ap.add_argument("--n-sparse", type=int, default=400)
    ap.add_argument("--j-structures", type=int, default=3, help="test structures used for J(r)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noncollinear", action="store_true", help="vector moments, model magnetic_moments: noncollinear")
    ap.add_argument("--model", choices=("sagpr", "nn"), default="sagpr")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="nn: training time budget per model")
    args = ap.parse_args()
    from ase.neighborlist import neighbor_list
    from scipy.stats import spearmanr

    from psilearn import Target, load_dataset
    from psilearn.models.factory import fit_model

    frames = structures(args.n_train + args.n_test, args.supercell, args.seed, args.noncollinear)
    target = Target("energy")
    train, test = load_dataset(frames[: args.n_train], target), frames[args.n_train :]
    e_true = np.array([a.info["energy"] for a in test])
    n_atoms = len(test[0])
    print(f"{len(frames[0])} atoms per structure, {args.n_train} training / {args.n_test} test structures; "
          f"test energies: std {1000 * e_true.std() / n_atoms:.3f} meV/atom")
    print(f"{'model':<13}{'RMSE meV/atom':>15}{'RMSE/std':>10}{'Spearman':>10}{'J RMSE meV':>12}{'J corr':>8}{'fit s':>8}")
    for mode in ("noncollinear" if args.noncollinear else "collinear", "none"):
        t0 = time.perf_counter()
        config = {"soap": SOAP, "model": {"n_sparse": args.n_sparse, "magnetic_moments": mode}}
        if args.model == "nn":
            config = {"nn": {**NET, "magnetic_moments": mode},
                      "nn_train": {"epochs": 300, "threads": 1, "uncertainty": "none", "max_seconds": args.max_seconds}}
        model = fit_model(args.model, target, train, config, seed=args.seed)
        fit_s = time.perf_counter() - t0
        e_pred = model.predict(test, return_std=False).values[:, 0]
        rmse = np.sqrt(np.mean((e_pred - e_true) ** 2))
        rho = spearmanr(e_true, e_pred).statistic if np.ptp(e_pred) > 0 else float("nan")
        j_true, j_pred, r_ij = [], [], []
        for a in test[: args.j_structures]:
            ii, jj, d = neighbor_list("ijd", a, RC)
            sel = (ii == 0) & (jj != 0)
            j_pred.append(four_state_j(model, a, 0, jj[sel]))
            j_true.append(exchange(d[sel]))
            r_ij.append(d[sel])
        j_true, j_pred, r_ij = map(np.concatenate, (j_true, j_pred, r_ij))
        j_rmse = 1000 * np.sqrt(np.mean((j_pred - j_true) ** 2))
        j_corr = np.corrcoef(j_true, j_pred)[0, 1] if np.ptp(j_pred) > 0 else float("nan")
        print(f"{mode:<13}{1000 * rmse / n_atoms:>15.3f}{rmse / e_true.std():>10.3f}{rho:>10.3f}{j_rmse:>12.3f}"
              f"{j_corr:>8.3f}{fit_s:>8.1f}", flush=True)
        for lo, hi in ((2.2, 2.7), (2.7, 3.3), (3.7, 4.5)):
            s = (r_ij >= lo) & (r_ij < hi)
            print(f"    shell r in [{lo}, {hi}) A ({s.sum()} pairs): J true {1000 * j_true[s].mean():7.3f} "
                  f"+- {1000 * j_true[s].std():.3f} meV, model {1000 * j_pred[s].mean():7.3f} +- {1000 * j_pred[s].std():.3f} meV")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
