"""Options of the per-element kind: the shared sections, each element's overrides, and each
element's own options (YAML ``per_element: {H: {soap: {...}, model: {...}}, C: {...}}``).

An element's options are the shared sections with that element's keys replacing the shared ones,
key by key (``per_element: {H: {soap: {cutoff: 3}}}`` keeps every other shared ``soap`` option);
both are validated by the inner kind, so a bad value names ``per_element.H`` and the option.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from psilearn.data import Dataset
from psilearn.errors import ConfigError

#: the per-element section of the options file
SECTION = "per_element"


@dataclass
class PerElementSection:
    """The validated ``per_element`` section: the raw overrides (recorded in model files) and each
    named element's validated options ({symbol: {section: options object}})."""

    raw: dict = field(default_factory=dict)
    elements: dict = field(default_factory=dict)


def split_config(config: dict | None) -> tuple[dict, dict]:
    """(the shared sections, the raw ``per_element`` mapping) of an options dict."""
    config = dict(config or {})
    raw = config.pop(SECTION, None)
    return config, raw


def element_configs(shared: dict, raw, inner_sections: tuple[str, ...], inner_kind: str, source=None) -> dict[str, dict]:
    """{symbol: merged options dict} of the elements named in ``per_element``; ConfigError naming
    the file, ``per_element.SYMBOL`` and what is wrong (not an element symbol, not a mapping, a
    section the inner kind does not read)."""
    where = f"{source}: " if source else ""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}{SECTION}: expected a mapping of element symbols to sections, e.g. {{H: {{soap: {{cutoff: 3.0}}}}}}")
    out = {}
    for sym, sections in raw.items():
        if not isinstance(sym, str) or sym not in chemical_symbols[1:]:
            raise ConfigError(f"{where}{SECTION}: unknown element {sym!r} (keys are element symbols, e.g. H, C, Si)")
        sections = sections or {}
        if not isinstance(sections, dict):
            raise ConfigError(f"{where}{SECTION}.{sym}: expected a mapping of sections ({', '.join(inner_sections)})")
        for s, opts in sections.items():
            if s not in inner_sections:
                raise ConfigError(f"{where}{SECTION}.{sym}: section {s!r} is not read by the {inner_kind} kind "
                                  f"(it reads: {', '.join(inner_sections)})")
            if opts is not None and not isinstance(opts, dict):
                raise ConfigError(f"{where}{SECTION}.{sym}.{s}: expected a mapping of options")
        names = set(shared) | set(sections)
        out[sym] = {s: {**(shared.get(s) or {}), **(sections.get(s) or {})} for s in names}
    return out


def validate_elements(inner_cls, configs: dict[str, dict], source, seed: int) -> dict[str, dict]:
    """{symbol: validated options} of each element's merged options; ConfigError prefixed with
    ``per_element.SYMBOL``."""
    out = {}
    for sym, cfg in configs.items():
        try:
            out[sym] = inner_cls.validate_config(cfg, seed=seed)[0]
        except ConfigError as exc:
            raise ConfigError(f"{f'{source}: ' if source else ''}{SECTION}.{sym}: {exc}") from None
    return out


def focus_sagpr(options: dict, z: int, species: list[int]) -> dict:
    """A copy of SA-GPR ``options`` for the model of element ``z`` alone: one sparse point for every
    other element (their kernels with ``z``'s atoms are zero, so more would only cost time), ``z``'s
    own stated ``n_sparse`` kept (or the data-scaled default), and a per-element regularisation
    reduced to ``z``'s value. ConfigError for a ``n_sparse``/``regularization`` key naming an
    element absent from the training data, or a regularisation without ``z``."""
    from psilearn.models._kernel.sparse import check_elements_known

    opts = copy.deepcopy(options)
    model = opts["model"]
    sym = chemical_symbols[z]
    check_elements_known(model.n_sparse, species)
    own = model.n_sparse.get(sym) if isinstance(model.n_sparse, dict) else model.n_sparse
    model.n_sparse = {chemical_symbols[o]: 1 for o in species if o != z} | ({sym: own} if own is not None else {})
    if isinstance(model.regularization, dict):
        check_elements_known(model.regularization, species, "model.regularization")
        if sym not in model.regularization:
            raise ConfigError(f"model.regularization: no value for element {sym!r}")
        model.regularization = float(model.regularization[sym])
    return opts


def all_numbers(frames: list[Atoms]) -> np.ndarray:
    """Atomic numbers of every atom of ``frames`` in frame order, (n_atoms_total,)."""
    return np.concatenate([a.numbers for a in frames]) if frames else np.zeros(0, int)


def labelled_elements(data: Dataset) -> list[int]:
    """The atomic numbers that carry labels in ``data`` (all atoms, or those of its label mask)."""
    numbers = all_numbers(data.frames)
    if data.labelled is not None:
        numbers = numbers[data.labelled]
    return sorted({int(z) for z in numbers})


def element_dataset(data: Dataset, z: int) -> Dataset:
    """``data`` with the labels of element ``z``'s atoms only, as a label mask: every structure and
    atom is kept (they shape the environments), only ``z``'s labelled atoms are fitted."""
    numbers = all_numbers(data.frames)
    labelled = np.ones(len(numbers), bool) if data.labelled is None else data.labelled
    mask = labelled & (numbers == z)
    rows = numbers[labelled] == z  # the rows of data.values (labelled atoms only) that belong to z
    return Dataset(data.frames, data.target, data.values[rows], f"{data.name} ({chemical_symbols[z]} atoms)", mask,
                   data.label_mask)
