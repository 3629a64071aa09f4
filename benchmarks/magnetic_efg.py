"""EFG tensors: tensorial SA-GPR vs scalar learning of the derived C_Q and eta (issue 16).

Input: one or more files labelled by ``psilearn label --observables efg`` (per-atom arrays ``efg``
(9, a.u.), ``efg_cq`` (MHz), ``efg_eta``, ``efg_quadrupolar``). Works for molecules and for periodic
cells alike (the features handle both).

A fixed test set (``--n-test`` structures drawn with ``--seed``) and nested training subsets of the
rest (``--sizes``, the same random order for every size). For every size three SA-GPR models with the
default lambda-SOAP/kernel options, all trained on the same structures:

* tensor: ``Target("efg", per="atom", tensor="ij=ji", traceless=True)``, i.e. one l=2 channel;
  C_Q, eta and the principal axes are derived from the predicted tensor exactly as the labeler
  derives them from the reference (``psilearn.label.magnetic.quadrupolar_parameters``);
* scalar C_Q: ``Target("efg_cq", per="atom")`` on the atoms with a quadrupolar isotope
  (label mask ``efg_quadrupolar``);
* scalar |C_Q|: ``Target("efg_cq_abs", per="atom")`` (|efg_cq|, same mask), the sign-free quantity;
* scalar eta: ``Target("efg_eta", per="atom")`` on every atom; predictions clipped to [0, 1]
  (the range of the definition; the tensor route is in range by construction).

Per element of the test atoms: RMSE of the 9 Cartesian tensor components (a.u.); RMSE/MAE of C_Q
(MHz, signed, the labeler's isotope: 2H for H, 14N, 17O, 35Cl, ...) and of |C_Q|; RMSE/MAE of eta;
orientation error = angle between the predicted and reference V_zz eigenvectors (the eigenvalue of
largest |V|), arccos |v_pred . v_ref| in [0, 90] degrees (the sign of an eigenvector is arbitrary).
The V_zz axis is ill-defined when |V_yy| -> |V_zz| (eta -> 1): atoms whose *reference* eta exceeds
``--eta-max`` (default 0.8, i.e. |V_yy| > 0.9 |V_zz|) are left out of the angle statistics and
counted (column "skip").

    .venv/bin/python benchmarks/magnetic_efg.py labelled.xyz [more.xyz] --sizes 25,50,100,200,max
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

ELEMENTS_SHOWN = ("H", "Li", "B", "N", "O", "Na", "Al", "Cl")


def vzz_axes(t: np.ndarray) -> np.ndarray:
    """Unit eigenvectors of the eigenvalue of largest magnitude, (n, 3), of tensors (n, 3, 3)."""
    w, v = np.linalg.eigh(t)
    k = np.argmax(np.abs(w), axis=1)
    return v[np.arange(len(t)), :, k]


def axis_angles(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Angle (degrees, 0..90) between the V_zz axes of predicted and reference tensors (n, 3, 3)."""
    c = np.abs(np.einsum("ni,ni->n", vzz_axes(pred), vzz_axes(ref)))
    return np.degrees(np.arccos(np.clip(c, 0.0, 1.0)))


def _fit_predict(target, train_frames, test_frames, mask=None):
    from psilearn import SAGPR, load_dataset

    data = load_dataset(train_frames, target, label_mask=mask)
    t0 = time.perf_counter()
    model = SAGPR(target).fit(data)
    fit_s = time.perf_counter() - t0
    return model.predict(test_frames, return_std=False).values, fit_s


def evaluate_size(train, test, eta_max: float) -> tuple[list[dict], dict]:
    """Fit the three models on ``train`` (Atoms list), return per-element rows on ``test`` and fit times."""
    from psilearn import Target
    from psilearn.label.magnetic import quadrupolar_parameters

    t_tensor = Target("efg", per="atom", tensor="ij=ji", traceless=True, units="a.u.")
    pt, s_t = _fit_predict(t_tensor, train, test)
    pc, s_c = _fit_predict(Target("efg_cq", per="atom", units="MHz"), train, test, mask="efg_quadrupolar")
    pe, s_e = _fit_predict(Target("efg_eta", per="atom"), train, test)
    for a in train:  # |C_Q|: the sign of V_zz flips where |V_yy| ~ |V_zz| (eta ~ 1), a discontinuity a scalar model cannot follow
        a.arrays["efg_cq_abs"] = np.abs(a.arrays["efg_cq"])
    pa, s_a = _fit_predict(Target("efg_cq_abs", per="atom", units="MHz"), train, test, mask="efg_quadrupolar")
    symbols = [s for a in test for s in a.get_chemical_symbols()]
    ref = np.concatenate([a.arrays["efg"] for a in test]).reshape(-1, 3, 3)
    pred = pt.reshape(-1, 3, 3)
    cq_t, eta_t, _, _ = quadrupolar_parameters(pred, symbols)
    cq_ref = np.concatenate([a.arrays["efg_cq"] for a in test])
    eta_ref = np.concatenate([a.arrays["efg_eta"] for a in test])
    quad = np.concatenate([a.arrays["efg_quadrupolar"] for a in test]).astype(bool)
    cq_s, eta_s = pc[:, 0], np.clip(pe[:, 0], 0.0, 1.0)
    ang = axis_angles(pred, ref)
    symbols = np.array(symbols)
    rows = []
    for el in [e for e in ELEMENTS_SHOWN if e in set(symbols)] + sorted(set(symbols) - set(ELEMENTS_SHOWN)):
        m = symbols == el
        ok = m & (eta_ref <= eta_max)
        row = {
            "el": el,
            "n": int(m.sum()),
            "ref_std": float(np.sqrt(np.mean((ref[m] - ref[m].mean(0)) ** 2))),
            "t_rmse": float(np.sqrt(np.mean((pred[m] - ref[m]) ** 2))),
            "eta_t": _err(eta_t[m], eta_ref[m]),
            "eta_s": _err(eta_s[m], eta_ref[m]),
            "ang_med": float(np.median(ang[ok])) if ok.any() else float("nan"),
            "ang_mean": float(np.mean(ang[ok])) if ok.any() else float("nan"),
            "ang_p90": float(np.percentile(ang[ok], 90)) if ok.any() else float("nan"),
            "skip": int(m.sum() - ok.sum()),
        }
        if quad[m].all():
            row.update(
                cq_std=float(cq_ref[m].std()),
                cq_t=_err(cq_t[m], cq_ref[m]),
                cq_s=_err(cq_s[m], cq_ref[m]),
                acq_t=_err(np.abs(cq_t[m]), np.abs(cq_ref[m])),
                acq_s=_err(pa[m, 0], np.abs(cq_ref[m])),
                sign_t=int(np.sum(np.sign(cq_t[m]) != np.sign(cq_ref[m]))),
                sign_s=int(np.sum(np.sign(cq_s[m]) != np.sign(cq_ref[m]))),
            )
        rows.append(row)
    return rows, {"tensor": s_t, "cq": s_c, "eta": s_e, "cq_abs": s_a}


def _pct(x: float, ref: float) -> str:
    return f"{100 * x / ref:.1f}" if ref > 1e-12 else "-"


def _err(p: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    """(RMSE, MAE)."""
    d = p - r
    return float(np.sqrt(np.mean(d**2))), float(np.mean(np.abs(d)))


def print_tables(results: list[tuple[int, list[dict], dict]]) -> None:
    """Three tables: tensor components + orientation; C_Q; eta (tensor-derived vs scalar models)."""
    print("\n## Tensor components (a.u.) and V_zz orientation (degrees, reference eta <= eta-max)\n")
    print("| n_train | element | atoms | ref std | tensor RMSE | % of std | angle median | angle mean | angle p90 | skip |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, rows, _ in results:
        for r in rows:
            print(
                f"| {n} | {r['el']} | {r['n']} | {r['ref_std']:.4f} | {r['t_rmse']:.4f} | {_pct(r['t_rmse'], r['ref_std'])} | "
                f"{r['ang_med']:.2f} | {r['ang_mean']:.2f} | {r['ang_p90']:.2f} | {r['skip']} |"
            )
    print("\n## C_Q (MHz): from the predicted tensor vs scalar models of C_Q and of |C_Q| (RMSE / MAE; sign = atoms with the wrong sign)\n")
    print("| n_train | element | ref std | tensor RMSE | tensor MAE | scalar RMSE | scalar MAE | tensor abs RMSE | scalar-of-abs RMSE | sign t/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, rows, _ in results:
        for r in rows:
            if "cq_t" not in r:
                continue
            print(
                f"| {n} | {r['el']} | {r['cq_std']:.3f} | {r['cq_t'][0]:.3f} | {r['cq_t'][1]:.3f} | {r['cq_s'][0]:.3f} | {r['cq_s'][1]:.3f} | "
                f"{r['acq_t'][0]:.3f} | {r['acq_s'][0]:.3f} | {r['sign_t']}/{r['sign_s']} |"
            )
    print("\n## eta: from the predicted tensor vs a scalar model of eta (clipped to [0, 1]); RMSE / MAE\n")
    print("| n_train | element | tensor RMSE | tensor MAE | scalar RMSE | scalar MAE |")
    print("|---|---|---|---|---|---|")
    for n, rows, _ in results:
        for r in rows:
            print(f"| {n} | {r['el']} | {r['eta_t'][0]:.4f} | {r['eta_t'][1]:.4f} | {r['eta_s'][0]:.4f} | {r['eta_s'][1]:.4f} |")
    print("\n## Fit seconds (tensor / scalar C_Q / scalar |C_Q| / scalar eta)\n")
    for n, _, t in results:
        print(f"n_train {n}: {t['tensor']:.1f} / {t['cq']:.1f} / {t['cq_abs']:.1f} / {t['eta']:.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="labelled extxyz files (psilearn label --observables efg), pooled")
    ap.add_argument("--sizes", default="25,50,100,200,max", help="training-set sizes (structures); 'max' = all non-test")
    ap.add_argument("--n-test", type=int, default=100, help="test structures")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eta-max", type=float, default=0.8, help="orientation statistics only where the reference eta <= this")
    args = ap.parse_args()
    from psilearn import read_structures

    frames = [a for f in args.files for a in read_structures(f) if "efg" in a.arrays]
    order = np.random.default_rng(args.seed).permutation(len(frames))
    test = [frames[i] for i in order[: args.n_test]]
    pool = order[args.n_test :]
    sizes = [len(pool) if s == "max" else int(s) for s in args.sizes.split(",")]
    sizes = sorted({s for s in sizes if s <= len(pool)})
    formulas = sorted({a.get_chemical_formula() for a in frames})
    print(f"{len(frames)} labelled structures ({', '.join(formulas)}); test {len(test)}, pool {len(pool)}, seed {args.seed}")
    results = []
    for n in sizes:
        rows, times = evaluate_size([frames[i] for i in pool[:n]], test, args.eta_max)
        results.append((n, rows, times))
        print(f"n_train {n} done ({sum(times.values()):.0f} s of fitting)", file=sys.stderr, flush=True)
    print_tables(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
