"""J couplings: plain nn against Δ on a baseline psilearn computes (`--baseline-method hf/sto-3g`), issue 14.

Input: an extxyz labelled with `psilearn label FILE --method XC/BASIS --observables jcoupling` (the target
level, e.g. HF/6-31G; per structure `jcoupling_pairs` and `jcoupling`, P x 9 Hz). The structures are split
once (a fixed test set, `--test-fraction`, seed 0, as benchmarks/pairs_jcoupling.py); on growing training
subsets (`--sizes`) this fits

- the plain nn kind on J (the full tensor, `--per pair --tensor ij`);
- Δ with the labeler's J at `--method` as the baseline (`delta_method_kind(METHOD, inner)`), inner nn and
  inner `baseline` (the element-pair mean of the correction: a constant shift per element pair);

and reports on the test pairs the MAE of J_iso = tr J / 3 and the RMSE of the 9 components (Hz), with the
baseline alone (METHOD's J, no correction) as a reference. The baseline labels go through one label store
(`--db`), so each structure is labelled once; their summed label seconds (train + test) are reported, since
a Δ model pays the baseline at prediction time too.

    OMP_NUM_THREADS=1 python benchmarks/fidelity_jcoupling_delta.py LABELLED.xyz --method hf/sto-3g --db B.db [--sizes 10,25] [--max-seconds 120]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def iso(values: np.ndarray) -> np.ndarray:
    return values.reshape(-1, 3, 3).trace(axis1=1, axis2=2) / 3


def scores(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(MAE of J_iso, RMSE of the 9 components), Hz."""
    return float(np.mean(np.abs(iso(pred) - iso(ref)))), float(np.sqrt(np.mean((pred - ref) ** 2)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--method", default="hf/sto-3g", help="the baseline method (default hf/sto-3g)")
    ap.add_argument("--db", required=True, help="label store of the baseline")
    ap.add_argument("--sizes", default="10,25", help="training structures per point")
    ap.add_argument("--test-fraction", type=float, default=0.25)
    ap.add_argument("--max-seconds", type=float, default=120.0, help="training budget per nn model")
    ap.add_argument("--channels", type=int, default=16)
    args = ap.parse_args()

    from psilearn import Target, load_dataset
    from psilearn.models._torch.network import NetworkConfig
    from psilearn.models._torch.train import TrainConfig
    from psilearn.models.factory import fit_model
    from psilearn.models.fidelity import delta_method_kind
    from psilearn.models.nn.model import NNModel

    target = Target("jcoupling", per="pair", tensor="ij", units="Hz")
    data = load_dataset(args.data, target)
    order = np.random.default_rng(0).permutation(len(data))
    n_test = max(1, int(round(args.test_fraction * len(data))))
    test, pool = data.subset(order[:n_test]), order[n_test:]
    print(f"{args.data}: {len(data)} structures, {len(data.values)} pairs; test {len(test)} structures, {len(test.values)} pairs; "
          f"baseline {args.method}", flush=True)

    def nn() -> NNModel:
        net = NetworkConfig(cutoff=4.0, channels=args.channels, layers=2, correlation=2, lmax=2, radial_hidden=32)
        return NNModel(target, net, TrainConfig(epochs=400, batch_size=4, lr=5e-3, patience=60, threads=1, max_seconds=args.max_seconds), seed=0)

    def delta(inner):
        kind = delta_method_kind(args.method, "nn" if inner is not None else "baseline", db=args.db)
        if inner is None:
            return lambda train: fit_model(kind, target, train, {}, seed=0)
        return lambda train: kind(target, inner(), "", baseline_method=args.method, baseline_db=args.db).fit(train)

    # the baseline alone on the test pairs, labelling the test set once (reused by every Δ model below)
    probe = delta_method_kind(args.method, "baseline", db=args.db)(target, None, "", baseline_method=args.method, baseline_db=args.db)
    t0 = time.perf_counter()
    base_test, _ = probe._baseline(test.frames)
    print(f"baseline of the test set: {probe.last_baseline_summary.report()}; stored label seconds {probe.last_baseline_seconds:.1f}; "
          f"wall {time.perf_counter() - t0:.1f} s", flush=True)
    rows = [("baseline alone (" + args.method + ")", 0, *scores(base_test, test.values), 0.0)]
    for size in [int(s) for s in args.sizes.split(",")]:
        train = data.subset(pool[:size])
        for name, fit in (("plain nn", lambda tr: nn().fit(tr)), ("Δ nn", delta(nn)), ("Δ element-pair mean", delta(None))):
            t0 = time.perf_counter()
            model = fit(train)
            seconds = time.perf_counter() - t0
            pred = model.predict(test.frames)
            rows.append((name, size, *scores(pred.values, test.values), seconds))
            extra = ""
            if hasattr(model, "last_baseline_seconds"):
                extra = f"; baseline label seconds at predict (stored) {model.last_baseline_seconds:.1f}"
            print(f"n={size} {name}: J_iso MAE {rows[-1][2]:.2f} Hz, tensor RMSE {rows[-1][3]:.2f} Hz, fit {seconds:.0f} s{extra}", flush=True)
    print("\n| model | training structures | J_iso MAE (Hz) | tensor RMSE, 9 components (Hz) | fit (s) |")
    print("|---|---|---|---|---|")
    for name, n, mae, rmse, s in rows:
        print(f"| {name} | {n} | {mae:.2f} | {rmse:.2f} | {s:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
