"""Pooling fidelities on the shared water dimers (issue 14): plain SA-GPR, delta-learning on GFN2-xTB,
and multi-fidelity (GFN2 on every pool structure + N reference labels) with either coregionalisation:
recursive co-kriging (`autoregressive`) or one coregionalised GP (`icm`), at N = 25-200 reference
labels, on an i.i.d. test set and on the compressed dimers (--methods picks the models).

Data: ../shared/data/water_tensors/water_dimer/coords_1000.xyz (`mu`, the set's reference dipole, a.u.,
or with --key alpha its polarizability, a.u.).
Frames 0-799: 200 random ones are the i.i.d. test set, the other 600 the pool; frames 800-999 (compressed
dimers, O-O 2.4-3.2 A) the shifted test set. GFN2-xTB dipoles (e*Bohr) are computed once for all 1000 frames
with psilearn's labeler (tblite) into a resumable store. The delta model needs GFN2 on the test structures
too (its cost is charged at prediction); multi-fidelity uses GFN2 only in training (600 pool structures).
RMSE of the dipole components in e*Bohr, mean over seeds (the N reference structures are drawn per seed).

    .venv/bin/python benchmarks/fidelity_water_dimer.py [--seeds 3] [--sizes 25,50,100,200] [--out DIR] [--key mu|alpha]
        [--methods plain,delta,autoregressive,icm] [--db GFN2_STORE]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "water_tensors", "water_dimer", "coords_1000.xyz")


TENSORS = {"mu": ("i", "dipole_moment", "e*Bohr"), "alpha": ("ij=ji", "alpha", "Bohr^3")}
METHODS = {"plain": "plain SA-GPR", "delta": "delta on GFN2", "autoregressive": "multi-fidelity", "icm": "multi-fidelity ICM"}


def gfn2_labels(frames, db: str, key: str = "mu") -> tuple[np.ndarray, float]:
    """GFN2-xTB values (n, 3**rank) of ``key``'s observable (a.u.) of ``frames`` through the label store ``db``,
    and their total compute seconds."""
    from psilearn.models.fidelity import BaselineMethod
    from psilearn.targets import Target

    tensor, label, units = TENSORS[key]
    method = BaselineMethod.resolve("gfn2", Target(key, tensor=tensor, units=units), label=label)
    labelled, _, seconds = method.label_frames(frames, db, workers=0, progress=True)
    values = np.array([np.ravel(np.asarray(a.info[method.key], float)) for a in labelled])
    if tensor == "ij=ji":  # finite-field polarizabilities of stores written before the labeler symmetrised them
        values = 0.5 * (values + values.reshape(-1, 3, 3).transpose(0, 2, 1).reshape(-1, 9))
    return values, seconds


def rmse(pred, truth) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - truth) ** 2)))


def run(sizes: list[int], seeds: int, out: str, key: str = "mu", methods: tuple = tuple(METHODS), db: str = "") -> None:
    from psilearn.data import load_dataset, read_structures
    from psilearn.models.factory import fit_model
    from psilearn.models.fidelity import delta_kind, icm_kind, multifidelity_kind
    from psilearn.targets import Target

    os.makedirs(out, exist_ok=True)
    frames = read_structures(DATA)
    t0 = time.perf_counter()
    gfn2, label_s = gfn2_labels(frames, db or os.path.join(out, "gfn2_dimers.db" if key == "mu" else f"gfn2_{key}_dimers.db"), key)
    print(f"GFN2-xTB {key} of {len(frames)} dimers: {label_s:.1f} s of stored compute ({time.perf_counter() - t0:.1f} s now)")
    for a, g in zip(frames, gfn2):
        a.info[f"{key}_gfn2"] = g
    target = Target(key, tensor=TENSORS[key][0], units=TENSORS[key][2])
    ref = np.array([np.ravel(a.info[key]) for a in frames])
    kinds = {"plain": "sagpr", "delta": delta_kind(f"{key}_gfn2"), "autoregressive": multifidelity_kind("level", ["gfn2", "ref"], "ref"),
             "icm": icm_kind("level", ["gfn2", "ref"], "ref")}
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        perm = rng.permutation(800)
        iid, pool = perm[:200], perm[200:]
        tests = {"iid": [frames[i] for i in iid], "shifted": frames[800:]}
        truth = {"iid": ref[iid], "shifted": ref[800:]}
        base = {"iid": gfn2[iid], "shifted": gfn2[800:]}
        for name in tests:
            rows.append(("GFN2-xTB alone", 0, seed, name, rmse(base[name], truth[name]), 0.0))
        lo = []
        for i in pool:
            b = frames[i].copy()
            b.info[key], b.info["level"] = gfn2[i].reshape(np.shape(frames[i].info[key])), "gfn2"
            lo.append(b)
        for n in sizes:
            hi = [frames[i].copy() for i in pool[:n]]
            for b in hi:
                b.info["level"] = "ref"
            for m in methods:
                t = time.perf_counter()
                both = m in ("autoregressive", "icm")
                model = fit_model(kinds[m], target, load_dataset(lo + hi if both else hi, target), {}, seed=0)
                fit_s = time.perf_counter() - t
                for name, test in tests.items():
                    rows.append((METHODS[m], n, seed, name, rmse(model.predict(test, return_std=False).values, truth[name]), fit_s))
                print(f"seed {seed} N={n} {METHODS[m]}: iid {rows[-2][4]:.4f} shifted {rows[-1][4]:.4f} ({fit_s:.1f} s)", flush=True)
                for r in model.metadata.get("multifidelity", {}).get("blocks", []):  # what the ICM learned, per block
                    print(f"  block {r['block']}: correlation {r['correlation'][0][1]:.4f}, amplitude ratio ref/gfn2 "
                          f"{r['amplitude_ratio_to_first'][1]:.3f}, noise std gfn2 {r['noise_std'][0]:.4g} ref {r['noise_std'][1]:.4g}")
    print("\n" + table(rows, sizes, f"{key} components ({TENSORS[key][2]})", ["GFN2-xTB alone"] + [METHODS[m] for m in methods]))


def table(rows, sizes, quantity: str = "dipole components (e*Bohr)", methods: list[str] | None = None) -> str:
    """Markdown table of rows (method, N, seed, test name 'iid'|'shifted', RMSE, fit s): mean +- std over seeds
    (also used by benchmarks/fidelity_nn_heads.py)."""
    methods = methods or ["GFN2-xTB alone", "plain SA-GPR", "delta on GFN2", "multi-fidelity"]
    lines = [f"RMSE of the {quantity}, mean +- std over seeds; fit s: mean seconds to fit that model",
             "| method | N ref | i.i.d. test | shifted test (compressed dimers) | fit s |", "|---|---|---|---|---|"]
    for m in methods:
        for n in ([0] if m == "GFN2-xTB alone" else sizes):
            sel = [r for r in rows if r[0] == m and r[1] == n]
            cell = {}
            for name in ("iid", "shifted"):
                v = np.array([r[4] for r in sel if r[3] == name])
                cell[name] = f"{v.mean():.4f} +- {v.std():.4f}"
            fit = np.mean([r[5] for r in sel]) if sel else 0.0
            lines.append(f"| {m} | {n if n else '-'} | {cell['iid']} | {cell['shifted']} | {fit:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="25,50,100,200")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default="bench-fidelity", help="directory for the GFN2 label store")
    ap.add_argument("--key", default="mu", choices=sorted(TENSORS), help="the observable: dipole mu or polarizability alpha")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    ap.add_argument("--db", default="", help="GFN2 label store (default OUT/gfn2_dimers.db for mu, OUT/gfn2_alpha_dimers.db)")
    args = ap.parse_args()
    run([int(s) for s in args.sizes.split(",")], args.seeds, args.out, args.key, tuple(args.methods.split(",")), args.db)


if __name__ == "__main__":
    main()
