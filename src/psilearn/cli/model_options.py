"""Which model kind `psilearn fit` builds: --model, --baseline/--baseline-method (Δ-learning),
--fidelity-key (multi-fidelity), --long-range, and the options file checked against that kind."""

from __future__ import annotations

import argparse


def model_options(args) -> tuple[str, dict, int]:
    """(model kind, options, seed) from --model/--long-range/--baseline/--config/--seed; the options
    file is validated against the kind here, before any data is read. With ``--baseline KEY`` the
    kind is the delta kind wrapping ``--model`` (a class, accepted wherever a kind name is)."""
    from psilearn.cli.qeq_args import check_no_long_range_flags, long_range_options
    from psilearn.config import load_config
    from psilearn.errors import ConfigError
    from psilearn.models.fidelity.delta import REFUSED_INNER, check_inner_kind, delta_kind, delta_method_kind
    from psilearn.models.registry import model_class

    check_no_long_range_flags(args)
    baseline, method = getattr(args, "baseline", None), getattr(args, "baseline_method", None)
    if baseline is not None and method is not None:
        raise ConfigError("give either --baseline KEY (a label in TRAIN) or --baseline-method METHOD (computed by psilearn), not both")
    if method is None and (getattr(args, "baseline_db", None) or getattr(args, "baseline_label", None)):
        raise ConfigError("--baseline-db and --baseline-label go with --baseline-method")
    if args.model == "delta" and not baseline and not method:
        raise ConfigError("--model delta: give the baseline label with --baseline KEY or the method with --baseline-method "
                          "METHOD (and the inner kind with --model)")
    fidelity = getattr(args, "fidelity_key", None)
    coreg = getattr(args, "coregionalisation", None)
    if fidelity is None and (getattr(args, "target_fidelity", None) or getattr(args, "fidelities", None)
                             or getattr(args, "affine_fidelities", None) or coreg):
        raise ConfigError("--target-fidelity, --fidelities, --affine-fidelities and --coregionalisation go with --fidelity-key")
    if fidelity is not None and getattr(args, "val_fraction", None) is not None:
        raise ConfigError("--val-fraction cannot be combined with --fidelity-key (a random split would mix levels): the fit reports "
                          "the k-fold estimate of the target level; evaluate on a file of target-level structures")
    if fidelity is not None and (baseline is not None or method is not None or getattr(args, "long_range", None)):
        raise ConfigError("--fidelity-key cannot be combined with --baseline, --baseline-method or --long-range")
    flag = "--baseline-method" if method is not None else "--baseline"
    if (baseline is not None or method is not None) and getattr(args, "long_range", None):
        raise ConfigError(f"{flag} cannot be combined with --long-range: " + REFUSED_INNER["qeq"])
    from psilearn.cli.fit_options import with_scheduler

    name, config = args.model, with_scheduler(args, load_config(args.config))
    merged = config
    if getattr(args, "long_range", None):
        name, merged = long_range_options(args, config)  # CLI flags over the file's model section
    if baseline is not None or method is not None:
        check_inner_kind(name)  # before the options: an unsupported kind is the first thing to say
        if name == "spectrum":
            raise ConfigError(f"{flag} with --model spectrum: spectra are fitted by psilearn fit-spectrum, which takes "
                              "--baseline KEY or --baseline-method METHOD (loss l2 only; docs/fidelity.md)")
    if getattr(args, "per_element", False) or name == "per-element":
        return per_element_options(args, name, config, merged, fidelity)
    if fidelity is not None and coreg == "icm":  # before the options: an unsupported kind is the first thing to say
        from psilearn.models.fidelity.icm import check_icm_inner

        check_icm_inner(name)
    _, seed = model_class(name).validate_config(config, source=args.config, seed=args.seed)
    if fidelity is not None:
        from psilearn.models.fidelity.multifidelity import multifidelity_kind

        levels = [v.strip() for v in args.fidelities.split(",")] if getattr(args, "fidelities", None) else None
        if coreg == "icm":  # one SA-GPR over all levels with a learned coregionalisation (models/fidelity/icm.py)
            if getattr(args, "affine_fidelities", None):
                raise ConfigError("--affine-fidelities goes with the autoregressive coregionalisation, not --coregionalisation icm")
            from psilearn.models.fidelity.icm import icm_kind

            return icm_kind(fidelity, levels, args.target_fidelity or "", name), merged, seed
        if name == "nn-multifidelity":  # one network with a readout per level (models/nn/multifidelity.py)
            if getattr(args, "affine_fidelities", None):
                raise ConfigError("--affine-fidelities goes with the recursive multifidelity kind, not --model nn-multifidelity")
            from psilearn.models.nn.multifidelity import nn_heads_kind

            return nn_heads_kind(fidelity, levels, args.target_fidelity or ""), merged, seed
        affine = [v.strip() for v in args.affine_fidelities.split(",")] if getattr(args, "affine_fidelities", None) else None
        return multifidelity_kind(fidelity, levels, args.target_fidelity or "", name, affine), merged, seed
    if baseline is not None:  # the inner kind reads the options file; the delta kind wraps it
        return delta_kind(baseline, name, symmetrize=args.symmetrize), merged, seed
    if method is not None:
        if not args.baseline_db and not getattr(args, "output", None):
            raise ConfigError("--baseline-method here needs --baseline-db DB: the label store of the baseline labels")
        return delta_method_kind(method, name, db=args.baseline_db or default_baseline_db(args.output),
                                 label=args.baseline_label, symmetrize=args.symmetrize, workers=args.baseline_workers), merged, seed
    return name, merged, seed


def fidelity_summary(kind) -> str | None:
    """The line `psilearn fit` prints about a multi-fidelity kind (None for other kinds)."""
    name = getattr(kind, "kind", None)
    if name == "multifidelity":
        affine = list(kind.affine_default)
        return (f"multi-fidelity: levels by {kind.fidelity_key_default}, predicting {kind.target_level_default}; each level = "
                f"rho x the level below + a {kind.inner_kind} correction"
                + (f" ({', '.join(affine)}: an affine calibration of the level below, scale and offset, plus noise)" if affine else ""))
    if name == "multifidelity-icm":
        return (f"multi-fidelity: levels by {kind.fidelity_key_default}, predicting {kind.target_level_default}; one SA-GPR "
                "over all levels, coregionalised (B and a noise per level learned per irreducible block)")
    if name == "nn-multifidelity":
        return f"multi-fidelity: levels by {kind.fidelity_key_default}, predicting {kind.target_level_default}; one network, a readout per level"
    return None


def per_element_options(args, name: str, config: dict, merged: dict, fidelity) -> tuple:
    """(the per-element kind wrapping --model, options, seed) for --per-element (or --model per-element)."""
    from psilearn.errors import ConfigError
    from psilearn.models.per_element import per_element_kind

    others = [f for f, on in (("--baseline", getattr(args, "baseline", None)), ("--baseline-method", getattr(args, "baseline_method", None)),
                              ("--long-range", getattr(args, "long_range", None)), ("--fidelity-key", fidelity)) if on]
    if others:
        raise ConfigError(f"--per-element cannot be combined with {', '.join(others)}")
    kind = per_element_kind("sagpr" if name == "per-element" else name)
    _, seed = kind.validate_config(config, source=args.config, seed=args.seed)
    return kind, merged, seed


def default_baseline_db(model: str) -> str:
    """The label store of a --baseline-method model: MODEL.baseline.db, next to the model."""
    return f"{str(model).rstrip('/')}.baseline.db"


def add_baseline_method_args(p: argparse.ArgumentParser, fit: bool) -> None:
    """fit: --baseline, --baseline-method, --baseline-label; fit and predict: --baseline-db, --baseline-workers."""
    if fit:
        p.add_argument("--baseline", default=None, metavar="KEY", help="delta-learning: KEY is a cheap label of the same observable "
                       "in TRAIN (same shape and symmetry as --target); the --model kind learns --target minus KEY, and predict "
                       "needs KEY in its input and writes the sum, TARGET_baseline and TARGET_correction (the uncertainty is the "
                       "correction's; the baseline is taken as exact). Not with qeq or spectrum models (see docs/fidelity.md)")
        p.add_argument("--baseline-method", default=None, metavar="METHOD", help="delta-learning from a baseline psilearn "
                       "computes itself: gfn2, gfn1 or XC/BASIS (as psilearn label --method), at fit and at predict time "
                       "(its cost is paid for every prediction too). The label is inferred from --target (dipole_moment, "
                       "alpha, total_energy, mulliken_charges, ...; suffixes such as _input or _pbe0 allowed) and --units "
                       "must be its atomic units (e*Bohr, Bohr^3, Hartree, e, or a.u.). With --density or --hamiltonian: "
                       "XC/BASIS only, computed in the target's aux basis and metric (density) or AO basis (hamiltonian: the "
                       "method's basis must be the target's). Per-pair targets (--per pair): XC/BASIS J couplings "
                       "(jcoupling, jcoupling_iso; --units Hz) on the target's pairs. Spectra: psilearn fit-spectrum "
                       "--baseline-method. The model records the method and its hash. See docs/fidelity.md")
        p.add_argument("--baseline-label", default=None, metavar="LABEL", help="--baseline-method: the label key providing "
                       "the baseline (default: inferred from --target)")
    p.add_argument("--baseline-db", default=None, metavar="DB", help="--baseline-method: the label database (ASE SQLite, "
                   "resumable; structures labelled there with the same method hash are reused; default MODEL.baseline.db)")
    p.add_argument("--baseline-workers", type=int, default=0, metavar="N", help="--baseline-method: labeling processes "
                   "(a local Dask cluster); default 0: in this process")


def add_fidelity_args(p: argparse.ArgumentParser, fit: bool) -> None:
    """fit: --fidelity-key, --target-fidelity, --fidelities; predict: --fidelity (multi-fidelity models)."""
    if not fit:
        p.add_argument("--fidelity", default=None, metavar="NAME", help="multi-fidelity models: the level to predict (default: "
                       "the model's target level)")
        return
    p.add_argument("--fidelity-key", default=None, metavar="KEY", help="multi-fidelity: every training structure names its level "
                   "of theory in info[KEY] (e.g. level=gfn2, level=pbe0); each level is learned as rho x the level below plus a "
                   "--model correction (recursive co-kriging, docs/fidelity.md); with --model nn-multifidelity, one network "
                   "with a readout per level instead")
    p.add_argument("--coregionalisation", default=None, choices=("autoregressive", "icm"), help="multi-fidelity with --model "
                   "sagpr: 'autoregressive' (default: recursive co-kriging, level = rho x the level below + a correction) or "
                   "'icm' (one GP over all levels, k((x,f),(x',f')) = B_ff' k(x,x'), B and a noise per level learned by "
                   "marginal likelihood per irreducible block; docs/fidelity.md)")
    p.add_argument("--target-fidelity", default=None, metavar="NAME", help="multi-fidelity: the level predict returns by default")
    p.add_argument("--fidelities", default=None, metavar="A,B,...", help="multi-fidelity: the levels from the cheapest to the "
                   "best (default: by decreasing number of structures, --target-fidelity last)")
    p.add_argument("--affine-fidelities", default=None, metavar="A,...", help="multi-fidelity: levels (e.g. an experiment) that "
                   "are an affine calibration of the level below plus noise (scale per irreducible part, offset of the "
                   "isotropic part, noise per part) instead of a learned correction")


