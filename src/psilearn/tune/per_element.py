"""`fit --per-element --tune`: one study per centre element, each on that element's atoms alone.

The budget is split evenly between the labelled elements (in order of atomic number); each
element's study starts from its own options (the shared sections with its ``per_element``
overrides, which stay fixed as any stated option does) and is scored by the k-fold CV error of its
own atoms. The chosen models are assembled into one per-element model; each element's study is in
its training record (``training.per_element.SYMBOL.tuning``).

Each element's trials are fits of a per-element model of that element's atoms alone (a label mask),
i.e. of that element's SA-GPR with one sparse point for every other element; the searched
``n_sparse`` is that element's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ase.data import chemical_symbols

from psilearn.tune.study import DEFAULT_SECONDS, tune_model


def tune_per_element(kind, target, data, config: dict | None = None, *, seconds: float = DEFAULT_SECONDS, n_trials: int | None = None,
                     seed: int | None = None, progress: Callable[[dict], None] | None = None):
    """The per-element model (``kind``: :func:`psilearn.models.per_element.per_element_kind`) whose
    every element's model is the best of its own study within ``seconds / n_elements``. ``progress(row)``
    gets each trial's record with ``element`` first in its parameters."""
    from psilearn.models.per_element.options import element_configs, element_dataset, labelled_elements, split_config
    from psilearn.models.registry import model_class

    t0 = time.perf_counter()
    kind.check_target(target)
    options, seed = kind.validate_config(config, seed=seed)
    model = kind.from_options(target, options, seed, False)
    elements = labelled_elements(data)
    model.check_named(elements, data.species)
    shared, raw = split_config(config)
    merged = element_configs(shared, raw, model_class(kind.inner_kind).config_sections, kind.inner_kind)
    inners, records = {}, {}
    for z in elements:
        sym = chemical_symbols[z]
        report = None if progress is None else (lambda row, s=sym: progress({**row, "params": {"element": s, **row["params"]}}))
        # the study of a per-element model of z's atoms alone: every trial is the focused fit of z's model
        best = tune_model(kind, target, element_dataset(data, z), merged.get(sym, shared), seconds=seconds / len(elements),
                          n_trials=n_trials, seed=seed, progress=report)
        inners[z], records[z] = best.inners[z], best.metadata["tuning"]
    for z, inner in inners.items():
        inner.metadata["tuning"] = records[z]
    return model.assemble(data, inners, t0)
