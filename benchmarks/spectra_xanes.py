"""Fe K-edge XANES learning curve: psilearn's absorber-centred spectrum model (sparse GP on the Fe
invariant SOAP, L2 and PCA-compressed) against a SOAP + scikit-learn kernel-ridge baseline on the
flattened spectrum, both on the same Fe-centred features.

Data: ../shared/data/xanes_fe (FDMNES spectra, 226 points 7097-7172 eV, 99 train / 10 test
complexes with both files). Test set: the published 10 test complexes, plus a 5-fold
cross-validation over all 109 at full size (the 10-structure test set alone is noisy).

    nice -n 10 python benchmarks/spectra_xanes.py --out bench-xanes     # ~5 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))
import numpy as np  # noqa: E402
from spectra_common import aggregate, krr_baseline, structure_features, summarise, table  # noqa: E402

from psilearn.data.spectra import load_spectrum_dataset, read_xanes  # noqa: E402
from psilearn.features import SoapConfig  # noqa: E402
from psilearn.models.spectrum import SpectrumConfig, SpectrumModel  # noqa: E402
from psilearn.models.spectrum.representation import invariant_features, subset_features  # noqa: E402
from psilearn.targets import Target  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "xanes_fe")


def run(args) -> dict:
    if not os.path.isdir(DATA):
        print(f"skipped: {DATA} not present")
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_all, test = read_xanes(DATA, "train"), read_xanes(DATA, "test")
    grid = train_all[0].info["xanes_grid"]
    target = Target("xanes", grid=grid, grid_units="eV", absorber="Fe", pool="mean", units="normalised absorption")
    species = sorted({int(z) for a in train_all + test for z in a.numbers})  # descriptor elements (no labels used)
    soap = SoapConfig(cutoff=args.cutoff, max_radial=args.max_radial, max_angular=args.max_angular)
    everything = train_all + test
    ds_all = load_spectrum_dataset(everything, target)
    n_tr = len(train_all)
    tr_all, te_all = np.arange(n_tr), np.arange(n_tr, len(everything))
    ds_train, ref = ds_all.subset(tr_all), ds_all.values[te_all]
    t0 = time.perf_counter()
    feats = invariant_features(everything, soap, species, "Fe")  # computed once, subsets reused
    x_all = structure_features(feats)
    feats_test = subset_features(feats, te_all)
    print(f"features: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    variants = {"psilearn GP (L2)": {}, "psilearn GP (PCA 99.9%)": {"pca": 0.999}}
    results = []
    sizes = [int(s) for s in args.sizes.split(",")]
    for n in sizes:
        seeds = [0] if n >= n_tr else list(range(args.repeats))
        for seed in seeds:
            idx = np.sort(np.random.default_rng(seed).permutation(n_tr)[:n])
            sub = ds_train.subset(idx)
            for name, opts in variants.items():
                t1 = time.perf_counter()
                model = SpectrumModel(target, soap, SpectrumConfig(species=species, seed=seed, **opts))
                model.fit(sub, features=subset_features(feats, idx))
                pred = model.predict(test, return_std=False, features=feats_test).values
                results.append({"n_train": n, "model": name, "seed": seed, "fit_s": time.perf_counter() - t1,
                                **summarise(grid, ref, pred)})
            t1 = time.perf_counter()
            pred = krr_baseline(x_all[idx], sub.values, x_all[te_all], seed)
            results.append({"n_train": n, "model": "SOAP + KRR (sklearn)", "seed": seed, "fit_s": time.perf_counter() - t1,
                            **summarise(grid, ref, pred)})
            print(f"n={n} seed={seed}: " + ", ".join(f"{r['model']} RMSE {r['rmse']:.4f}" for r in results[-3:]), file=sys.stderr)
    rows = aggregate(results)
    # 5-fold CV over all 109 complexes at the largest size
    folds = np.random.default_rng(0).permutation(len(everything)) % 5
    cv = {"psilearn GP (L2)": np.zeros_like(ds_all.values), "SOAP + KRR (sklearn)": np.zeros_like(ds_all.values)}
    for f in range(5):
        tr, te = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        model = SpectrumModel(target, soap, SpectrumConfig(species=species)).fit(ds_all.subset(tr), features=subset_features(feats, tr))
        cv["psilearn GP (L2)"][te] = model.predict([everything[i] for i in te], return_std=False, features=subset_features(feats, te)).values
        cv["SOAP + KRR (sklearn)"][te] = krr_baseline(x_all[tr], ds_all.values[tr], x_all[te])
    cv_rows = [{"n_train": "~87 (5-fold CV, 109)", "model": k, **summarise(grid, ds_all.values, v)} for k, v in cv.items()]
    keys = ["rmse", "relative_integrated_error", "pearson", "tanimoto", "peak_position_error"]
    text = ["## Fe K-edge XANES: test on the 10 published test complexes (mean ± sd over random training subsets)", "",
            table(rows, keys + ["fit_s"]), "", "## 5-fold cross-validation over all 109 complexes", "", table(cv_rows, keys), "",
            f"SOAP: cutoff {args.cutoff} A, max_radial {args.max_radial}, max_angular {args.max_angular}, Fe-centred, "
            f"descriptor elements {species}. Peak errors in eV; RMSE in normalised absorption units."]
    print("\n".join(text))
    out = {"curve": rows, "cv": cv_rows, "raw": results, "soap": soap.to_dict()}
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "xanes_results.json"), "w") as fh:
            json.dump(out, fh, indent=1, default=float)
        with open(os.path.join(args.out, "xanes_table.md"), "w") as fh:
            fh.write("\n".join(text) + "\n")
        _plot(args.out, grid, ref, cv, ds_all.values, [a.info["name"] for a in test])
    return out


def _plot(out, grid, ref, cv, all_ref, names):
    from psilearn.observe.plots import _plt

    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(13, 6), sharex=True)
    for ax, i in zip(axes.ravel(), range(6)):
        ax.plot(grid, all_ref[-10 + i], "k", lw=1.4, label="FDMNES")
        for name, pred in cv.items():
            ax.plot(grid, pred[-10 + i], lw=1, ls="--", label=name)
        ax.set_title(names[i][:30], fontsize=8)
    axes[0, 0].legend(fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("energy (eV)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "xanes_examples.png"), dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10,20,40,70,99")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--max-radial", type=int, default=5)
    p.add_argument("--max-angular", type=int, default=4)
    p.add_argument("--out", default="bench-spectra")
    run(p.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
