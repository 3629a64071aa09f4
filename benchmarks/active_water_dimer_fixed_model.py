"""What selection can gain on the compressed water dimers with one fixed SA-GPR model (a diagnostic for issue 14's 2x).

`active_water_dimer.py` refits the model (sparse set, noise, amplitude) every round. Here the model is fixed: SA-GPR
fitted once on the *whole* labelled pool (sparse set, s2, noise and scales of the best hyper-parameters this pool
gives), i.e. a Gaussian linear model per irrep column in its whitened weights, u ~ N(0, s2 I), y = B u + N(0, sigma2).
From the same 25 random initial labels, labels are then added one at a time (no refit, no batches), by

    random      uniform order (--random-orders draws per split),
    targeted    the candidate that most reduces the summed posterior variance of the shifted structures (label units),
    calibrated  the same on the covariance scaled by the local leave-one-out calibration of the labels (the mean z^2 of
                the K nearest labelled structures, K = --neighbours; psilearn active --calibration-neighbours),
    oracle      the candidate that most reduces the *true* squared error of half A of the shifted set (it sees those
                labels: not a method, a bound on what label values could tell a greedy selection),
    region      random order among the pool dimers whose O-O distance lies within the shifted set's (1-99 %), then the
                others: what avoiding the unlike part of the pool alone gains (the shifted structures are unlabelled).

Every curve is scored on half B of the shifted set (the oracle's held-out half) and on half A (where the oracle's
curve is in-sample), and by the model's own expected error: the root mean posterior variance of the noise-free
prediction on each half, which is the mean squared error expected if the labels were a draw from the model's prior
(a Gaussian process world where its kernel is exactly right). What selection gains there is what the kernel itself
allows; the gap to the true error's gain is what the real labels' departure from the kernel costs.
The split (i.i.d. test set, pool, which 100 compressed dimers join the pool) is that of
`active_water_dimer.py --split-per-seed --pool-shifted 100` for the same seed.

    .venv/bin/python benchmarks/active_water_dimer_fixed_model.py --splits 6 --json fixed.json   # ~5 min a split, 1 core
    .venv/bin/python benchmarks/active_water_dimer_fixed_model.py --load fixed.json
    .venv/bin/python benchmarks/active_water_dimer_fixed_model.py --splits 4 --strategies targeted calibrated \
        --config '{"model": {"zeta": 4}}' --json zeta4.json                     # another kernel (or descriptor)
    .venv/bin/python benchmarks/active_water_dimer_fixed_model.py --splits 6 --strategies region --json region.json
    .venv/bin/python benchmarks/active_water_dimer_fixed_model.py --delta-gfn2 gfn2_alpha.db --json delta.json  # a delta model
    .venv/bin/python benchmarks/active_water_dimer_fixed_model.py --target mu --strategies targeted --json mu.json  # the dipole

It reads the fitted model's sparse set, kernels and composition baseline through SA-GPR's own helpers (private: this is a
diagnostic of that model, not an API), and checks that its posterior mean with every pool label reproduces the model's
prediction.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import active_water_dimer as awd  # noqa: E402  (the split and the labels-for-equal-error interpolation)

STRATEGIES = ("targeted", "calibrated", "oracle", "region")


def _design(model, ds) -> list[dict]:
    """Per irrep column of ``model``: whitened kernel rows b (n, 2l+1, r), labels y (n, 2l+1) in model units, s2,
    sigma2 and scale."""
    from psilearn.features.compress import apply_projections
    from psilearn.models._kernel.gpr import whitening
    from psilearn.models._kernel.kernels import sparse_kernel, sparse_sparse_kernel

    target = model.target
    feats = model._lsoap().compute(ds.frames, model._channel_list())
    if model.projections:
        apply_projections(feats, model.projections)
    irreps = target.to_irreps(ds.values)
    if model.baseline:
        cols = [b.start for b in target.blocks if model._has_baseline(b)]
        coef = np.array([model.baseline[z] for z in model.species]).reshape(len(model.species), -1)
        irreps[:, cols] -= model._baseline_design(ds.frames) @ coef
    out = []
    for cm in model.channels:
        d = 2 * cm.channel[0] + 1
        kmm = sparse_sparse_kernel(model.sparse, cm.channel, model.config.zeta)
        phi = sparse_kernel(feats, model.sparse, cm.channel, model.config.zeta, target.per, target.pool)
        phi, kmm = model._with_global_state(phi, kmm, feats, ds.frames, d)
        b = (phi @ whitening(kmm, phi.shape[1])).reshape(len(ds.frames), d, -1)
        for bi, col in cm.columns:
            out.append({"b": b, "y": irreps[:, target.blocks[bi].cols] / model.scales[bi], "s2": col.s2,
                        "sigma2": col.sigma2, "scale": float(model.scales[bi])})
    return out


def _oo(frames) -> np.ndarray:
    """O-O distance of each dimer (Angstrom)."""
    out = []
    for a in frames:
        o = [i for i, z in enumerate(a.numbers) if z == 8]
        out.append(a.get_distance(o[0], o[1]))
    return np.array(out)


class _Posterior:
    """One column's posterior over the pool's and the test set's outputs (function space): mean m, covariance C."""

    def __init__(self, prior: np.ndarray, y: np.ndarray, d: int, sigma2: float, scale: float):
        self.C, self.m, self.y, self.d, self.sigma2, self.scale = prior.copy(), np.zeros(len(prior)), y, d, sigma2, scale

    def add(self, j: int) -> None:
        sl = slice(j * self.d, (j + 1) * self.d)
        cj = self.C[:, sl]
        g = np.linalg.solve(self.C[sl, sl] + self.sigma2 * np.eye(self.d), cj.T)
        self.m += g.T @ (self.y[sl] - self.m[sl])
        self.C -= cj @ g


class Study:
    """One split: the fixed model's priors, the halves of the shifted set, and the runs."""

    def __init__(self, split: int, tmp: str, config: dict | None = None, key: str = "alpha"):
        from psilearn.data import load_dataset
        from psilearn.models.factory import fit_model
        from psilearn.models.registry import model_class
        from psilearn.targets import Target

        target = Target(**awd.TARGETS[key])
        self.n_cart = 3**target.rank  # Cartesian components per structure: the RMSE is per component
        pool_p, _, shifted_p = awd._split(200, 100, tmp, split)
        pool, test = load_dataset(pool_p, target), load_dataset(shifted_p, target)
        model = fit_model(model_class("sagpr"), target, pool, config or {}, seed=split)
        self.n_pool, self.n_test = len(pool.frames), len(test.frames)
        self.cols, self.priors, self.ys, self.check = [], [], [], 0.0
        check = model.predict(test.frames).irreps
        for cp, cq, blk in zip(_design(model, pool), _design(model, test), target.blocks):
            n, d, r = cp["b"].shape
            both = np.concatenate([cp["b"].reshape(n * d, r), cq["b"].reshape(-1, r)])
            self.priors.append(cp["s2"] * both @ both.T)
            self.ys.append(np.concatenate([cp["y"].reshape(-1), cq["y"].reshape(-1)]))
            self.cols.append(cp)
            # the fixed model's posterior mean with every pool label must be the model's own prediction
            w = np.linalg.solve(both[: n * d].T @ both[: n * d] + cp["sigma2"] / cp["s2"] * np.eye(r), both[: n * d].T @ cp["y"].reshape(-1))
            mine = (both[n * d:] @ w).reshape(-1, d) * cp["scale"]
            off = check[:, blk.cols] - mine
            self.check = max(self.check, float(np.abs(off - off.mean()).max() / np.abs(check).max()))
        self.half_a, self.half_b = np.arange(0, self.n_test, 2), np.arange(1, self.n_test, 2)
        self.init = list(np.random.default_rng(split).choice(self.n_pool, 25, replace=False))
        self.split = split
        oo_pool, oo_test = _oo(pool.frames), _oo(test.frames)
        lo, hi = np.percentile(oo_test, [1, 99])
        self.in_region = (oo_pool >= lo) & (oo_pool <= hi)
        k0 = self.priors[0]
        dg = np.sqrt(np.diag(k0))
        self.corr = k0 / dg[:, None] / dg[None, :]  # the invariant channel's structure correlations: the neighbours

    def run(self, pick, budget: int) -> tuple[dict, list[int]]:
        """{str(labels): {half: RMSE}} (string keys, as in the --json file) and the labels in selection order."""
        posts = [_Posterior(p, y, c["b"].shape[1], c["sigma2"], c["scale"]) for p, y, c in zip(self.priors, self.ys, self.cols)]
        chosen = list(self.init)
        for j in chosen:
            for p in posts:
                p.add(j)
        curve = {}
        while True:
            n = len(chosen)
            if n % 10 == 5 or n == budget:
                err = sum(np.sum(self._test_err(p) ** 2, axis=1) for p in posts)  # (n_test,): squared irreps error
                var = sum(self._test_var(p) for p in posts)  # (n_test,): the summed posterior variance of the irreps
                halves = (("A", self.half_a), ("B", self.half_b))
                curve[str(n)] = {h: float(np.sqrt(np.sum(err[idx]) / (len(idx) * self.n_cart))) for h, idx in halves}
                curve[str(n)] |= {f"{h}_model": float(np.sqrt(np.sum(var[idx]) / (len(idx) * self.n_cart))) for h, idx in halves}
            if n >= budget:
                return curve, chosen
            j = pick(posts, chosen)
            chosen.append(j)
            for p in posts:
                p.add(j)

    def _test_err(self, p: _Posterior) -> np.ndarray:
        t = slice(self.n_pool * p.d, None)
        return ((p.m[t] - p.y[t]) * p.scale).reshape(self.n_test, p.d)

    def _test_var(self, p: _Posterior) -> np.ndarray:
        """(n_test,) the trace of each shifted structure's posterior covariance (label units squared)."""
        t = self.n_pool * p.d
        return np.diag(p.C)[t:].reshape(self.n_test, p.d).sum(axis=1) * p.scale**2

    def _blocks(self, p: _Posterior):
        """(A_j (n, d, d), C_tj (n, n_test d, d)) of every pool structure j."""
        n, d = self.n_pool, p.d
        cand = p.C[: n * d, : n * d].reshape(n, d, n, d)
        a = cand[np.arange(n), :, np.arange(n), :] + p.sigma2 * np.eye(d)
        return a, p.C[n * d:, : n * d].reshape(self.n_test * d, n, d).transpose(1, 0, 2)

    def region_order(self):
        """Random order within the region (the shifted set's O-O range), then random order outside it."""
        rng = np.random.default_rng(2000 + self.split)
        inside, outside = (rng.permutation(np.flatnonzero(m)) for m in (self.in_region, ~self.in_region))
        order = iter(int(i) for i in np.concatenate([inside, outside]) if i not in self.init)
        return lambda posts, chosen: next(order)

    def greedy(self, kind: str, neighbours: int = 30):
        state = {"amp": None, "n": -1}

        def pick(posts, chosen):
            score = np.zeros(self.n_pool)
            amp = self._amplitude(posts, chosen, neighbours, state) if kind == "calibrated" else None
            for p in posts:
                a, ct = self._blocks(p)
                if amp is not None:  # sqrt(a_i a_j) C_ij
                    d = p.d
                    ap, at = amp[: self.n_pool], np.repeat(amp[self.n_pool:], d)
                    a = (a - p.sigma2 * np.eye(d)) * ap[:, None, None] + p.sigma2 * np.eye(d)
                    ct = ct * np.sqrt(at)[None, :, None] * np.sqrt(ap)[:, None, None]
                ainv = np.linalg.inv(a)
                if kind == "oracle":  # reduction of the true squared error of half A
                    rows = (self.half_a[:, None] * p.d + np.arange(p.d)).ravel()
                    e = self._test_err(p).reshape(-1)[rows] / p.scale
                    rj = (p.y[: self.n_pool * p.d] - p.m[: self.n_pool * p.d]).reshape(self.n_pool, p.d)
                    delta = np.einsum("nqd,nde,ne->nq", ct[:, rows], ainv, rj)
                    score += p.scale**2 * (np.sum(e**2) - np.sum((e[None] + delta) ** 2, axis=1))
                else:  # reduction of the summed variance of the shifted structures
                    score += p.scale**2 * np.einsum("nqd,nde,nqe->n", ct, ainv, ct)
            score[chosen] = -np.inf
            return int(np.argmax(score))

        return pick

    def _amplitude(self, posts, chosen, k: int, state: dict, every: int = 10) -> np.ndarray:
        """Mean leave-one-out z^2 of each structure's k most correlated labelled structures (recomputed every 10 labels)."""
        if state["amp"] is not None and len(chosen) - state["n"] < every:
            return state["amp"]
        lab = np.asarray(chosen)
        tot, dims = np.zeros(len(lab)), 0
        for p, prior in zip(posts, self.priors):
            d = p.d
            rows = (lab[:, None] * d + np.arange(d)).ravel()
            kinv = np.linalg.inv(prior[np.ix_(rows, rows)] + p.sigma2 * np.eye(len(rows)))
            alpha = kinv @ p.y[rows]
            for i in range(len(lab)):
                sl = slice(i * d, (i + 1) * d)
                r = np.linalg.solve(kinv[sl, sl], alpha[sl])  # leave-one-out residual
                tot[i] += r @ kinv[sl, sl] @ r  # over its leave-one-out covariance
            dims += d
        z2 = tot / dims
        near = np.argsort(-self.corr[:, lab], axis=1)[:, : min(k, len(lab))]
        state["amp"], state["n"] = np.mean(z2[near], axis=1), len(chosen)
        return state["amp"]


def _random_mean(res: dict, half: str) -> tuple[np.ndarray, np.ndarray]:
    runs = [v for k, v in res.items() if k.startswith("random")]
    ns = sorted(int(n) for n in runs[0])
    return np.array(ns, float), np.array([np.mean([r[str(n)][half] for r in runs]) for n in ns])


def _curve(c: dict, half: str) -> tuple[np.ndarray, np.ndarray]:
    ns = sorted(int(n) for n in c)
    return np.array(ns, float), np.array([c[str(n)][half] for n in ns])


def report(results: dict, n_boot: int = 1000) -> None:
    """Labels random needs for each strategy's mean error (over splits) / its labels, with a 90 % paired bootstrap."""
    splits = sorted(results, key=int)
    rng = np.random.default_rng(0)
    config = results[splits[0]].get("config") or {}
    print(f"fixed SA-GPR model ({json.dumps(config) if config else 'default options'}), {len(splits)} splits ({', '.join(splits)}); "
          f"fixed model vs its own prediction: max relative deviation {max(results[s]['check'] for s in splits):.1e}")
    halves = [("B", "half B of the shifted set (held out from the oracle)"), ("A", "half A (the oracle sees its labels)")]
    if "B_model" in next(iter(results[splits[0]]["random0"].values())):  # files saved before the model's error was recorded have none
        halves += [("B_model", "half B, the model's own expected error (labels drawn from its prior: the kernel exactly right)"),
                   ("A_model", "half A, the model's own expected error")]
    for half, what in halves:
        print(f"\n{what}: labels random needs / the strategy's labels (90 % interval, paired bootstrap over splits)")
        kinds = [k for k in results[splits[0]] if not k.startswith("random") and k not in ("check", "compressed", "config", "in_region")]
        for kind in kinds:
            ns = _curve(results[splits[0]][kind], half)[0]

            def ratios(sel):
                nr = _random_mean(results[sel[0]], half)[0]
                er = np.mean([_random_mean(results[s], half)[1] for s in sel], axis=0)
                ek = np.mean([_curve(results[s][kind], half)[1] for s in sel], axis=0)
                return np.array([awd._labels_for(nr, er, e) / n for n, e in zip(ns, ek)])

            point = ratios(splits)
            boot = np.array([ratios(list(rng.choice(splits, len(splits)))) for _ in range(n_boot)])
            lo, hi = np.percentile(boot, [5, 95], axis=0)
            cells = [f"{n:.0f}: {r:.2f} ({a:.2f}-{b:.2f})" for n, r, a, b in zip(ns, point, lo, hi) if n % 50 == 5 or n == ns[-1]]
            per = [ratios([s])[-1] for s in splits]
            print(f"{kind:>14}  " + "  ".join(cells) + f"   per split at {ns[-1]:.0f}: " + " ".join(f"{r:.2f}" for r in per))
    for half, _ in halves:
        nr = _random_mean(results[splits[0]], half)[0]
        er = np.mean([_random_mean(results[s], half)[1] for s in splits], axis=0)
        print(f"random's mean RMSE on half {half} (a.u.): " + "  ".join(f"{n:.0f}: {e:.4f}" for n, e in zip(nr, er) if n in (55, 105, 215, 305, 445)))
    if "in_region" in results[splits[0]]:
        print(f"pool dimers within the shifted set's O-O range (1-99 %): {np.mean([results[s]['in_region'] for s in splits]):.3f}")
    comp = {k: np.mean([results[s]["compressed"][k] for s in splits]) for k in results[splits[0]]["compressed"]}
    print("\ncompressed dimers among the labels at the budget (mean over splits): "
          + ", ".join(f"{k} {v:.1f}" for k, v in comp.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits", type=int, default=6)
    ap.add_argument("--first-split", type=int, default=0)
    ap.add_argument("--budget", type=int, default=215)
    ap.add_argument("--random-orders", type=int, default=8)
    ap.add_argument("--neighbours", type=int, default=30, help="K of the calibrated selection")
    ap.add_argument("--config", type=json.loads, default={},
                    help='model and descriptor options as JSON, e.g. \'{"model": {"zeta": 4}}\' (default: psilearn\'s defaults)')
    ap.add_argument("--target", choices=sorted(awd.TARGETS), default="alpha", help="the observable: alpha (default) or mu (dipole)")
    ap.add_argument("--delta-gfn2", metavar="DB", help="a delta model: learn alpha minus GFN2-xTB's alpha (labelled by psilearn through the "
                    "label store DB, ~10 s for the 1000 dimers; reused when DB has them)")
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--json", help="save the curves here (after every split)")
    ap.add_argument("--load", nargs="+", help="no runs: the tables of these --json files")
    args = ap.parse_args()
    if args.load:
        results = {}
        for path in args.load:
            with open(path) as fh:
                results.update(json.load(fh))
        report(results)
        return 0
    if not os.path.exists(awd.FILE):
        print(f"skipped: {awd.FILE} not found")
        return 0
    with tempfile.TemporaryDirectory() as data_dir:
        if args.delta_gfn2:
            awd.FILE = _delta_file(args.delta_gfn2, data_dir, args.target)
        results = _runs(args)
    report(results)
    return 0


def _delta_file(db: str, out_dir: str, key: str = "alpha") -> str:
    """The water dimers with info[key] (alpha or mu) replaced by its value minus GFN2-xTB's: what a delta model learns."""
    from psilearn.data import write_structures

    frames = awd.gfn2_frames(db, key)
    for a in frames:
        a.info[key] = np.ravel(a.info[key]) - np.ravel(a.info[f"{key}_gfn2"])
    path = os.path.join(out_dir, "delta.xyz")
    write_structures(path, frames, format="extxyz")
    return path


def _runs(args) -> dict:
    results = {}
    for split in range(args.first_split, args.first_split + args.splits):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            st = Study(split, tmp, args.config, args.target)
        config = {**args.config, **({"delta": "gfn2"} if args.delta_gfn2 else {}), **({"target": args.target} if args.target != "alpha" else {})}
        res = {"check": st.check, "compressed": {}, "config": config, "in_region": float(np.mean(st.in_region))}
        for k in range(args.random_orders):
            order = iter(i for i in np.random.default_rng(1000 * split + k).permutation(st.n_pool) if i not in st.init)
            res[f"random{k}"] = st.run(lambda posts, chosen: int(next(order)), max(2 * args.budget, 450))[0]
        for kind in args.strategies:
            pick = st.region_order() if kind == "region" else st.greedy(kind, args.neighbours)
            res[kind], chosen = st.run(pick, args.budget)
            res["compressed"][kind] = int(np.sum(np.asarray(chosen) >= 600))
        results[str(split)] = res
        print(f"split {split}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        if args.json:
            with open(args.json + ".tmp", "w") as fh:
                json.dump(results, fh)
            os.replace(args.json + ".tmp", args.json)
    return results


if __name__ == "__main__":
    sys.exit(main())
