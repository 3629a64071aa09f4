"""The options of an active-learning run, their checks, and what of them a resumed run must match."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from psilearn.errors import ConfigError

STRATEGIES = ("variance", "targeted", "random")
INIT_STRATEGIES = ("fps", "random", "focus")


@dataclass
class ActiveOptions:
    """One active-learning run (``psilearn active``).

    ``target``: the Target as a dict (:meth:`psilearn.targets.Target.to_dict`); ``kind``, ``config``
    and ``seed``: the model, as for ``psilearn fit`` (the seed also draws the initial set and the
    random batches); ``init``: the initial set N0; ``batch``: structures per round B; ``budget``: the
    total number of structures sent to labelling, N0 included (a failed label uses its slot);
    ``strategy``: ``variance`` (largest predictive variance, diversified, see
    :mod:`psilearn.active.selection`), ``targeted`` (the batch that most reduces the predictive variance on
    the unlabelled ``focus`` structures) or ``random`` (the baseline); ``init_strategy``: ``fps``
    (farthest-point on invariant SOAP, from a random first structure), ``random``, or ``focus`` (with
    ``targeted``: the set that most reduces a descriptor kernel's variance on the focus structures, before any
    model exists: :func:`psilearn.active.selection.focus_initial_set`); ``oracle``: take
    the labels from the pool's KEY, or ``method`` (gfn2, XC/BASIS: the labeling campaign through the
    label store ``db``, ``workers`` Dask processes, 0: in this process; ``scheduler``: a running cluster);
    ``test``: labelled structures scored after every fit; ``focus``: see ``targeted``; ``symmetrize``:
    project labels onto the Target's symmetry instead of refusing asymmetric ones; ``calibration_neighbours`` K > 0:
    scale the joint posterior by the leave-one-out calibration of the K nearest labelled structures
    (:mod:`psilearn.active.calibration`; variance and targeted on one level, kinds with a joint posterior);
    ``baseline`` KEY: Δ-learning, every pool structure carries a cheap label KEY of the Target's observable and the
    model learns the Target minus KEY (:mod:`psilearn.active.baseline`; one level); or ``baseline_method`` (gfn2, XC/BASIS):
    psilearn computes that baseline itself for the structures it fits and predicts, through the label store
    ``baseline_db``.

    Several levels (cost-aware multi-fidelity, :mod:`psilearn.active.fidelity`): ``oracle`` or
    ``method`` a list, cheapest first, the target level last (with oracles the last key is the
    Target's key); ``costs`` {oracle key: seconds per label} for every oracle level (methods: measured
    from the label store). ``kind`` is then the inner kind of each level of the ``multifidelity``
    model, and ``budget`` and ``batch`` are in target-level labels: the run stops when the label
    seconds spent reach ``budget`` times the target level's cost per label, and a round spends at most
    ``batch`` times it (any mix of levels). The initial set is labelled at every level.
    """

    pool: str
    target: dict
    init: int
    batch: int
    budget: int
    kind: str = "sagpr"
    config: dict = field(default_factory=dict)
    seed: int = 0
    strategy: str = "variance"
    init_strategy: str = "fps"
    oracle: str | list[str] | None = None
    method: str | list[str] | None = None
    observables: str | None = None
    db: str | None = None
    workers: int = 0
    scheduler: str | None = None
    test: str | None = None
    focus: str | None = None
    symmetrize: bool = False
    costs: dict = field(default_factory=dict)
    calibration_neighbours: int = 0
    baseline: str | None = None
    baseline_method: str | None = None
    baseline_db: str | None = None

    @property
    def levels(self) -> list[str]:
        """The label sources' names, cheapest first (one entry for a single-level run)."""
        src = self.oracle if self.oracle is not None else self.method
        return [src] if isinstance(src, str) else list(src or [])

    @property
    def multilevel(self) -> bool:
        return len(self.levels) > 1

    def check(self, n_pool: int | None = None) -> None:
        """ConfigError (one line) for inconsistent options; ``n_pool``: the pool's size, once read."""
        if self.init < 1:
            raise ConfigError(f"--init must be >= 1, got {self.init}")
        if self.batch < 1:
            raise ConfigError(f"--batch must be >= 1, got {self.batch}")
        if self.budget < self.init:
            raise ConfigError(f"--budget {self.budget} is smaller than the initial set --init {self.init}; "
                              "the budget counts every labelled structure, the initial ones included")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if (self.strategy == "targeted") != (self.focus is not None):
            raise ConfigError("--strategy targeted needs --focus FILE (the structures the model should be good at), "
                              "and --focus goes with --strategy targeted only")
        if self.init_strategy not in INIT_STRATEGIES:
            raise ConfigError(f"--init-strategy must be one of {', '.join(INIT_STRATEGIES)}, got {self.init_strategy!r}")
        if self.init_strategy == "focus" and self.focus is None:
            raise ConfigError("--init-strategy focus needs --focus FILE (and --strategy targeted)")
        if (self.oracle is None) == (self.method is None):
            raise ConfigError("give the labels' source: either --oracle KEY (labels already in POOL) or --method METHOD")
        if self.method is None and (self.db or self.observables or self.scheduler):
            raise ConfigError("--db, --observables and --scheduler go with --method")
        if self.method is not None and not self.db:
            raise ConfigError("--method needs a label database (--db)")
        if self.workers < 0:
            raise ConfigError(f"--workers must be >= 0, got {self.workers}")
        self._check_levels()
        if self.calibration_neighbours < 0 or (self.calibration_neighbours and (self.strategy == "random" or self.multilevel)):
            raise ConfigError(f"--calibration-neighbours must be >= 0, and goes with --strategy variance or targeted on one level "
                              f"(got {self.calibration_neighbours} with {self.strategy}"
                              f"{', several levels' if self.multilevel else ''})")
        if self.calibration_neighbours and self.target.get("per") == "pair":
            raise ConfigError("--calibration-neighbours: per-pair targets are not supported (use it without, or a per-structure or per-atom target)")
        if self.baseline_method is not None:
            if self.baseline is not None or self.multilevel or not self.baseline_db:
                raise ConfigError("--baseline-method goes with one level, not with --baseline, and needs a label database "
                                  "(--baseline-db)")
        elif self.baseline_db is not None:
            raise ConfigError("--baseline-db goes with --baseline-method")
        if self.baseline is not None and (not self.baseline or self.multilevel):
            raise ConfigError("--baseline KEY goes with one level (with several, the multi-fidelity model learns the cheap "
                              "levels itself)" if self.baseline else "--baseline needs a label key")
        if self.baseline is not None and self.baseline == self.target.get("key"):
            # a labeler writes the target key, so a baseline under that key would be replaced by the label itself
            raise ConfigError(f"--baseline {self.baseline!r} is the --target key: give the cheap label its own key "
                              f"(e.g. {self.baseline}_gfn2)")
        if n_pool is not None and n_pool < self.budget:
            raise ConfigError(f"the pool {self.pool} holds {n_pool} structures, fewer than --budget {self.budget}")

    def _check_levels(self) -> None:
        names = self.levels
        if len(set(names)) != len(names) or not all(names):
            raise ConfigError(f"each level once: {', '.join(map(str, names))}")
        if not self.multilevel:
            if self.costs:
                raise ConfigError("--cost goes with several --oracle levels (cost-aware multi-fidelity)")
            return
        if self.strategy == "random":
            raise ConfigError("--strategy random with several levels: only the cost-aware variance and targeted selections "
                              "are defined across levels (run random with one level)")
        if self.method is not None:
            if self.costs:
                raise ConfigError("--cost goes with --oracle levels; with --method the seconds per label are measured "
                                  "from the label store")
            return
        missing = [n for n in names if n not in self.costs]
        unknown = sorted(set(self.costs) - set(names))
        if missing or unknown:
            raise ConfigError(f"--cost KEY=SECONDS for each --oracle level ({', '.join(names)}): "
                              + (f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(unknown)}"))
        bad = [n for n, c in self.costs.items() if not (isinstance(c, (int, float)) and c > 0 and c < float("inf"))]
        if bad:
            raise ConfigError(f"--cost: seconds per label must be positive and finite ({', '.join(bad)})")

    def record(self) -> dict:
        """What the log stores and a resumed run must repeat (the label workers and scheduler may change)."""
        out = asdict(self)
        for name in ("workers", "scheduler"):
            out.pop(name)
        if not out["costs"]:
            out.pop("costs")  # logs of single-level runs stay as they were
        if not out["calibration_neighbours"]:
            out.pop("calibration_neighbours")  # as do logs of runs without it
        for name in ("baseline", "baseline_method", "baseline_db"):
            if out[name] is None:
                out.pop(name)  # logs of runs without a baseline stay as they were
        return out


def differences(logged: dict, now: dict) -> list[str]:
    """The options of ``now`` that differ from the ``logged`` ones, as ``name: logged -> now``."""
    names = sorted(set(logged) | set(now))
    return [f"{n}: {logged.get(n)!r} -> {now.get(n)!r}" for n in names if logged.get(n) != now.get(n)]
