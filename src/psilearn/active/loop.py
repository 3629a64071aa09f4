"""The active-learning loop: fit -> predict the pool with uncertainty -> select a batch -> label ->
refit, until the budget is spent; resumable from its log (:mod:`psilearn.active.state`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from psilearn.active.fidelity import FIDELITY_KEY, LevelLabels, check_costs, cost_aware_batch, measured_costs, spent_seconds
from psilearn.active.labels import MethodLabels, OracleLabels, check_unique, order_indices
from psilearn.active.levels_posterior import levels_posterior_batch
from psilearn.active.options import ActiveOptions
from psilearn.active.posterior import candidates_posterior, posterior_batch
from psilearn.active.selection import diverse_batch, focus_initial_set, initial_set, random_batch, structure_variance, targeted_batch
from psilearn.active.state import default_state_dir, save_log, start_or_resume
from psilearn.errors import ConfigError, DataError


@dataclass
class _Run:
    options: ActiveOptions
    target: object
    pool: list[Atoms]
    source: object
    test: object
    state_dir: str
    log: dict
    report: Callable[[str], None]
    descriptors: np.ndarray | None = None
    focus: list | None = None
    focus_descriptors: np.ndarray | None = None
    labels: dict = field(default_factory=dict)  # pool index -> labelled Atoms
    failed: dict = field(default_factory=dict)  # pool index -> reason
    model: object = None
    progress: bool = False
    on_fit: Callable | None = None
    kind: object = None  # the model kind (a multifidelity class with several levels)


def run_active(options: ActiveOptions, output: str | None = None, state_dir: str | None = None, overwrite: bool = False,
               report: Callable[[str], None] | None = None, progress: bool = False,
               on_fit: Callable[[dict, object], None] | None = None):
    """Run (or resume) active learning; returns (the final model, the log). ``output``: save the final
    model there (``overwrite`` replaces an existing one and starts over a run logged with other
    options); ``state_dir``: the log's folder (default ``OUTPUT.active``); ``report``: called with one
    line per step (the CLI prints them on stderr); ``on_fit(round, model)``: called after each round's
    fit (e.g. extra test sets in a benchmark)."""
    run = _prepare(options, output, state_dir, overwrite, report or (lambda line: None))
    run.progress, run.on_fit = progress, on_fit
    rounds = run.log["rounds"]
    if not rounds:
        _select(run, 0)
    while True:
        r = rounds[-1]
        if r["status"] == "selected":
            _label(run, r)
        if r["status"] == "labelled":
            _fit(run, r)
        elif run.model is None:  # resumed after a finished round: the same data and seed give the same model
            run.model, _ = _fit_model(run)
        n_selected = len(order_indices(rounds))
        if not options.multilevel and (n_selected >= options.budget or n_selected >= len(run.pool)):
            break
        if not _select(run, len(rounds)):
            break
    run.log["complete"] = True
    save_log(run.state_dir, run.log)
    run.model.metadata["active_learning"] = {"options": run.log["options"], "rounds": rounds}
    if output:
        run.model.save(output, overwrite=overwrite)
    return run.model, run.log


def _prepare(options: ActiveOptions, output, state_dir, overwrite, report) -> _Run:
    from psilearn.data import load_dataset, read_structures
    from psilearn.models.registry import model_class
    from psilearn.targets import Target

    options.check()
    kind_class = model_class(options.kind)  # an unknown kind: ValueError listing the kinds
    if options.multilevel and options.strategy == "targeted" and not kind_class.has_joint_posterior(options.config):
        raise _no_level_posterior(options.kind)
    if options.calibration_neighbours and not kind_class.has_joint_posterior(options.config):
        raise ConfigError(f"--calibration-neighbours needs the model's joint posterior; model kind {options.kind!r} has none here "
                          "(use sagpr or an nn kind with nn_train.uncertainty: llpr)")
    target = Target.from_dict(options.target)
    if state_dir is None:
        if output is None:
            raise ConfigError("give an output model or a state directory for the active-learning log")
        state_dir = default_state_dir(output)
    pool = read_structures(options.pool)
    options.check(len(pool))
    focus = read_structures(options.focus) if options.focus else None
    if focus is not None:  # before any log or label: a focus the pool cannot describe is refused at once
        _check_focus_elements(focus, pool)
    source, kind = _sources(options, target, pool)
    test = load_dataset(options.test, target, symmetrize=options.symmetrize) if options.test else None
    if options.baseline:  # Δ-learning: every pool and test structure must carry the baseline, checked before any label
        from psilearn.active.baseline import delta_run_kind

        kind = delta_run_kind(options.baseline, options.kind, options.symmetrize, target, pool, test)
    elif options.baseline_method:
        from psilearn.active.baseline import delta_method_run_kind

        kind = delta_method_run_kind(options.baseline_method, options.kind, options.symmetrize, target, options.baseline_db,
                                     options.workers)
    log, resumed = start_or_resume(state_dir, options.record(), overwrite)
    run = _Run(options, target, pool, source, test, str(state_dir), log, report, kind=kind)
    run.focus = focus
    if resumed:
        _restore(run)
    report(f"{'resuming' if resumed else 'starting'} active learning: {len(pool)} structures in {options.pool}, "
           f"{options.strategy} selection, labels from {source.describe()}; log {state_dir}/log.json")
    return run


def _check_focus_elements(focus: list[Atoms], pool: list[Atoms]) -> None:
    """DataError naming the focus file, frame and elements for a focus structure with elements absent from the pool."""
    from ase.data import chemical_symbols

    from psilearn.models.checks import check_known_elements

    def names(zs):
        return ", ".join(chemical_symbols[z] for z in zs)

    check_known_elements(focus, sorted({int(z) for a in pool for z in a.numbers}),
                         lambda new, known: f"--focus structure with element(s) {names(new)} that no pool structure has (the pool has {names(known)})")


def _no_level_posterior(kind: str) -> ConfigError:
    return ConfigError(f"--strategy targeted with several levels needs a joint posterior at every level; model kind {kind!r} "
                       "has none here (use sagpr, an nn kind with nn_train.uncertainty: llpr, or --strategy variance)")


def _sources(options: ActiveOptions, target, pool: list[Atoms]):
    """(labels source, model kind): one level, or several through LevelLabels and a multifidelity kind."""
    from psilearn.data import load_dataset
    from psilearn.models.fidelity.multifidelity import multifidelity_kind

    levels, sources = options.levels, []
    if options.oracle is not None:
        if levels[-1] != target.key:
            what = "the last --oracle (the target level)" if options.multilevel else f"--oracle {levels[-1]!r}"
            raise ConfigError(f"{what} must be the --target key {target.key!r}")
        for key in levels:
            sources.append(OracleLabels(pool, key, options.pool))
            level_target = type(target).from_dict({**target.to_dict(), "key": key})
            load_dataset(options.pool, level_target, symmetrize=options.symmetrize)  # every label checked, before any work
    else:
        for method in levels:
            sources.append(MethodLabels(pool, target.key, method, options.db, options.observables,
                                        options.workers, options.scheduler))
    if not options.multilevel:
        return sources[0], options.kind
    keys = levels if options.oracle is not None else [target.key] * len(levels)
    kind = multifidelity_kind(FIDELITY_KEY, levels, levels[-1], inner=options.kind)
    return LevelLabels(sources, levels, keys, target.key, len(pool)), kind


def _restore(run: _Run) -> None:
    """Read back the labels of the logged rounds (oracle: the pool; method: the label store)."""
    rounds = run.log["rounds"]
    for r in rounds:
        run.failed.update({int(k): v for k, v in r.get("failed", {}).items()})
    done = [i for r in rounds if r["status"] != "selected" for i in r["selected"] if i not in run.failed]
    got = run.source.label(done) if done else {}
    lost = [i for i, a in got.items() if isinstance(a, str)]
    if lost:
        raise DataError(f"the labels of pool structures {lost[:5]} logged as labelled are missing from the label store; "
                        "was the database changed? (rerun with --overwrite to start over)")
    run.labels.update(got)
    n = sum(len(r["selected"]) for r in rounds)
    run.report(f"  {len(rounds)} rounds logged, {n} structures selected, {len(run.labels)} labelled")


def _descriptors(run: _Run) -> np.ndarray:
    if run.descriptors is None:
        from psilearn.features.invariants import structure_invariants

        run.descriptors = structure_invariants(run.pool)
    return run.descriptors


def _focus_descriptors(run: _Run) -> np.ndarray:
    """The focus structures' invariant descriptors, with the pool's SOAP species (one descriptor space)."""
    if run.focus_descriptors is None:
        from psilearn.features.invariants import structure_invariants

        both = structure_invariants(list(run.pool) + list(run.focus))
        run.descriptors, run.focus_descriptors = both[: len(run.pool)], both[len(run.pool):]
    return run.focus_descriptors


def _select(run: _Run, round_: int) -> bool:
    """Choose round ``round_``'s structures and log them (status ``selected``) before any labelling;
    False when nothing is left to select (several levels: the budget's seconds are spent)."""
    opts, t0 = run.options, time.perf_counter()
    taken = order_indices(run.log["rounds"])
    extra = {}
    if round_ == 0:
        elements = [set(int(z) for z in a.numbers) for a in run.pool]
        if opts.init_strategy == "fps":
            chosen = initial_set(_descriptors(run), opts.init, "fps", opts.seed, elements)
        elif opts.init_strategy == "focus":
            focus = _focus_descriptors(run)  # first: it sets the pool's descriptors in the same space
            chosen = focus_initial_set(run.descriptors, focus, opts.init, opts.seed, elements)
        else:
            chosen = initial_set(np.zeros((len(run.pool), 1)), opts.init, "random", opts.seed, elements)
        chosen = [k * len(run.pool) + i for k in range(len(opts.levels)) for i in chosen]
    elif opts.multilevel:
        chosen, extra = _select_levels(run, taken)
        if not chosen:
            return False
    else:
        candidates = np.setdiff1d(np.arange(len(run.pool)), taken)
        b = min(opts.batch, opts.budget - len(taken))
        labelled = np.array([i for i in taken if i in run.labels], int)
        if opts.strategy == "random":
            chosen = random_batch(candidates, b, opts.seed, round_)
        else:
            chosen, extra["acquisition"] = _batch(run, candidates, labelled, b)
    check_unique(taken + chosen)
    if opts.multilevel:
        extra["pairs"] = [[i % len(run.pool), opts.levels[i // len(run.pool)]] for i in chosen]
    run.log["rounds"].append({"round": round_, "selected": chosen, "status": "selected", "failed": {},
                              "seconds": {"select": round(time.perf_counter() - t0, 3)}, **extra})
    save_log(run.state_dir, run.log)
    what = "labels" if opts.multilevel else "structures"
    run.report(f"round {round_}: selected {len(chosen)} {what} ({len(taken) + len(chosen)}"
               f"{'' if opts.multilevel else f'/{opts.budget}'})")
    return True


def _batch(run: _Run, candidates: np.ndarray, labelled: np.ndarray, b: int) -> tuple[list[int], str]:
    """``variance``: the diverse batch of largest predictive variance; ``targeted``: the batch that most
    reduces the focus structures' predictive variance. On the model's own joint posterior where the kind
    has one (psilearn.active.posterior; with --calibration-neighbours scaled by the labels' local calibration), else on
    the surrogate kernel (psilearn.active.selection)."""
    frames = [run.pool[i] for i in candidates]
    targeted, k = run.options.strategy == "targeted", run.options.calibration_neighbours
    query = frames + list(run.focus) if targeted else frames
    factors = run.model.posterior_factors(query + [run.labels[i] for i in labelled] if k else query)
    if factors is None and targeted:
        focus = _focus_descriptors(run)  # first: it sets the pool's descriptors in the same space
        return targeted_batch(_variance(run, frames), _variance(run, run.focus), run.descriptors, focus, candidates,
                              labelled, b), "surrogate kernel"
    if factors is None:
        return diverse_batch(_variance(run, frames), _descriptors(run), candidates, labelled, b), "surrogate kernel"
    how = "model posterior"
    if k:
        from psilearn.active.calibration import describe

        factors, summary = _calibrate(run, factors, query, candidates, labelled)
        how += ", " + describe(summary)
    post = candidates_posterior(factors, frames, targeted, run.target.per != "structure")
    picks = posterior_batch(post, b, "focus" if targeted else "variance")
    return [int(candidates[j]) for j in picks], how


def _calibrate(run: _Run, factors: list, query: list[Atoms], candidates: np.ndarray, labelled: np.ndarray) -> tuple[list, dict]:
    """``--calibration-neighbours``: the query's factors scaled by the local leave-one-out calibration of the labels
    (psilearn.active.calibration); ``factors`` hold the query's samples, then the labelled structures'."""
    from psilearn.active.calibration import calibrated_factors
    from psilearn.data import load_dataset

    focus_desc = _focus_descriptors(run) if run.focus is not None else None  # first: the pool's in the same space
    pool_desc = _descriptors(run)
    query_desc = pool_desc[candidates] if len(query) == len(candidates) else np.vstack([pool_desc[candidates], focus_desc])
    data = load_dataset(_labelled(run, labelled), run.target, symmetrize=run.options.symmetrize)
    per_atom = run.target.per != "structure"
    query_structure = np.repeat(np.arange(len(query)), [len(a) for a in query]) if per_atom else np.arange(len(query))
    return calibrated_factors(run.model, factors, query_structure, data, query_desc, pool_desc[labelled],
                              run.options.calibration_neighbours)


def _select_levels(run: _Run, taken: list[int]) -> tuple[list[int], dict]:
    """Several levels: the cost-aware batch and what the log records of it. On the model's per-level joint
    posterior where every level has one (psilearn.active.levels_posterior), else on the surrogate kernel
    (psilearn.active.fidelity)."""
    opts, n = run.options, len(run.pool)
    costs = _costs(run)
    budget = opts.budget * costs[-1]
    spent = spent_seconds(taken, run.labels, costs, n, opts.method is not None)
    avail = np.ones((len(opts.levels), n), bool)
    for i in taken:
        avail[i // n, i % n] = False
    # a round spends at most the seconds of --batch target labels (cheap labels do not use up a slot each)
    remaining = min(budget - spent, opts.batch * costs[-1])
    record = {"costs": [round(c, 6) for c in costs], "spent_before": round(spent, 6), "budget_seconds": round(budget, 6)}
    focus = run.focus if opts.strategy == "targeted" else None
    picks = levels_posterior_batch(run.model, run.pool, focus, avail, costs, remaining, run.target.per != "structure")
    if picks is not None:
        return [k * n + j for j, k in picks], {**record, "acquisition": "model posterior"}
    if focus is not None:  # the kind has the method, but this model gives none (e.g. an ensemble)
        raise _no_level_posterior(opts.kind)
    labelled = [np.array([i % n for i in taken if i // n == k and i in run.labels], int) for k in range(len(opts.levels))]
    terms = run.model.variance_terms(run.pool)
    if not np.all(np.isfinite(terms)):
        raise ConfigError(f"model kind {opts.kind!r} gives no predictive uncertainty; cost-aware selection needs one (use sagpr)")
    atoms = None if run.target.per == "structure" else np.repeat(np.arange(n), [len(a) for a in run.pool])
    variance = np.stack([structure_variance(t, atoms, n) for t in terms])
    picks = cost_aware_batch(variance, costs, _descriptors(run), avail, labelled, int(avail.sum()), remaining)
    return [k * n + j for j, k in picks], {**record, "acquisition": "surrogate kernel"}


def _costs(run: _Run) -> list[float]:
    """Seconds per label of each level: given (--cost, oracles) or measured from the labels (methods)."""
    if run.options.oracle is not None:
        return [float(run.options.costs[name]) for name in run.options.levels]
    return check_costs(measured_costs(run.labels, run.options.levels, len(run.pool)), run.options.levels)


def _variance(run: _Run, frames: list[Atoms]) -> np.ndarray:
    pred = run.model.predict(frames, return_std=True)
    if pred.irreps_std is None or not np.all(np.isfinite(pred.irreps_std)):
        raise ConfigError(f"model kind {run.options.kind!r} gives no predictive uncertainty; --strategy variance "
                          "needs one (use sagpr, or --strategy random)")
    # each sample's structure: atoms, or the predicted pairs, whose number is not the atoms'
    counts = [len(a) for a in frames] if run.target.per == "atom" else [len(p) for p in pred.pairs or ()]
    atoms = None if run.target.per == "structure" else np.repeat(np.arange(len(frames)), counts)
    return structure_variance(pred.irreps_std, atoms, len(frames))


def _label(run: _Run, r: dict) -> None:
    t0 = time.perf_counter()
    got = run.source.label(r["selected"], progress=getattr(run, "progress", False))
    for i, a in got.items():
        if isinstance(a, str):
            r["failed"][str(i)] = a
            run.failed[i] = a
        else:
            run.labels[i] = a
    if len(r["failed"]) == len(r["selected"]):
        raise DataError(f"round {r['round']}: every label failed (first: {next(iter(r['failed'].values()))}); "
                        "see the label database")
    r["status"] = "labelled"
    r["seconds"]["label"] = round(time.perf_counter() - t0, 3)
    if run.options.multilevel:  # the labels' cost: measured seconds (methods) or the given --cost (oracles)
        r["charged_seconds"] = round(spent_seconds(r["selected"], run.labels, _costs(run), len(run.pool),
                                                      run.options.method is not None), 6)
    save_log(run.state_dir, run.log)
    fails = f", {len(r['failed'])} failed" if r["failed"] else ""
    run.report(f"round {r['round']}: labelled {len(r['selected']) - len(r['failed'])}{fails} in {r['seconds']['label']:.1f} s")


def _fit_model(run: _Run):
    """The model fitted on every labelled structure, in selection order; (model, seconds)."""
    from psilearn.data import load_dataset
    from psilearn.models.factory import fit_model

    t0 = time.perf_counter()
    order = [i for i in order_indices(run.log["rounds"]) if i in run.labels]
    data = load_dataset(_labelled(run, order), run.target, symmetrize=run.options.symmetrize)
    data.name = f"{run.options.pool} (active learning, {len(order)} structures)"
    model = fit_model(run.kind, run.target, data, run.options.config, seed=run.options.seed)
    return model, time.perf_counter() - t0


def _labelled(run: _Run, indices) -> list[Atoms]:
    """The labelled structures of pool ``indices``; with --baseline, each with the pool frame's baseline label."""
    if not run.options.baseline:
        return [run.labels[i] for i in indices]
    from psilearn.active.baseline import with_baseline

    return [with_baseline(run.labels[i], run.pool[i], run.options.baseline) for i in indices]


def _fit(run: _Run, r: dict) -> None:
    from psilearn.active.validation import validation_record

    run.model, seconds = _fit_model(run)
    r["seconds"]["fit"] = round(seconds, 3)
    t0 = time.perf_counter()
    r["validation"] = validation_record(run.model, run.test)
    if run.test is not None:
        r["seconds"]["test"] = round(time.perf_counter() - t0, 3)
    r["n_labelled"] = int(run.model.metadata["n_train_structures"])
    r["status"] = "done"
    if run.on_fit is not None:
        run.on_fit(r, run.model)
    save_log(run.state_dir, run.log)
    run.report(f"round {r['round']}: fitted on {r['n_labelled']} in {seconds:.1f} s; {_summary(r['validation'])}")


def _summary(v: dict) -> str:
    parts = [f"{name} RMSE {m['rmse']:.4g} ({m['pct_rmse']:.1f}% of std)" for name, m in v.items() if m]
    return "; ".join(parts) or "no validation estimate"
