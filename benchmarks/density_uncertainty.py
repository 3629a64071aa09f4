"""Calibration of the density model's predictive uncertainty (``density.uncertainty``) on held-out structures.

    python benchmarks/density_uncertainty.py /work/bench/water_density.xyz --test-start 91 --test 100 --train 50,200

Test = frames [test-start, test-start + test), training = the ``n`` frames after them (nested). For
each training size, fitted with ``density.uncertainty: true`` and the default options otherwise
(hold-out lambda; electron count conserved), per test structure: the predicted dipole (nuclei +
predicted rho, centre of mass) and its std from the coefficients' covariance, against the dipole of
the reference fitted density (the labels) and against the DFT dipole label (``dipole_moment`` or
``mu``, e*Bohr, when present). Reports the std of the z-scores (error / predicted std, per Cartesian
component; 1 = calibrated), the fraction of |z| < 1 and < 2 (Gaussian: 0.683, 0.954), the RMSE of
the components and the RMS predicted std (Debye); the same for the ESP on the Merz-Kollman points
(1.4-2.0 vdW, 1 per Angstrom^2) against the reference fitted density's ESP projected to exactly N
electrons (the fits hold ~4e-4 e too many, whose monopole potential, ~1e-4 Hartree/e at the surface,
the constrained model cannot and should not predict), and for the unconstrained prediction
(``conserve=False``) against the raw reference; sigma^2, dof and seconds.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from psilearn.data import load_density_dataset  # noqa: E402
from psilearn.models.density.constraint import conserve_electrons, electron_count, structure_metric  # noqa: E402
from psilearn.models.factory import fit_model  # noqa: E402
from psilearn.observe.density.esp import esp_of  # noqa: E402
from psilearn.observe.density.multipoles import DEBYE_PER_AU, dipole_covariance, multipoles  # noqa: E402
from psilearn.observe.density.structure import fitted_density  # noqa: E402
from psilearn.observe.density.surface import surface_points  # noqa: E402


def summary(err: np.ndarray, std: np.ndarray) -> str:
    z = err / std
    return (f"z std {np.std(z):.3f}, |z|<1 {np.mean(np.abs(z) < 1):.3f}, |z|<2 {np.mean(np.abs(z) < 2):.3f}, "
            f"RMSE {np.sqrt(np.mean(err ** 2)):.3g}, RMS std {np.sqrt(np.mean(std ** 2)):.3g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--train", default="50", help="comma-separated training sizes")
    ap.add_argument("--test", type=int, default=50)
    ap.add_argument("--test-start", type=int, default=0)
    ap.add_argument("--esp", type=int, default=20, help="test structures for the ESP calibration")
    args = ap.parse_args()
    data = load_density_dataset(args.data)
    lo, hi = args.test_start, args.test_start + args.test
    test = data.subset(range(lo, hi))
    frames = test.frames
    basis = data.target.aux_basis
    for n in [int(x) for x in args.train.split(",")]:
        train = data.subset(range(hi, hi + n))
        t0 = time.perf_counter()
        model = fit_model("density", data.target, train, {"density": {"uncertainty": True}})
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = model.predict(frames, return_cov=True)
        t_pred = time.perf_counter() - t0
        free = model.predict(frames[: args.esp], return_cov=True, conserve=False)
        e_fit, e_dft, s_mu, e_esp, s_esp, e_free, s_free = [], [], [], [], [], [], []
        for k, a in enumerate(frames):
            d_pred = fitted_density(a, pred.coefficients[k], basis)
            mu = multipoles(d_pred)[0]
            s_mu.append(np.sqrt(np.diag(dipole_covariance(d_pred, pred.cov[k]))))
            e_fit.append(mu - multipoles(fitted_density(a, test.coefficients(k), basis))[0])
            dft = a.info.get("dipole_moment", a.info.get("mu"))
            if dft is not None:
                e_dft.append(mu - np.asarray(dft, dtype=float))
            if k < args.esp:
                pts = surface_points(a)[0]
                v, sv = esp_of(d_pred, pts, pred.cov[k])
                s, q = structure_metric(data.target, a)
                ref_n = conserve_electrons(test.coefficients(k), s, q, electron_count(a))
                e_esp.append(v - esp_of(fitted_density(a, ref_n, basis), pts))
                s_esp.append(sv)
                v, sv = esp_of(fitted_density(a, free.coefficients[k], basis), pts, free.cov[k])
                e_free.append(v - esp_of(fitted_density(a, test.coefficients(k), basis), pts))
                s_free.append(sv)
        s_mu = np.concatenate(s_mu) * DEBYE_PER_AU
        u = model.metadata["uncertainty"]
        print(f"n_train {n}: {model.metadata['n_weights']} weights, lambda {model.metadata['regularization']:g}, "
              f"sigma^2 {u['sigma2']:.3g}, dof {u['dof']:.0f} of {u['n_coef']} coefficients; fit {t_fit:.1f} s, "
              f"predict+cov {1000 * t_pred / len(frames):.0f} ms/structure")
        print(f"  dipole vs reference fit ({len(frames)} structures, D): {summary(np.concatenate(e_fit) * DEBYE_PER_AU, s_mu)}")
        if len(e_dft) == len(frames):
            print(f"  dipole vs DFT label (D): {summary(np.concatenate(e_dft) * DEBYE_PER_AU, s_mu)}")
        print(f"  MK-surface ESP vs reference fit at N electrons ({len(e_esp)} structures, {sum(map(len, e_esp))} points, Hartree/e): "
              f"{summary(np.concatenate(e_esp), np.concatenate(s_esp))}")
        print(f"  MK-surface ESP, unconstrained prediction vs raw reference fit: {summary(np.concatenate(e_free), np.concatenate(s_free))}")


if __name__ == "__main__":
    main()
