"""Command-line glue for the long-range models (used by :mod:`psilearn.cli.fit_cmds`).

``psilearn fit DATA --target charges --per atom --long-range qeq -o M``        (from charges)
``psilearn fit DATA --target mu --tensor i --units e*Bohr --long-range qeq -o M`` (from dipoles)
``... --target mu --tensor i --long-range qeq --charges-key q --charge-weight 0.5`` (both)
``... --long-range qeq --model nn [--config cfg.yaml]``: the same with NN electronegativities (kind ``qeq-nn``)
"""

from __future__ import annotations

import argparse

LONG_RANGE = ("qeq",)
#: --long-range NAME with --model BACKEND -> model kind
BACKENDS = {("qeq", "sagpr"): "qeq", ("qeq", "qeq"): "qeq", ("qeq", "nn"): "qeq-nn", ("qeq", "qeq-nn"): "qeq-nn"}


def add_long_range_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("long-range (charge equilibration)")
    g.add_argument("--long-range", choices=LONG_RANGE, default=None,
                   help="qeq: learn electronegativities, get charges by charge equilibration (exact total charge from "
                        "atoms.info['charge']); the target is per-atom charges or a dipole (--tensor i, needs --units). "
                        "Electronegativities from a sparse GP (default) or, with --model nn, an equivariant network")
    g.add_argument("--charges-key", default=None, metavar="KEY",
                   help="qeq with a dipole target: also fit these per-atom reference charges (e)")
    g.add_argument("--charge-weight", type=float, default=None, metavar="W",
                   help="qeq: weight of the charge residuals relative to the dipole residuals, each normalised by its RMS (default 1)")
    g.add_argument("--dipole-origin", choices=("com", "nuclear_charge", "zero"), default=None,
                   help="qeq: origin of dipoles of charged structures: centre of mass (default), centre of nuclear charge, or the "
                        "coordinate origin; must match the reference labels (neutral structures do not depend on it)")


def long_range_options(args, config: dict) -> tuple[str, dict]:
    """(model kind, config) for ``--long-range``: CLI options override the YAML ``model:`` section."""
    backend = getattr(args, "model", "sagpr")
    kind = BACKENDS.get((args.long_range, backend))
    if kind is None:
        raise ValueError(f"--long-range {args.long_range} works with --model sagpr (kernel, default) or --model nn, "
                         f"not --model {backend}")
    model = dict(config.get("model", {}))
    for flag, key in (("charges_key", "charges_key"), ("charge_weight", "charge_weight"), ("dipole_origin", "origin")):
        value = getattr(args, flag, None)
        if value is not None:
            model[key] = value
    return kind, {**config, "model": model}


def check_no_long_range_flags(args) -> None:
    """Refuse QEq-only flags without ``--long-range``."""
    used = [f for f in ("charges_key", "charge_weight", "dipole_origin") if getattr(args, f, None) is not None]
    if used and not getattr(args, "long_range", None):
        names = ", ".join("--" + f.replace("_", "-") for f in used)
        raise ValueError(f"{names} only apply with --long-range qeq")
