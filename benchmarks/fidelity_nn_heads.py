"""Multi-fidelity with the equivariant network (issue 14): one network with a readout per level
(`nn-multifidelity`) against a plain nn on the reference labels alone, the recursive co-kriging kind
with SA-GPR levels (`multifidelity`, the kernel route) and the recursive kind with
nn levels (what `--model nn --fidelity-key` builds), chosen with --methods.

Data: ../shared/data/water_tensors/water_dimer/coords_1000.xyz (KEY = `mu`, a.u., or `alpha`, a.u.), the
reference level. Frames 0-799 per seed: 200 random ones are the i.i.d. test set, the other 600 the pool;
frames 800-999 (compressed dimers) the shifted test set. GFN2-xTB labels of the same observable for every
frame come from psilearn's labeler (tblite) through a resumable label store (--db; the dipoles of
benchmarks/fidelity_water_dimer.py are reused when it points to that store). The multi-fidelity models
get GFN2 on the 600 pool structures plus N reference labels (the first N of the pool); the plain nn the N
reference labels. Every nn fit has the same network, seed and wall-time budget (--seconds, nn_train.max_seconds).
RMSE of the Cartesian components in the label's units, mean +- std over seeds.

Calibration of the heads network (its LLPR or ensemble std) on the i.i.d. test set, per level (each level's
readout against that level's labels: GFN2 and the reference), with the pooled factor (one per block, fitted
on the validation structures of all levels), with each level's own factor where it has >= 5 validation
structures (the kind's rule before the shrinkage: "own >= 5") and with the kind's factor (the level's own
shrunk towards the pooled one): RMS of error/std (ideal 1) and the fraction of Cartesian components within
1 and 2 std (ideal 0.683, 0.954), with the weight of the level's own data per block. --early-stopping target
makes early stopping watch the reference level's validation loss (nn_fidelity.early_stopping).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fidelity_nn_heads.py --key mu --sizes 25,50,100 --seeds 2 --seconds 60 \\
        --methods plain,heads,kernel,recursive-nn --db /work/bench/fid/gfn2_dimers.db
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fidelity_nn_heads.py --key mu --sizes 50,100 --seeds 2 --seconds 60 --methods heads
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from fidelity_water_dimer import table

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "water_tensors", "water_dimer", "coords_1000.xyz")
TENSORS = {"mu": ("i", "dipole_moment"), "alpha": ("ij=ji", "alpha")}
NET = dict(cutoff=5.0, channels=16, layers=2, correlation=2, lmax=2, n_basis=8, radial_hidden=32)


def gfn2_labels(frames, key: str, db: str) -> np.ndarray:
    """GFN2-xTB values (n, 3**rank) of ``key``'s observable through the label store ``db``."""
    from psilearn.models.fidelity import BaselineMethod
    from psilearn.targets import Target

    tensor, label = TENSORS[key]
    method = BaselineMethod.resolve("gfn2", Target(key, tensor=tensor, units="a.u."), label=label)
    labelled, _, seconds = method.label_frames(frames, db, workers=0, progress=False)
    print(f"GFN2-xTB {label} of {len(frames)} dimers: {seconds:.1f} s of stored compute", flush=True)
    values = np.array([np.ravel(np.asarray(a.info[method.key], float)) for a in labelled])
    if tensor == "ij=ji":  # finite-field polarizabilities of label stores written before the labeler symmetrised them
        values = 0.5 * (values + values.reshape(-1, 3, 3).transpose(0, 2, 1).reshape(-1, 9))
    return values


def rmse(pred, truth) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - truth) ** 2)))


def kinds(args) -> dict:
    from psilearn.models.fidelity import multifidelity_kind
    from psilearn.models.nn.multifidelity import nn_heads_kind

    levels = ["gfn2", "ref"]
    heads = "nn heads" + ("" if args.level_weights == "samples" else f" ({args.level_weights} level weights)")
    heads += "" if args.early_stopping == "all" else f" (early stopping on {args.early_stopping})"
    out = {"plain": ("plain nn (ref only)", "nn", False, True), "heads": (heads, nn_heads_kind("level", levels, "ref"), True, True),
           "kernel": ("recursive MF, SA-GPR", multifidelity_kind("level", levels, "ref", "sagpr"), True, False),
           "recursive-nn": ("recursive MF, nn", multifidelity_kind("level", levels, "ref", "nn"), True, True)}
    # label -> (kind, trained on both levels, reads the nn options)
    return {out[m][0]: out[m][1:] for m in args.methods}


def run(args) -> list[tuple]:
    from psilearn.data import load_dataset, read_structures
    from psilearn.models.factory import fit_model
    from psilearn.targets import Target

    frames = read_structures(DATA)
    gfn2 = gfn2_labels(frames, args.key, args.db)
    target = Target(args.key, tensor=TENSORS[args.key][0], units="a.u.")
    ref = np.array([np.ravel(a.info[args.key]) for a in frames])
    config = {"nn": NET, "nn_train": {"max_seconds": args.seconds, "epochs": 100000, "threads": 1, "patience": 60},
              "nn_fidelity": {"level_weights": args.level_weights, "early_stopping": args.early_stopping}}
    rows, args.calib = [], []
    for seed in range(args.seeds):
        perm = np.random.default_rng(seed).permutation(800)
        iid, pool = perm[:200], perm[200:]
        tests = {"iid": ([frames[i] for i in iid], ref[iid]), "shifted": (frames[800:], ref[800:])}
        for name, idx in (("iid", iid), ("shifted", np.arange(800, 1000))):
            rows.append(("GFN2-xTB alone", 0, seed, name, rmse(gfn2[idx], ref[idx]), 0.0))
        lo = []
        for i in pool:
            b = frames[i].copy()
            b.info[args.key], b.info["level"] = gfn2[i].reshape(np.shape(frames[i].info[args.key])), "gfn2"
            lo.append(b)
        for n in args.sizes:
            hi = [frames[i].copy() for i in pool[:n]]
            for b in hi:
                b.info["level"] = "ref"
            for label, (kind, pooled, nn) in kinds(args).items():
                t = time.perf_counter()
                cfg = {k: v for k, v in config.items() if k != "nn_fidelity" or label.startswith("nn heads")} if nn else {}
                model = fit_model(kind, target, load_dataset(lo + hi if pooled else hi, target), cfg, seed=seed)
                fit_s = time.perf_counter() - t
                for name, (test, truth) in tests.items():
                    rows.append((label, n, seed, name, rmse(model.predict(test, return_std=False).values, truth), fit_s))
                if label.startswith("nn heads"):
                    args.calib += calibration_rows(model, label, n, seed, tests["iid"][0], {"gfn2": gfn2[iid], "ref": ref[iid]})
                print(f"seed {seed} N={n} {label}: iid {rows[-2][4]:.4f} shifted {rows[-1][4]:.4f} ({fit_s:.0f} s)", flush=True)
    return rows


MODES = {"pooled": "pooled", "own": "own >= 5", "shrunk": "shrunk"}


def old_factors(model) -> np.ndarray:
    """The per-level factors of the rule before the shrinkage: the level's own with >= 5 validation structures, else the pooled one."""
    recs = model.metadata["multifidelity"]["per_level"]
    return np.array([r["calibration"]["alpha2_own"] if r["n_validation_structures"] >= 5 else r["calibration"]["alpha2_pooled"] for r in recs])


def calibration_rows(model, label: str, n: int, seed: int, test, truth: dict) -> list[tuple]:
    """(method, N, seed, level, weight of the level's own data per block, {mode: calibration}) per level, for the
    pooled factor, the old rule and the shrunk factor."""
    from psilearn.metrics.regression import calibration

    out = []
    shrunk = model.level_alpha2
    factors = {"pooled": None, "own": old_factors(model), "shrunk": shrunk}  # None: the pooled factor (as for files before the per-level one)
    for k, level in enumerate(model.levels):
        res = {}
        for mode, a2 in factors.items():
            model.level_alpha2 = a2
            p = model.predict(test, fidelity=level)
            res[mode] = calibration(truth[level], p.values, p.std)
        model.level_alpha2 = shrunk
        weight = "/".join(f"{x:.2f}" for x in model.level_weight[k])
        out.append((label, n, seed, level, weight, res))
        print(f"  calibration {level} (weight of own data {weight}): rms z " + ", ".join(f"{MODES[m]} {r['rms_z']:.2f}" for m, r in res.items()),
              flush=True)
    return out


def calibration_table(calib: list[tuple], quantity: str) -> str:
    """Markdown table: per method, N and level, RMS z and 68/95 % coverage with the pooled factor, the old rule and the
    shrunk factor (mean over seeds), and the weight of the level's own data (per seed, per block)."""
    head = [f"{q} {MODES[m]}" for q in ("RMS z", "68 %", "95 %") for m in MODES]
    lines = [f"Calibration on the i.i.d. test set ({quantity}), each level's readout against its own labels, mean over seeds; "
             "weight of own data: per seed (blocks separated by /)",
             f"| method | N ref | level | weight of own data | {' | '.join(head)} |", "|---" * (4 + len(head)) + "|"]
    for key in dict.fromkeys((r[0], r[1], r[3]) for r in calib):
        sel = [r for r in calib if (r[0], r[1], r[3]) == key]
        cells = [f"{np.mean([r[5][m][q] for r in sel]):.2f}" for q in ("rms_z", "within_1sigma", "within_2sigma") for m in MODES]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {'; '.join(r[4] for r in sel)} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--key", default="mu", choices=sorted(TENSORS))
    ap.add_argument("--sizes", default="25,50,100")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=60.0, help="wall-time budget of every nn fit (nn_train.max_seconds)")
    ap.add_argument("--methods", default="plain,heads,kernel", help="of plain, heads, kernel, recursive-nn (the recursive kind with "
                    "nn levels: two nn fits)")
    ap.add_argument("--level-weights", default="samples", choices=("samples", "balanced"), help="nn_fidelity.level_weights of the heads")
    ap.add_argument("--early-stopping", default="all", choices=("all", "target"), help="nn_fidelity.early_stopping of the heads")
    ap.add_argument("--db", default="bench-fidelity/gfn2_dimers.db", help="GFN2 label store (resumable, reused)")
    args = ap.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.methods = [m.strip() for m in args.methods.split(",")]
    rows = run(args)
    print(table(rows, args.sizes, f"{args.key} components (a.u.)", list(dict.fromkeys(r[0] for r in rows))))
    if args.calib:
        print(calibration_table(args.calib, f"{args.key} components"))


if __name__ == "__main__":
    main()
