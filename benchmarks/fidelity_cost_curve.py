"""Cost curves of pooling fidelities (issue 14): error at the high level against the compute seconds of
every label used, for single-fidelity SA-GPR, delta-learning on a cheap level (GFN2-xTB, or --low METHOD) and
multi-fidelity.

DATA is a file labelled by `psilearn label` at the high level (it records `label_seconds` per structure),
e.g. GFN2-MD methanol frames labelled with PBE/def2-SVP. Low-level labels (GFN2-xTB unless --low) of every
frame are computed here with psilearn's labeler (stored in --out/LOW.db, reused on reruns). The first --test frames are the test
set; training sets are drawn from the rest per seed. Cost charged to each method:
  single fidelity: the N high-level labels;
  delta:           the N high-level labels + the low level on the N training and on every test structure (a delta
                   model needs its baseline at prediction);
  multi-fidelity:  the N high-level labels + the low level on the whole pool (training only).
RMSE of the Cartesian components in the label's units, mean over seeds.

    .venv/bin/python benchmarks/fidelity_cost_curve.py /work/bench/methanol_density.xyz --key dipole_moment --units e*Bohr \\
        --test 100 --sizes 10,25,50,100,200,300 --seeds 3

With --test-file, DATA (one or more files, structures repeated across them kept once, structures of the test set
dropped) is the training pool and the test set is the first --test structures of that file. --hi-seconds S charges S seconds per high-level label
when the data record no `label_seconds` (external labels, e.g. QM9 dipoles; a stand-in cost, said in the header):

    .venv/bin/python benchmarks/fidelity_cost_curve.py QMtrainRandom.xyz QMtrainFarthest.xyz --test-file TestQM9.xyz \\
        --key dipole_vector --units e*Bohr --test 300 --hi-seconds 34 --sizes 25,50,100,200,400,751 --seeds 3

--methods single,delta skips the multi-fidelity fits (slow on large pools); single fidelity is always fitted.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

#: the methods, by their name in the rows (before " on LOW") -> their --methods name
METHODS = {"single fidelity": "single", "delta": "delta", "multi-fidelity": "mf"}


def low_labels(low: str, frames, key: str, units: str, tensor: str, db: str) -> tuple[np.ndarray, np.ndarray]:
    """Values (n, 3**rank) of ``key``'s observable at the low level ``low`` (gfn2, or XC/BASIS) and per-structure
    compute seconds (the mean of the stored seconds of those labels: the labelled copies keep the input's own
    ``label_seconds``)."""
    from psilearn.models.fidelity import BaselineMethod
    from psilearn.targets import Target

    method = BaselineMethod.resolve(low, Target(key, tensor=tensor, units=units))
    labelled, _, total = method.label_frames(frames, db, workers=0, progress=True)
    values = np.array([np.ravel(np.asarray(a.info[method.key], float)) for a in labelled])
    return values, np.full(len(frames), total / len(frames))


def read_sets(args) -> tuple[list, list[int], np.ndarray]:
    """All structures, the test indices and the training-pool indices (see the module docstring)."""
    from psilearn.data import read_structures

    def key(a) -> tuple:
        return tuple(a.numbers), np.round(a.positions, 6).tobytes()

    tests = read_structures(args.test_file)[: args.test] if args.test_file else []
    frames, seen = [], {key(a) for a in tests}  # a pool structure that is also a test structure is dropped
    dropped = 0
    for path in args.data:
        for a in read_structures(path):
            if key(a) not in seen:  # the same molecule in two pool files is kept once
                seen.add(key(a))
                frames.append(a)
            else:
                dropped += 1
    if not args.test_file:
        return frames, list(range(args.test)), np.arange(args.test, len(frames))
    print(f"# pool: {len(frames)} distinct structures not in the test set ({dropped} repeats or test structures dropped)")
    return frames + tests, list(range(len(frames), len(frames) + len(tests))), np.arange(len(frames))


def hi_costs(frames, stand_in: float | None, charge: float | None = None) -> tuple[np.ndarray, str]:
    """Seconds per high-level label: ``charge`` for every label when given, else the recorded ``label_seconds``,
    else the stand-in (ValueError without one)."""
    if charge is not None:
        return np.full(len(frames), float(charge)), f"--charge-hi {charge:g} s charged per label instead of the recorded seconds"
    recorded = [a.info.get("label_seconds") for a in frames]
    if all(s is not None for s in recorded):
        return np.array(recorded, float), "recorded label_seconds"
    if stand_in is None:
        raise ValueError("some structures record no label_seconds: give --hi-seconds S (a stand-in cost per high-level label)")
    missing = sum(s is None for s in recorded)
    seconds = np.array([stand_in if s is None else float(s) for s in recorded])
    return seconds, f"stand-in cost --hi-seconds {stand_in:g} for the {missing} labels without label_seconds"


def run(args) -> list[tuple]:
    from psilearn.data import load_dataset
    from psilearn.models.factory import fit_model
    from psilearn.models.fidelity import delta_kind, multifidelity_kind
    from psilearn.targets import Target

    frames, test, candidates = read_sets(args)
    target = Target(args.key, tensor=args.tensor, units=args.units)
    hi_values = load_dataset(frames, target).values
    hi_seconds, cost_note = hi_costs(frames, args.hi_seconds, args.charge_hi)
    os.makedirs(args.out, exist_ok=True)
    lo_values, lo_seconds = low_labels(args.low, frames, args.key, args.units, args.tensor,
                                       os.path.join(args.out, f"{args.low.replace('/', '_')}.db"))
    print(f"{len(frames)} frames ({len(candidates)} pool, {len(test)} test); high level {frames[0].info.get('method', 'external')}: "
          f"{hi_seconds.mean():.2f} s per label ({cost_note}); low level {args.low}: {lo_seconds.mean() * 1000:.1f} ms per label")
    truth = hi_values[test]
    rows = []
    from psilearn.active.selection import cover_elements

    for seed in range(args.first_seed, args.first_seed + args.seeds):
        pool = np.random.default_rng(seed).permutation(candidates)
        pool_elements = [{int(z) for z in frames[i].numbers} for i in pool]
        lo = []
        for i in pool:
            b = frames[i].copy()
            b.info[args.key], b.info["level"] = lo_values[i], "gfn2"
            lo.append(b)
        for n in args.sizes:
            # the first n of the seed's order, with structures swapped in until every element of the pool occurs
            # (a model cannot predict an element it never saw: QM9's F is in ~2 % of the molecules)
            idx = pool[cover_elements(list(range(n)), pool_elements, np.random.default_rng([seed, n]))]
            hi = [frames[i].copy() for i in idx]
            for b, i in zip(hi, idx):
                b.info["level"], b.info["gfn2_value"] = "high", lo_values[i]
            tests = [frames[i].copy() for i in test]
            for b, i in zip(tests, test):
                b.info["gfn2_value"] = lo_values[i]
            cost_hi = hi_seconds[idx].sum()
            runs = {
                "single fidelity": ("sagpr", hi, cost_hi),
                f"delta on {args.low}": (delta_kind("gfn2_value"), hi, cost_hi + lo_seconds[idx].sum() + lo_seconds[test].sum()),
                "multi-fidelity": (multifidelity_kind("level", ["gfn2", "high"], "high"), lo + hi, cost_hi + lo_seconds[pool].sum()),
            }
            runs = {name: run for name, run in runs.items() if METHODS[name.split(" on ")[0]] in args.methods}
            for name, (kind, train, cost) in runs.items():
                t = time.perf_counter()
                model = fit_model(kind, target, load_dataset(train, target), {}, seed=0)
                fit_s = time.perf_counter() - t
                err = float(np.sqrt(np.mean((model.predict(tests, return_std=False).values - truth) ** 2)))
                rows.append((name, n, seed, cost, err, fit_s))
            print(f"seed {seed} N={n}: " + ", ".join(f"{r[0]} {r[4]:.4f} ({r[3]:.0f} s)" for r in rows[-len(runs):]), flush=True)
    rows += [(f"{args.low} alone", 0, 0, lo_seconds[test].sum(), float(np.sqrt(np.mean((lo_values[test] - truth) ** 2))), 0.0)]
    return rows


def table(rows, sizes, units: str, low: str, methods: tuple[str, ...] = ("single", "delta", "mf")) -> None:
    print(f"\nRMSE at the high level ({units}) and label seconds charged, mean over seeds")
    print("| method | N high-level labels | label seconds | RMSE | fit s |")
    print("|---|---|---|---|---|")
    names = [f"delta on {low}"] * ("delta" in methods) + ["multi-fidelity"] * ("mf" in methods)
    for m in (f"{low} alone", "single fidelity", *names):
        for n in ([0] if m == f"{low} alone" else sizes):
            sel = [r for r in rows if r[0] == m and r[1] == n]
            err = np.array([r[4] for r in sel])
            print(f"| {m} | {n if n else '-'} | {np.mean([r[3] for r in sel]):.0f} | {err.mean():.4f} +- {err.std():.4f} | "
                  f"{np.mean([r[5] for r in sel]):.1f} |")
    single = np.array([np.mean([r[4] for r in rows if r[0] == "single fidelity" and r[1] == n]) for n in sizes])
    envelope = np.minimum.accumulate(single)
    per_label = np.mean([r[3] / r[1] for r in rows if r[0] == "single fidelity"])  # seconds per high-level label
    print("\nlabel-cost ratio at equal error: the single-fidelity size N' with this method's error, interpolated log-log "
          "between the measured sizes, times its seconds per label, divided by this method's label seconds "
          "('>' when the method beats every single-fidelity size: the ratio at the largest one, a lower bound)")
    for m in names:
        out = []
        for n in sizes:
            sel = [r for r in rows if r[0] == m and r[1] == n]
            e, c = np.mean([r[4] for r in sel]), np.mean([r[3] for r in sel])
            if e < single.min():
                out.append(f"N={n}: >{sizes[-1] * per_label / c:.1f}x")
                continue
            # interpolate log N against log error on the best single-fidelity error reached with <= N labels (the
            # measured curve need not fall monotonically: a larger pool can add harder structures)
            n_eq = float(np.exp(np.interp(np.log(e), np.log(envelope[::-1]), np.log(np.array(sizes, float)[::-1]))))
            out.append(f"N={n}: {n_eq * per_label / c:.1f}x (N'={n_eq:.0f})")
        print(f"  {m}: " + ", ".join(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="+", help="labelled file(s); with --test-file the training pool")
    ap.add_argument("--test-file", default=None, help="the test set: its first --test structures (default: DATA's first --test)")
    ap.add_argument("--hi-seconds", type=float, default=None, help="stand-in seconds per high-level label without label_seconds")
    ap.add_argument("--charge-hi", type=float, default=None, help="charge S seconds per high-level label instead of the recorded "
                    "label_seconds (e.g. the measured cost of the dipole alone when the file's labels also computed a polarizability)")
    ap.add_argument("--low", default="gfn2", help="the cheap level psilearn computes (gfn2, gfn1 or XC/BASIS; default gfn2)")
    ap.add_argument("--key", default="dipole_moment")
    ap.add_argument("--tensor", default="i")
    ap.add_argument("--units", default="e*Bohr")
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--sizes", default="10,25,50,100,200")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds FIRST .. FIRST + SEEDS - 1 (to add seeds to a run)")
    ap.add_argument("--out", default="bench-fidelity-cost")
    ap.add_argument("--methods", default="single,delta,mf", help="which of single, delta and mf (multi-fidelity) to fit; "
                    "single is always fitted (the reference of the ratios)")
    args = ap.parse_args()
    given = [m.strip() for m in args.methods.split(",") if m.strip()]
    if set(given) - set(METHODS.values()):
        ap.error(f"--methods {args.methods}: choose among {', '.join(METHODS.values())}")
    args.methods = tuple(m for m in METHODS.values() if m == "single" or m in given)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    extra = ((f" --low {args.low}" if args.low != "gfn2" else "") + (f" --test-file {args.test_file}" if args.test_file else "")
             + (f" --hi-seconds {args.hi_seconds:g}" if args.hi_seconds else "") + (f" --charge-hi {args.charge_hi:g}" if args.charge_hi else ""))
    first = f" --first-seed {args.first_seed}" if args.first_seed else ""
    print(f"# python benchmarks/fidelity_cost_curve.py {' '.join(args.data)}{extra} --key {args.key} --tensor {args.tensor} --units {args.units} "
          f"--test {args.test} --sizes {','.join(map(str, args.sizes))} --seeds {args.seeds}{first} --methods {','.join(args.methods)}")
    table(run(args), args.sizes, args.units, args.low, args.methods)


if __name__ == "__main__":
    main()
