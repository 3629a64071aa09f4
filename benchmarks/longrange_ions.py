"""Charged molecules: per-atom Mulliken charges of QM9 cations and anions, local vs charge-aware models.

Data: ``../shared/data/qm9_dipoles_charges`` PlusSet.xyz / MinusSet.xyz (Staacke et al., kQEq, MIT):
the same 100 QM9 geometries as vertical cations and anions, per-atom ``mulliken`` charges summing to
+1 / -1, no ``atoms.info['charge']`` (set here from that sum, as a user declares the charge of an ion).
Split (issue 15): the first 80 of each set train, the other 20 of each test.

Rows (default lambda-SOAP and data-scaled sparse points unless said otherwise):
  element mean        per-(element, charge state) mean of the training labels
  local, no state     SA-GPR on the charges, ``global_state: none`` (a cation and an anion of one
                      geometry are the same input)
  local + state       SA-GPR, ``global_state: charge`` (what ``auto``, the default, picks here)
  QEq, constraint     kernel QEq, the total charge only through sum q = Q (width scale by 5-fold CV)
  QEq + state         kernel QEq with the state kernel on chi (``auto`` picks it here)
  QEq + state, J=...  the same with a fixed element hardness J (eV/e^2) for every element
  delta GFN2 + state  SA-GPR + state on the difference to GFN2-xTB Mulliken charges, computed by psilearn's
                      labeler (``--baseline-method gfn2``; the baseline's cost is in the fit/predict time)
and learning curves of the two states trained alone (20, 40, 80 molecules).
Columns: RMSE (e) over all test atoms, cations, anions; max |sum q - Q| (e); fit seconds.

    OMP_NUM_THREADS=1 python benchmarks/longrange_ions.py [--out benchmarks/results/longrange_ions.md]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "qm9_dipoles_charges"


def read(name: str) -> list:
    """Frames with ``q`` (e) and ``atoms.info['charge']`` from the charges' sum."""
    import ase.io

    frames = ase.io.read(DATA / name, ":")
    for a in frames:
        a.arrays["q"] = np.asarray(a.arrays["mulliken"], float)
        a.info["charge"] = int(round(a.arrays["q"].sum()))
        a.info.pop("dipole_vector", None)
    return frames


def scores(q: np.ndarray, frames: list) -> dict:
    ref = np.concatenate([a.arrays["q"] for a in frames])
    anion = np.concatenate([np.full(len(a), a.info["charge"] < 0) for a in frames])
    off = np.concatenate([[0], np.cumsum([len(a) for a in frames])])
    total = np.add.reduceat(q, off[:-1]) - np.array([a.info["charge"] for a in frames])

    def rmse(mask):
        return float(np.sqrt(np.mean((q - ref)[mask] ** 2))) if mask.any() else float("nan")

    return {"all": rmse(np.ones_like(anion)), "cations": rmse(~anion), "anions": rmse(anion), "max_sum_error": float(np.abs(total).max())}


def element_mean(train: list, test: list) -> np.ndarray:
    groups: dict = {}
    for a in train:
        for z, v in zip(a.numbers, a.arrays["q"]):
            groups.setdefault((int(z), a.info["charge"]), []).append(v)
    mean = {k: float(np.mean(v)) for k, v in groups.items()}
    return np.concatenate([[mean[(int(z), a.info["charge"])] for z in a.numbers] for a in test])


def model_row(kind: str, options: dict, train: list, test: list, work: str) -> tuple[np.ndarray, float]:
    """Charges predicted for ``test`` by ``kind`` with the YAML-style ``options``, and the fit seconds."""
    from psilearn import Target, load_dataset
    from psilearn.models.factory import fit_model

    target = Target("q", per="atom", units="e")
    if kind == "delta-gfn2":
        from psilearn.models.fidelity.delta import delta_method_kind

        kind = delta_method_kind("gfn2", inner="sagpr", db=os.path.join(work, "gfn2.db"), label="mulliken_charges")
    t0 = time.perf_counter()
    model = fit_model(kind, target, load_dataset(train, target), options)
    fit_s = time.perf_counter() - t0
    pred = model.predict(test)
    q = pred.charges if getattr(pred, "charges", None) is not None else pred.values[:, 0]
    return np.asarray(q), fit_s


ROWS = [
    ("local, no state", "sagpr", {"model": {"global_state": "none"}}),
    ("local + state (auto)", "sagpr", {}),
    ("QEq, constraint only", "qeq", {"model": {"global_state": "constraint", "width_scales": [0.5, 0.75, 1.0]}}),
    ("QEq + state (auto)", "qeq", {"model": {"width_scales": [0.5, 0.75, 1.0]}}),
    ("QEq + state, J=5", "qeq", {"model": {"width_scales": [0.5, 0.75, 1.0], "qeq": {"hardness": dict.fromkeys("HCNOF", 5.0)}}}),
    ("QEq, constraint only, J=5", "qeq", {"model": {"global_state": "constraint", "width_scales": [0.5, 0.75, 1.0],
                                                      "qeq": {"hardness": dict.fromkeys("HCNOF", 5.0)}}}),
    ("delta GFN2 + state (auto)", "delta-gfn2", {}),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, default=80, help="training molecules per charge state (default 80)")
    ap.add_argument("--out", default="", help="also write the tables to this markdown file")
    args = ap.parse_args()
    if not (DATA / "PlusSet.xyz").is_file():
        print(f"SKIP: {DATA} not found (benchmarks read ../shared/data beside the checkout)")
        return 0
    plus, minus = read("PlusSet.xyz"), read("MinusSet.xyz")
    n = args.n_train
    train, test = plus[:n] + minus[:n], plus[n:] + minus[n:]
    ref = np.concatenate([a.arrays["q"] for a in test])
    lines = [f"train {len(train)} ions ({n} cations + {n} anions), test {len(test)}; label spread (std) of the test charges "
             f"{ref.std():.4f} e (cations {np.concatenate([a.arrays['q'] for a in plus[n:]]).std():.4f}, "
             f"anions {np.concatenate([a.arrays['q'] for a in minus[n:]]).std():.4f})", "",
             "| model | RMSE all [e] | cations | anions | max \\|Σq − Q\\| [e] | fit [s] |", "|---|---|---|---|---|---|"]

    def add(name: str, q: np.ndarray, fit_s: float | None) -> None:
        s = scores(q, test)
        lines.append(f"| {name} | {s['all']:.4f} | {s['cations']:.4f} | {s['anions']:.4f} | {s['max_sum_error']:.2g} | "
                     f"{'-' if fit_s is None else f'{fit_s:.1f}'} |")
        print(lines[-1], flush=True)

    print("\n".join(lines), flush=True)
    add("element mean per charge state", element_mean(train, test), None)
    with tempfile.TemporaryDirectory() as work:
        for name, kind, options in ROWS:
            add(name, *model_row(kind, options, train, test, work))
        lines += ["", "Each charge state trained alone (test: the same state), RMSE [e]:", "",
                  "| trained on | model | 20 | 40 | 80 |", "|---|---|---|---|---|"]
        for label, frames in (("cations", plus), ("anions", minus)):
            for kind in ("sagpr", "qeq"):
                errs = [scores(model_row(kind, {"model": {"width_scales": [0.5, 0.75, 1.0]}} if kind == "qeq" else {},
                                         frames[:m], frames[n:], work)[0], frames[n:])["all"] for m in (20, 40, n)]
                lines.append(f"| {label} | {kind} | " + " | ".join(f"{e:.4f}" for e in errs) + " |")
                print(lines[-1], flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
