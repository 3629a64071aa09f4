"""Local SA-GPR vs kernel charge equilibration (QEq) on QM9 dipoles and charges, incl. ions.

Data: ``../shared/data/qm9_dipoles_charges`` (Staacke et al., kQEq, MIT licence; see its
SOURCE_COMMIT). Train on QMtrainRandom and QMtrainFarthest (385 molecules each), test on TestQM9
(1000 neutral molecules) and on the charged PlusSet / MinusSet (100 cations / anions).

What the labels are (checked by this script, printed at start):
* ``dipole_vector`` is in e*Bohr: its norm is ~2.38x smaller than QM9's ``dipole_moment`` (Debye,
  a different calculation; e*Bohr -> Debye is 2.54), and on the ions the Mulliken-charge dipole
  in e*Angstrom times 1.89 (= 1/0.529) reproduces it best.
* neutral sets carry per-atom ``initial_charges`` (sum 0); PlusSet/MinusSet carry ``mulliken``
  charges summing to +1/-1 but no ``atoms.info['charge']``: we set it from that sum. The two charge
  definitions differ, so charge errors on the ions mix model error and definition mismatch.
* the ions are centred at their centre of mass, so their dipoles (origin-dependent) are taken
  about the centre of mass, QEq's default origin.

Models (all with the same lambda-SOAP and sparse-GP machinery):
  sagpr-dipole   SA-GPR on dipole_vector (l=1, sum of atomic vectors): no charges
  sagpr-charges  SA-GPR on per-atom charges; dipole = sum q r (COM)
  qeq-dipole     QEq trained on dipoles only (charges latent)
  qeq-charges    QEq trained on charges only
  qeq-both       QEq trained on dipoles and charges (--charge-weight)
  qeq-dipole+ad  QEq + local atomic dipoles (l=1 SA-GPR), fitted jointly on dipoles
  qeq-nn-dipole  QEq with NN electronegativities (e3nn network, model kind qeq-nn) from dipoles
  qeq-nn-charges QEq with NN electronegativities from charges
  qeq-nn-both    QEq with NN electronegativities from dipoles and charges
(the qeq-nn models are not in the default list: --models qeq-nn-dipole,qeq-nn-charges --train random;
budget set by --nn-epochs / --nn-max-seconds / --nn-channels; QEq width scale fixed at the kernel
model's CV choice on QMtrainRandom, NN_WIDTHS)

Usage (2 shared cores: run in the background at low priority):
  nice -n 10 .venv/bin/python benchmarks/longrange_qm9.py --out /tmp/lr_qm9          # full
  .venv/bin/python benchmarks/longrange_qm9.py --quick                                 # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # shared machine: one BLAS thread unless told otherwise

import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "qm9_dipoles_charges"
TRAIN = {"random": "QMtrainRandom.xyz", "farthest": "QMtrainFarthest.xyz"}
TESTS = {"TestQM9": "TestQM9.xyz", "PlusSet": "PlusSet.xyz", "MinusSet": "MinusSet.xyz"}
BOHR = 0.5291772105638411  # Angstrom
UNITS = "e*Bohr"


def read(name: str, limit: int | None = None):
    """Frames with ``charge`` set and reference charges under ``ref_charges`` (e)."""
    import ase.io

    frames = ase.io.read(DATA / name, ":" if limit is None else f":{limit}")
    for i, a in enumerate(frames):
        key = "initial_charges" if "initial_charges" in a.arrays else "mulliken"
        q = np.asarray(a.arrays[key], float)
        a.arrays["ref_charges"] = q
        a.info["charge"] = int(round(q.sum()))
        a.info["dipole_vector"] = np.asarray(a.info["dipole_vector"], float)
        a.info["source"] = f"{name}:{i}"
    return frames


def check_units(frames) -> dict:
    """Evidence for the units of dipole_vector (printed and stored with the results)."""
    ratio = [a.info["dipole_moment"] / np.linalg.norm(a.info["dipole_vector"]) for a in frames
             if "dipole_moment" in a.info and np.linalg.norm(a.info["dipole_vector"]) > 0.1]
    return {"median |dipole_moment [D]| / |dipole_vector|": float(np.median(ratio)) if ratio else None,
            "e*Bohr -> Debye": 2.5417}


def ion_scale(frames) -> float:
    """Least-squares factor between dipole_vector and the Mulliken dipole in e*Angstrom (COM)."""
    m = np.array([a.info["dipole_vector"] for a in frames])
    q = np.array([a.arrays["ref_charges"] @ (a.positions - a.get_center_of_mass()) for a in frames])
    return float((m * q).sum() / (q * q).sum())


def rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def evaluate(kind: str, model, frames) -> dict:
    """Dipole RMSE (e*Bohr, per Cartesian component) and charge RMSE (e) on ``frames``."""
    mu_ref = np.array([a.info["dipole_vector"] for a in frames])
    q_ref = np.concatenate([a.arrays["ref_charges"] for a in frames])
    t0 = time.perf_counter()
    pred = model.predict(frames, return_std=True)
    out = {"predict_seconds": round(time.perf_counter() - t0, 2)}
    if kind.startswith("sagpr-dipole"):
        mu, q = pred.values, None
    elif kind == "sagpr-charges":
        q = pred.values[:, 0]
        off = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
        mu = np.array([q[off[i]:off[i + 1]] @ (a.positions - a.get_center_of_mass()) for i, a in enumerate(frames)]) / BOHR
    else:
        q = pred.charges
        mu = pred.dipoles if not kind.endswith("-charges") else pred.dipoles / BOHR  # charge models: e*A
    out["dipole_rmse"] = rmse(mu, mu_ref)
    out["dipole_norm_mae"] = float(np.mean(np.abs(np.linalg.norm(mu, axis=1) - np.linalg.norm(mu_ref, axis=1))))
    out["charge_rmse"] = rmse(q, q_ref) if q is not None else None
    if q is not None:
        off = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
        totals = np.add.reduceat(q, off[:-1])
        out["max_total_charge_error"] = float(np.abs(totals - np.array([a.info["charge"] for a in frames])).max())
    std = pred.std if kind != "sagpr-charges" else None
    if std is not None and kind in ("sagpr-dipole", "sagpr-dipole+state", "qeq-dipole", "qeq-dipole+state", "qeq-both", "qeq-dipole+ad",
                                 "qeq-nn-dipole", "qeq-nn-both"):
        z = (mu - mu_ref) / np.maximum(std, 1e-12)
        out["dipole_within_1sigma"] = float(np.mean(np.abs(z) <= 1))
    return out


WIDTHS = [0.5, 0.75, 1.0]  # QEq Gaussian width scales, one chosen per model by k-fold CV on the training set


#: QEq width scales of the NN backend: the kernel models' 5-fold CV choice on QMtrainRandom
NN_WIDTHS = {"dipole": 0.75, "charges": 0.5, "both": 0.5}
NN_DEFAULTS = {"channels": 32, "epochs": 150, "max_seconds": 900.0}


def build(kind: str, n_sparse: int, charge_weight: float, seed: int, nn_opts: dict | None = None):
    nn_opts = {**NN_DEFAULTS, **(nn_opts or {})}
    from psilearn.features import SoapConfig
    from psilearn.models import SAGPR, SAGPRConfig
    from psilearn.models.qeq.model import QEqConfig, QEqModel
    from psilearn.targets import Target

    soap = SoapConfig()  # defaults: cutoff 5 A, 6 radial, l_max 4
    dip = Target("dipole_vector", tensor="i", units=UNITS)
    chg = Target("ref_charges", per="atom", units="e")
    if kind == "sagpr-dipole":  # the rows without "+state" do not see the charge state (global_state defaults to auto)
        return dip, SAGPR(dip, soap, SAGPRConfig(n_sparse=n_sparse, seed=seed, global_state="none"))
    if kind == "sagpr-dipole+state":
        return dip, SAGPR(dip, soap, SAGPRConfig(n_sparse=n_sparse, seed=seed, global_state="charge+spin"))
    if kind == "sagpr-charges":
        return chg, SAGPR(chg, soap, SAGPRConfig(n_sparse=n_sparse, seed=seed, global_state="none"))
    if kind == "qeq-dipole":
        return dip, QEqModel(dip, soap, QEqConfig(n_sparse=n_sparse, seed=seed, width_scales=WIDTHS, global_state="constraint"))
    if kind.startswith("qeq-nn-"):
        from psilearn.models.nn import NetworkConfig, TrainConfig
        from psilearn.models.qeq.nn_model import QEqNNConfig, QEqNNModel

        net = NetworkConfig(cutoff=5.0, channels=nn_opts["channels"])
        train = TrainConfig(epochs=nn_opts["epochs"], max_seconds=nn_opts["max_seconds"], threads=1, checkpoint_every=10**6)
        what = kind[len("qeq-nn-"):]
        qeq = {"width_scale": NN_WIDTHS[what]}
        if what == "charges":
            return chg, QEqNNModel(chg, net, train, QEqNNConfig(qeq=qeq), seed=seed)
        extra = {"charges_key": "ref_charges", "charge_weight": charge_weight} if what == "both" else {}
        return dip, QEqNNModel(dip, net, train, QEqNNConfig(qeq=qeq, **extra), seed=seed)
    if kind == "qeq-dipole+ad":
        return dip, QEqModel(dip, soap, QEqConfig(n_sparse=n_sparse, seed=seed, width_scales=WIDTHS, atomic_dipoles=True,
                                                  global_state="constraint"))
    if kind == "qeq-dipole+state":
        return dip, QEqModel(dip, soap, QEqConfig(n_sparse=n_sparse, seed=seed, width_scales=WIDTHS, global_state="kernel"))
    if kind == "qeq-charges":
        return chg, QEqModel(chg, soap, QEqConfig(n_sparse=n_sparse, seed=seed, width_scales=WIDTHS, global_state="constraint"))
    if kind == "qeq-both":
        return dip, QEqModel(dip, soap, QEqConfig(n_sparse=n_sparse, seed=seed, width_scales=WIDTHS, charges_key="ref_charges",
                                                  charge_weight=charge_weight, global_state="constraint"))
    raise ValueError(kind)


KINDS = ("sagpr-dipole", "sagpr-charges", "qeq-dipole", "qeq-charges", "qeq-both", "qeq-dipole+ad")


def table(results: list[dict], tests: list[str]) -> str:
    head = "| train | model | " + " | ".join(f"{t} dipole RMSE [e·Bohr] | {t} charge RMSE [e]" for t in tests) + " | fit [s] |"
    sep = "|" + "---|" * (3 + 2 * len(tests))
    rows = [head, sep]
    for r in results:
        cells = []
        for t in tests:
            m = r["tests"][t]
            cells.append(f"{m['dipole_rmse']:.4f}")
            cells.append("n/a" if m["charge_rmse"] is None else f"{m['charge_rmse']:.4f}")
        model = r["model"] + (f" (width {r['width_scale']})" if r.get("width_scale") else "")
        rows.append(f"| {r['train']} | {model} | " + " | ".join(cells) + f" | {r['fit_seconds']:.0f} |")
    return "\n".join(rows)


def run(train, tname: str, kinds: list[str], tests: dict, n_sparse: int, args) -> list[dict]:
    from psilearn.data import load_dataset

    results = []
    for kind in kinds:
        target, model = build(kind, n_sparse, args.charge_weight, args.seed,
                              {"channels": args.nn_channels, "epochs": args.nn_epochs, "max_seconds": args.nn_max_seconds})
        ds = load_dataset(train, target)
        t0 = time.perf_counter()
        model.fit(ds)
        fit_s = time.perf_counter() - t0
        res = {"train": tname, "model": kind, "fit_seconds": fit_s, "tests": {},
               "width_scale": model.config.qeq.get("width_scale") if kind.startswith("qeq") else None,
               "atomic_dipole_scale": model.metadata.get("atomic_dipole_scale"),
               "nn_training": {k: model.metadata[k] for k in ("members", "n_parameters", "calibration")} if "-nn-" in kind else None,
               "train_cv": model.metadata["heldout_metrics"]["cartesian"]}
        for name, frames in tests.items():
            res["tests"][name] = evaluate(kind, model, frames)
        results.append(res)
        print(f"{tname:9s} {kind:18s} fit {fit_s:6.1f} s  " + "  ".join(
            f"{n}: mu {m['dipole_rmse']:.4f} q {m['charge_rmse'] if m['charge_rmse'] is not None else float('nan'):.4f}"
            for n, m in res["tests"].items()), flush=True)
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", default="random,farthest")
    p.add_argument("--models", default=",".join(KINDS))
    p.add_argument("--n-sparse", type=int, default=400)
    p.add_argument("--charge-weight", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="60 training / 100+20+20 test molecules, n_sparse 50")
    p.add_argument("--ion-split", type=int, default=0, metavar="N",
                   help="also train on QMtrainRandom + the first N cations and N anions, test on the other ions")
    p.add_argument("--ion-only", action="store_true", help="with --ion-split: only the second experiment")
    p.add_argument("--out", default=None, help="directory for results.json and table.md")
    p.add_argument("--nn-channels", type=int, default=NN_DEFAULTS["channels"], help="qeq-nn: channels of the network")
    p.add_argument("--nn-epochs", type=int, default=NN_DEFAULTS["epochs"], help="qeq-nn: maximum epochs")
    p.add_argument("--nn-max-seconds", type=float, default=NN_DEFAULTS["max_seconds"], help="qeq-nn: training wall-time budget per model")
    args = p.parse_args(argv)
    if not DATA.is_dir():
        print(f"skipping: {DATA} not found (the shared data sets are not available here)")
        return 0
    n_train, n_test, n_ion = (60, 100, 20) if args.quick else (None, None, None)
    n_sparse = 50 if args.quick else args.n_sparse
    tests = {name: read(f, n_test if name == "TestQM9" else n_ion) for name, f in TESTS.items()}
    info = {"units": check_units(tests["TestQM9"]),
            "ion dipole_vector / Mulliken dipole [e*A] (1/0.529 = 1.8897 for e*Bohr)": {k: ion_scale(tests[k]) for k in ("PlusSet", "MinusSet")},
            "ion |centre of mass| max [A]": float(max(np.linalg.norm(a.get_center_of_mass()) for k in ("PlusSet", "MinusSet") for a in tests[k]))}
    print(json.dumps(info, indent=1), flush=True)
    results = []
    for tname in [] if args.ion_only else args.train.split(","):
        train = read(TRAIN[tname], n_train)
        results += run(train, tname, args.models.split(","), tests, n_sparse, args)
    md = table(results, list(TESTS))
    if args.ion_split:
        # second experiment: some ions in training (the first N of PlusSet and of MinusSet; same
        # geometries in both), tested on the remaining ions
        k = args.ion_split
        ions_train = tests["PlusSet"][:k] + tests["MinusSet"][:k]
        ion_tests = {"TestQM9": tests["TestQM9"], "PlusSet": tests["PlusSet"][k:], "MinusSet": tests["MinusSet"][k:]}
        train = read(TRAIN["random"], n_train) + ions_train
        ion_results = run(train, f"random+{2 * k} ions", ["sagpr-dipole", "sagpr-dipole+state", "qeq-dipole", "qeq-dipole+state"],
                          ion_tests, n_sparse, args)
        results += ion_results
        md += "\n\n" + table(ion_results, list(TESTS))
    print(md)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({"info": info, "args": vars(args), "results": results}, indent=1))
        (out / "table.md").write_text(md + "\n")
        print(f"wrote {out}/results.json and table.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
