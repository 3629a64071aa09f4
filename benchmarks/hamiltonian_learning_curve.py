"""Hamiltonian learning curve: H MAE, occupied orbital-energy MAE, gap MAE and orbital cosine against
training-set size, next to published numbers (MD17 water and ethanol, PBE/def2-SVP), plus SCF cycles
from the predicted guess on held-out molecules.

    python benchmarks/hamiltonian_learning_curve.py LABELLED.xyz --sizes 50,200,500 --test 100 \
        [--kind hamiltonian-sagpr | --kind hamiltonian --max-seconds 1800] [--config opts.yaml] \
        [--scf 10 --method pbe/def2-svp] [--json out.json]

``--kind`` hamiltonian-sagpr (the kernel kind; ``--config`` sections soap/model) or hamiltonian (the
network; nn/nn_train/hamiltonian sections, ``--max-seconds`` of training per size).

LABELLED.xyz: structures labelled with ``psilearn label --observables hamiltonian`` (e.g. the water
monomers of ../shared/data/water_tensors/water_monomer at PBE/def2-SVP). The test set is the last
``--test`` structures of a fixed random permutation (seed 0); training sets are nested prefixes of the
rest. Published numbers are those quoted in issue 13 (QHNet: Yu et al. 2023; PhiSNet: Unke et al. 2021;
SchNOrb: Schütt et al. 2019), trained on 500 (water) / 25 000 (ethanol) MD17 structures on GPUs.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

PUBLISHED = {  # micro-Hartree: H MAE, occupied orbital-energy MAE, cosine (%)
    "water": [("QHNet", 10.8, 33.8, 99.99), ("PhiSNet", 17.6, None, None), ("SchNOrb", 165.0, None, None)],
    "ethanol": [("QHNet", 20.9, 81.0, None)],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--sizes", default="50,200,500")
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--max-seconds", type=float, default=1800.0, help="training budget per size (s)")
    ap.add_argument("--epochs", type=int, default=2000)
    ap.add_argument("--kind", default="hamiltonian-sagpr", choices=("hamiltonian-sagpr", "hamiltonian"))
    ap.add_argument("--config", help="YAML options of the kind (soap/model, or nn/nn_train/hamiltonian)")
    ap.add_argument("--scf", type=int, default=0, help="held-out molecules for the SCF-guess comparison")
    ap.add_argument("--method", default="pbe/def2-svp", help="SCF method of the guess comparison (the labels' method)")
    ap.add_argument("--molecule", default="water", choices=sorted(PUBLISHED))
    ap.add_argument("--json")
    args = ap.parse_args()

    from psilearn.config import load_config
    from psilearn.data import load_hamiltonian_dataset
    from psilearn.metrics.hamiltonian import dataset_metrics
    from psilearn.models.registry import model_class
    from psilearn.observe.hamiltonian import scf_guess_cycles

    ds = load_hamiltonian_dataset(args.data)
    perm = np.random.default_rng(0).permutation(len(ds))
    test, pool = perm[-args.test:], perm[: -args.test]
    te = ds.subset(test)
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        config = load_config(args.config) if args.config else {}
        if args.kind == "hamiltonian":
            config.setdefault("nn_train", {}).update({"epochs": args.epochs, "max_seconds": args.max_seconds})
        model = model_class(args.kind).build(ds.target, config, seed=0, progress=True)
        t0 = time.perf_counter()
        model.fit(ds.subset(pool[:n]))
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        preds = model.predict(te.frames).matrices
        pred_ms = 1e3 * (time.perf_counter() - t0) / len(te)
        m = dataset_metrics(preds, te)
        net = args.kind == "hamiltonian"
        row = {"kind": args.kind, "n_train": n, "fit_s": fit_s, "predict_ms": pred_ms,
               "epochs": model.metadata["members"][0]["epochs"] if net else "-",
               "stopped": model.metadata["members"][0]["stopped"] if net else "-", "n_parameters": model.metadata["n_parameters"], **m}
        if args.scf:
            res = [scf_guess_cycles(te.frames[k], preds[k], args.method) for k in range(min(args.scf, len(te)))]
            row["scf_cycles_guess"] = float(np.mean([r.cycles_guess for r in res]))
            row["scf_cycles_default"] = float(np.mean([r.cycles_default for r in res]))
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{args.data}: test {len(te)} structures; micro-Hartree")
    print("| model | n_train | H MAE | occ. eps MAE | gap MAE | cosine % | fit s | epochs | predict ms/structure | SCF cycles guess/default |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        scf = f"{r['scf_cycles_guess']:.1f} / {r['scf_cycles_default']:.1f}" if "scf_cycles_guess" in r else "-"
        print(f"| psilearn {r['kind']} | {r['n_train']} | {1e6 * r['h_mae']:.1f} | {1e6 * r['occupied_energy_mae']:.1f} | "
              f"{1e6 * r['gap_mae']:.1f} | {100 * r['coefficient_cosine']:.5f} | {r['fit_s']:.0f} | {r['epochs']} | "
              f"{r['predict_ms']:.1f} | {scf} |")
    for name, h, e, c in PUBLISHED[args.molecule]:
        n = 500 if args.molecule == "water" else 25000
        print(f"| {name} (published, GPU) | {n} | {h} | {e if e is not None else '-'} | - | {c if c is not None else '-'} | - | - | - | - |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
