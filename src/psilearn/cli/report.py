"""Tables printed by `fit`, `evaluate` and `learning-curve` (formatting only; the numbers come from
psilearn.evaluation and psilearn.metrics)."""

from __future__ import annotations

import math

ORTHONORMAL_NOTE = ("channels: components in e3nn's orthonormal basis (for a rank-2 tensor 0e = trace/sqrt(3)); "
                    "`psilearn evaluate` reports the isotropic value trace/3 and the parts' norms in the data's units")


def _label(name: str, physical: dict | None) -> str:
    return f"{name} {physical[name]['part']}" if physical and name in physical else name


def metrics_table(metrics: dict, units: str = "", ratio: dict | None = None, physical: dict | None = None) -> str:
    """MAE, RMSE and RMSE % of std per channel; with ``ratio`` a column RMSE / composition baseline.
    ``physical`` ({channel: scores}, :func:`psilearn.metrics.channels.physical_metrics`): channel rows
    show those numbers, named (isotropic, antisymmetric, anisotropic)."""
    u = f" [{units}]" if units else ""
    rows = [f"{'component':<18}{'MAE' + u:>16}{'RMSE' + u:>16}{'RMSE % std':>12}" + (f"{'RMSE/base':>11}" if ratio else "")]
    channels = {k: (physical or {}).get(k, m) for k, m in metrics["channels"].items()}
    for name, m in [("Cartesian", metrics["cartesian"]), *channels.items()]:
        row = f"{_label(name, physical):<18}{m['mae']:>16.5g}{m['rmse']:>16.5g}{m['pct_rmse']:>12.3f}"
        if ratio:
            r = ratio.get(name)
            row += f"{r:>11.4f}" if r is not None else f"{'-':>11}"
        rows.append(row)
    return "\n".join(rows)


def heldout_table(held: dict, units: str = "") -> str:
    """The k-fold estimate of a fit: one table, or one per element (per-element models), or '(none)'
    (streamed sagpr fits have none)."""
    if "cartesian" in held:
        return metrics_table(held, units)
    if "per_element" in held:
        return "\n".join(f"{s}:\n{metrics_table(m, units) if m and 'cartesian' in m else '(none)'}" for s, m in held["per_element"].items())
    return "(none)"


def per_element_table(per_element: dict, units: str = "") -> str:
    """One row per element and component (Cartesian, then the channels, named when physical)."""
    u = f" [{units}]" if units else ""
    rows = [f"{'element':<9}{'atoms':>7}  {'component':<18}{'MAE' + u:>16}{'RMSE' + u:>16}{'RMSE % std':>12}"]
    for symbol, e in per_element.items():
        physical = e.get("physical")
        channels = {k: (physical or {}).get(k, m) for k, m in e["channels"].items()}
        for i, (name, m) in enumerate([("Cartesian", e["cartesian"]), *channels.items()]):
            head = f"{symbol:<9}{e['n_atoms']:>7}" if i == 0 else " " * 16
            rows.append(f"{head}  {_label(name, physical):<18}{m['mae']:>16.5g}{m['rmse']:>16.5g}{m['pct_rmse']:>12.3f}")
    return "\n".join(rows)


def print_evaluation(m: dict) -> None:
    """The `evaluate` report: errors per channel (physical names for rank-2 tensors), per element for
    per-atom targets, against the composition baseline, and the uncertainty calibration."""
    from psilearn.targets import Target

    if "hamiltonian" in m:
        from psilearn.cli.hamiltonian_cmds import metrics_lines

        print(f"{m['target']['key']} (Hamiltonian in {m['target']['basis']}) on {m['n_structures']} structures from {m['test']}:")
        print("\n".join(metrics_lines(m["hamiltonian"])))
        return
    t = Target.from_dict(m["target"])
    if "l2_percent" in m:
        from psilearn.cli.density_fit import print_density_evaluation

        print_density_evaluation(m, t)
        return
    print(f"{t.describe()} on {m['n_structures']} structures ({m['n_samples']} samples) from {m['test']}")
    if "spectral" in m:  # one channel per grid point: the spectral metrics say more
        from psilearn.cli.spectra_cmds import print_spectral

        print(f"spectral metrics, mean over the {m['n_samples']} test spectra:")
        print_spectral(m["spectral"], t.units, t.grid_units)
        c, u = m["cartesian"], f" {t.units}" if t.units else ""
        pct = f"{c['pct_rmse']:.2f}% of the test spectra's spread" if math.isfinite(c["pct_rmse"]) else "the test spectra do not vary"
        print(f"  all grid points: MAE {c['mae']:.5g}{u}, RMSE {c['rmse']:.5g}{u} ({pct})")
    else:
        base = m.get("baseline") or {}
        physical = m.get("physical")
        print(metrics_table(m, t.units, base.get("rmse_ratio"), physical and physical["channels"]))
        if physical:
            print(physical["convention"])
        if base.get("rmse_ratio"):
            print("RMSE/base: the model's RMSE over that of the per-element composition baseline fitted on the training data (< 1 is better)")
        elif base.get("note"):
            print(f"composition baseline: {base['note']}")
        if m.get("per_element"):
            print("per element (RMSE % std relative to each element's own spread):")
            print(per_element_table(m["per_element"], t.units))
    c = m["calibration"]
    print(f"uncertainty: {100 * c['within_1sigma']:.1f}% of errors within 1 sigma (ideal 68.3), "
          f"{100 * c['within_2sigma']:.1f}% within 2 sigma (ideal 95.4)")
    curve = m.get("calibration_curve")
    if curve:
        pairs = ", ".join(f"{100 * e:.0f}%: {100 * o:.0f}%" for e, o in zip(curve["expected"], curve["observed"]) if e in (0.5, 0.683, 0.9, 0.99))
        print(f"calibration (expected: observed coverage of Gaussian intervals): {pairs}; mean |deviation| {curve['mean_abs_deviation']:.3f}")
    plots = m.get("plots") or {}
    if plots.get("parity"):
        print(f"parity plot: {plots['parity']}")
    if plots.get("spectra"):
        print(f"example spectra (reference vs predicted, ±1 std): {plots['spectra']}")
    if plots.get("calibration"):
        print(f"calibration plot: {plots['calibration']}")
    elif plots:
        print("calibration plot: not written (the model gives no uncertainties)")
