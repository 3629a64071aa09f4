"""`psilearn demo`: fit dipole and polarizability models on the bundled molecules and report."""

from __future__ import annotations

import json
import os
import time
from importlib import resources

# Label keys written by `psilearn label` (scripts/make_demo_data.sh regenerates the file).
DEMO_TARGETS = [("dipole_moment", "i", "dipole moment", "dipole"), ("alpha", "ij=ji", "static polarizability", "polarizability")]


def demo_data_path(name: str = "molecules.xyz") -> str:
    """Bundled data: ``molecules.xyz`` (demo, 300 structures) or ``md_molecules.xyz`` (510 structures
    with shielding tensors, charges and orbital energies too)."""
    return str(resources.files("psilearn") / "demo_data" / name)


def cmd_demo(args) -> int:
    from psilearn.data import load_dataset, random_split
    from psilearn.data.outputs import check_output, open_atomic
    from psilearn.evaluation import evaluate
    from psilearn.models import SAGPR
    from psilearn.targets import Target

    path = demo_data_path()
    if not os.path.exists(path):
        raise FileNotFoundError(f"bundled demo data missing at {path}; reinstall psilearn")
    for _, _, _, name in DEMO_TARGETS:  # before any fitting: refuse to replace models without --overwrite
        check_output(os.path.join(args.out, f"{name}.model"), overwrite=args.overwrite, kind="model")
    os.makedirs(args.out, exist_ok=True)
    print(f"psilearn demo: small molecules labelled with PBE0/def2-SVPD (see psilearn/demo_data/README.md)\n  data: {path}\n  output: {args.out}/")
    summary = {}
    for key, formula, label, name in DEMO_TARGETS:
        target = Target(key, tensor=formula, units="a.u.")
        ds = load_dataset(path, target)
        train, test = random_split(len(ds), test_fraction=0.2, seed=0)
        t0 = time.perf_counter()
        model = SAGPR(target, progress=True).fit(ds.subset(train))
        fit_s = time.perf_counter() - t0
        model.save(os.path.join(args.out, f"{name}.model"), overwrite=args.overwrite)
        ev = evaluate(model, ds.subset(test), plot=os.path.join(args.out, f"{name}_parity.png"), title=f"demo: {label}")
        met, cal = {k: ev[k] for k in ("n_samples", "cartesian", "channels")}, ev["calibration"]
        print(f"\n{label} ({target.irreps}), {len(train)} train / {len(test)} test structures, fit {fit_s:.1f} s")
        print(f"  {'component':<10}{'MAE [a.u.]':>12}{'RMSE [a.u.]':>13}{'RMSE % std':>12}")
        for part, m in [("Cartesian", met["cartesian"]), *met["channels"].items()]:
            print(f"  {part:<10}{m['mae']:>12.4f}{m['rmse']:>13.4f}{m['pct_rmse']:>12.2f}")
        print(f"  uncertainty: {100 * cal['within_1sigma']:.0f}% of errors within 1 sigma, {100 * cal['within_2sigma']:.0f}% within 2 sigma")
        summary[name] = {"metrics": met, "calibration": cal, "fit_seconds": fit_s}
    with open_atomic(os.path.join(args.out, "summary.json")) as fh:
        json.dump(summary, fh, indent=1)
    print(f"\nwrote models, parity plots and summary.json to {args.out}/")
    print("next: psilearn predict demo-output/polarizability.model your.xyz -o predicted.xyz")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="fit dipole and polarizability models on bundled data and report",
                       description="Fit SA-GPR dipole and polarizability models on the bundled PySCF-labelled molecules, print test metrics "
                           "and write parity plots.")
    p.add_argument("--out", default="demo-output", help="output directory (default demo-output)")
    p.add_argument("--overwrite", action="store_true", help="replace the models of an earlier demo in --out")
    p.set_defaults(func=cmd_demo, writes={"out": "directory"})
