"""The one table of xTB methods (tblite): names accepted by ``psilearn label --method``,
``psilearn md --calculator``, ``psilearn sample --mode md`` and the Python API."""

from __future__ import annotations

#: canonical name -> tblite's method name
XTB_METHODS: dict[str, str] = {"gfn2": "GFN2-xTB", "gfn1": "GFN1-xTB"}
#: other spellings -> canonical name (tblite's own names, case-insensitively, and plain 'xtb')
_ALIASES: dict[str, str] = {"gfn2-xtb": "gfn2", "gfn1-xtb": "gfn1", "xtb": "gfn2"}
DEFAULT_XTB = "gfn2"


def xtb_method(name: str) -> str | None:
    """The canonical xTB method name ('gfn2', 'gfn1') for ``name`` (any case, 'GFN2-xTB',
    'gfn1-xtb', 'xtb'), or None when ``name`` is not an xTB method."""
    key = str(name or "").strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in XTB_METHODS else None


def is_xtb_method(name: str) -> bool:
    return xtb_method(name) is not None


def check_xtb_method(name: str) -> str:
    """Canonical name of an xTB method; ValueError listing the choices otherwise."""
    key = xtb_method(name)
    if key is None:
        raise ValueError(f"unknown xTB method {name!r}; choose {' or '.join(XTB_METHODS)} (tblite)")
    return key


def tblite_name(name: str) -> str:
    """tblite's name ('GFN2-xTB', 'GFN1-xTB') of an xTB method; ValueError for others."""
    return XTB_METHODS[check_xtb_method(name)]
