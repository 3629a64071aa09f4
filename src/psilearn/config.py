"""Options: the YAML options file and the one typed validation of every options class.

Example ``options.yaml`` (which sections a model kind reads: its ``config_sections``)::

    soap:  {cutoff: 5.0, max_radial: 6, max_angular: 4, density_width: 0.3}
    model: {zeta: 2, n_sparse: 400, sparse_method: fps, regularization: ml, seed: 3}

Every options class is a dataclass deriving from :class:`Options`; ``from_dict`` goes through
:func:`from_mapping`, which reads the field type hints: unknown keys are refused (listing the known
ones), values are checked against their types (ints are accepted as numbers, bools are not, numeric
strings such as ``1e-3`` -- which YAML 1.1 reads as a string -- are accepted as numbers, ``None``
only where the hint allows it, lists and mappings checked element-wise where the hint says what
they hold); then the class's own :meth:`Options.check` tests ranges. Every error is a
:class:`~psilearn.errors.ConfigError` naming ``file: section.key``.

Seeds (:func:`resolve_seed`, the one rule): an explicit seed (``--seed``, ``build(seed=...)``) wins
over a ``seed:`` option in the file, which wins over 0.
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints

import yaml

from psilearn.errors import ConfigError

__all__ = ["SECTIONS", "ConfigError", "Options", "Checks", "from_mapping", "load_config", "check_sections",
           "resolve_seed", "positive_number"]

#: every section an options file may have (each model kind reads some of them)
SECTIONS = ("soap", "model", "nn", "nn_train", "density", "hamiltonian", "per_element", "nn_fidelity")

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_MISSING = object()
_NAMES = {float: ("a number", "numbers"), int: ("an integer", "integers"), bool: ("true or false", "booleans"),
          str: ("a string", "strings"), NoneType: ("null", "nulls")}


# ---- messages ---------------------------------------------------------------------------------------
def show(value) -> str:
    """A value as the user wrote it (YAML spelling for booleans and null), shortened."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    text = repr(float(value)) if isinstance(value, float) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(hint, plural: bool = False) -> str:
    """What a type hint accepts, in words: ``float | list[float]`` -> 'a number or a list of numbers'."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        parts = [describe(a, plural) for a in args if a is not NoneType]
        return " or ".join(parts + (["null"] if NoneType in args else []))
    if hint in (list, tuple) or origin in (list, tuple):
        return ("lists" if plural else "a list") + (f" of {describe(args[0], True)}" if args else "")
    if hint is dict or origin is dict:
        return ("mappings" if plural else "a mapping") + (f" to {describe(args[1], True)}" if args else "")
    if hint in _NAMES:
        return _NAMES[hint][plural]
    return getattr(hint, "__name__", str(hint))


def _alternatives(choices) -> str:
    words = [repr(c) for c in choices]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def unknown_message(what: str, unknown, known) -> str:
    """'unknown option 'cutof' (did you mean 'cutoff'?); known options: a, b, c'."""
    known = [str(k) for k in known]
    items = []
    for k in unknown:
        close = difflib.get_close_matches(str(k), known, n=1)
        items.append(repr(k) + (f" (did you mean {close[0]!r}?)" if close else ""))
    s = "s" if len(items) > 1 else ""
    return f"unknown {what}{s} {', '.join(items)}; known {what}s: {', '.join(known)}"


@dataclass(frozen=True)
class Where:
    """Where options come from: the file (None for Python callers) and the section path."""

    source: str | Path | None = None
    section: str | None = None

    def path(self, key=None) -> str:
        return ".".join(str(p) for p in (self.section, key) if p not in (None, ""))

    def error(self, key, message: str) -> ConfigError:
        parts = ([str(self.source)] if self.source else []) + ([self.path(key)] if self.path(key) else [])
        return ConfigError(": ".join([*parts, message]))


# ---- types ------------------------------------------------------------------------------------------
class _Mismatch(Exception):
    pass


def _convert(hint, value):
    """``value`` as the type ``hint`` says (ints -> float for numbers), or _Mismatch."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any or hint is object:
        return value
    if origin in (Union, UnionType):
        if value is None and NoneType in args:
            return None
        for a in args:
            try:
                return _convert(a, value)
            except _Mismatch:
                pass
        raise _Mismatch
    if hint is NoneType:
        if value is None:
            return None
        raise _Mismatch
    if isinstance(value, bool) and hint is not bool:  # bools are not numbers (nor strings, lists, ...)
        raise _Mismatch
    if hint is bool or hint is str:
        if isinstance(value, hint):
            return value
        raise _Mismatch
    if hint is int:
        if isinstance(value, numbers.Integral) or isinstance(value, numbers.Real) and float(value).is_integer():
            return int(value)
        raise _Mismatch
    if hint is float:
        number = isinstance(value, numbers.Real) or isinstance(value, str) and _NUMBER.fullmatch(value.strip())
        if number and math.isfinite(float(value)):
            return float(value)
        raise _Mismatch
    if hint in (list, tuple) or origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        out = [_convert(args[0], v) for v in value] if args else list(value)
        return tuple(out) if tuple in (hint, origin) else out
    if hint is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch
        return {k: _convert(args[1], v) for k, v in value.items()} if args else dict(value)
    raise TypeError(f"options of type {hint!r} are not supported by psilearn.config")


# ---- options classes --------------------------------------------------------------------------------
class Checks:
    """Range checks of one options object (see :meth:`Options.check`): ConfigError at file: section.key."""

    def __init__(self, options, where: Where):
        self.options, self.where = options, where

    def require(self, ok: bool, key: str, rule: str, value=_MISSING) -> None:
        """ConfigError '<file>: <section>.<key>: <rule>, got <value>' unless ``ok``."""
        if not ok:
            value = getattr(self.options, key) if value is _MISSING else value
            raise self.where.error(key, f"{rule}, got {show(value)}")

    def one_of(self, key: str, choices) -> None:
        self.require(getattr(self.options, key) in choices, key, f"must be {_alternatives(choices)}")

    def nested(self, cls, key: str):
        """The options object ``cls`` of the mapping under ``key`` (e.g. ``model.qeq``), validated."""
        return cls.from_dict(getattr(self.options, key), section=self.where.path(key), source=self.where.source)


class Options:
    """Base of the options dataclasses: typed ``from_dict``, ``check`` for ranges, ``to_dict``.

    Subclasses set ``section`` (their YAML section, used in messages when the caller names none)
    and may set ``unknown_hint`` (appended to unknown-option errors). Direct construction trusts
    its arguments; ``from_dict`` validates them.
    """

    section: ClassVar[str] = ""
    unknown_hint: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, d: Mapping | None = None, *, section: str | None = None, source: str | Path | None = None):
        """Validated options from ``d`` (None: defaults); ``section``/``source`` only name the place
        in error messages (default: the class's own section; no file)."""
        return from_mapping(cls, d, section=cls.section if section is None else section, source=source)

    def check(self, c: Checks) -> None:
        """Range checks of the typed values (override; may also normalise values)."""

    def to_dict(self) -> dict:
        return asdict(self)


def from_mapping(cls, d: Mapping | None, section: str | None = None, source: str | Path | None = None):
    """An instance of the dataclass ``cls`` from the mapping ``d``, checked against the field type
    hints and then by ``cls.check``; ConfigError naming ``source: section.key`` otherwise."""
    where = Where(source, section or None)
    if d is None:
        d = {}
    if not isinstance(d, Mapping):
        raise where.error(None, f"expected a mapping of options, got {show(d)}")
    names = [f.name for f in fields(cls) if f.init]
    unknown = [k for k in d if k not in names]
    if unknown:
        raise where.error(None, unknown_message("option", unknown, names) + getattr(cls, "unknown_hint", ""))
    hints = get_type_hints(cls)
    values = {}
    for key, value in d.items():
        try:
            values[key] = _convert(hints[key], value)
        except _Mismatch:
            raise where.error(key, f"expected {describe(hints[key])}, got {show(value)}") from None
    try:
        obj = cls(**values)
    except ConfigError:
        raise
    except ValueError as exc:  # checks in __post_init__
        raise where.error(None, str(exc)) from None
    if isinstance(obj, Options):
        obj.check(Checks(obj, where))
    return obj


def positive_number(x) -> bool:
    """True for a number (or numeric string) > 0; not for booleans."""
    if isinstance(x, bool):
        return False
    try:
        return float(x) > 0
    except (TypeError, ValueError):
        return False


# ---- the options file -------------------------------------------------------------------------------
def load_config(path: str | Path | None) -> dict:
    """Read an options file: {section: {option: value}} for the sections it has (None -> {}).

    ConfigError for invalid YAML, a top level that is not a mapping, unknown sections and sections
    that are not mappings; FileNotFoundError for a missing file. Options inside the sections are
    checked by the model kind (:meth:`psilearn.models.base.Model.validate_config`)."""
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file {path} not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (UTF-8) file; expected a YAML options file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({_yaml_reason(exc)})") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with sections ({', '.join(SECTIONS)}), got {show(data)}")
    unknown = [s for s in data if s not in SECTIONS]
    if unknown:
        raise ConfigError(f"{path}: {unknown_message('section', unknown, SECTIONS)}")
    for s, options in data.items():
        if options is not None and not isinstance(options, dict):
            raise Where(path, s).error(None, f"expected a mapping of options, got {show(options)}")
    return {s: dict(options or {}) for s, options in data.items()}


def _yaml_reason(exc: yaml.YAMLError) -> str:
    """'line 2, column 1: expected ',' or ']', but got '<stream end>'' from a YAML error (one line)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + " ".join(str(problem).split())


def check_sections(config: Mapping, allowed, kind: str, source: str | Path | None = None) -> None:
    """ConfigError for a section of ``config`` that model kind ``kind`` does not read."""
    where = f"{source}: " if source else ""
    for s in config:
        if s not in SECTIONS:
            raise ConfigError(f"{where}{unknown_message('section', [s], allowed)} (model kind {kind!r})")
        if s not in allowed:
            hint = "; a separate model per element: psilearn fit --per-element" if s == "per_element" else ""
            raise ConfigError(f"{where}section {s!r} is not used by model kind {kind!r} (it reads: {', '.join(allowed)}){hint}")


def resolve_seed(explicit, configured) -> int:
    """The run's seed: ``explicit`` (``--seed``, ``build(seed=...)``) when given, else ``configured``
    (a ``seed:`` option in the options file) when given, else 0. ConfigError for a negative or
    non-integer explicit seed."""
    if explicit is not None:
        if isinstance(explicit, bool) or not isinstance(explicit, numbers.Integral) or explicit < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {show(explicit)}")
        return int(explicit)
    return 0 if configured is None else int(configured)
