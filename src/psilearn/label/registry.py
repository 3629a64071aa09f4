"""Build a labeler from a method string such as ``'pbe0/def2-svp'``, ``'hf/sto-3g'`` or ``'gfn2'``."""

from __future__ import annotations

import dataclasses
from typing import Any

from psilearn.label.base import Labeler, parse_observables
from psilearn.label.xtb_methods import xtb_method


def make_labeler(method: str, observables: str | tuple[str, ...] = ("energy",), **options: Any) -> Labeler:
    """Labeler for ``method`` computing ``observables``.

    ``method`` is an xTB method (``'gfn2'``/``'gfn1'``, see :mod:`psilearn.label.xtb_methods`; tblite) or ``'XC/BASIS'`` (PySCF; ``XC`` is ``hf`` or any
    functional, ``BASIS`` any PySCF basis name; append ``'/df'`` for density fitting).
    ``options`` are labeler fields (e.g. ``grid_level``, ``polarizability_mode``); options that
    the chosen labeler does not have are ignored when ``None`` and rejected otherwise.
    """
    text = (method or "").strip().lower()
    obs = parse_observables(observables)
    opts = {k: v for k, v in options.items() if v is not None}
    xtb = xtb_method(text)
    if xtb is not None:
        from psilearn.label.xtb_labeler import XTBLabeler

        return XTBLabeler(method=xtb, observables=obs, **_accept(XTBLabeler, opts))
    parts = [p for p in text.split("/") if p]
    if len(parts) == 3 and parts[2] == "df":
        opts["density_fit"] = True
        parts = parts[:2]
    if len(parts) != 2:
        raise ValueError(
            f"bad method {method!r}: use XC/BASIS (e.g. pbe0/def2-svp, hf/sto-3g) or gfn2"
        )
    from psilearn.label.pyscf_labeler import PySCFLabeler

    _check_xc(parts[0])
    return PySCFLabeler(xc=parts[0], basis=parts[1], observables=obs, **_accept(PySCFLabeler, opts))


def _accept(cls: type, opts: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(opts) - names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no option(s) {', '.join(unknown)}")
    return opts


def _check_xc(xc: str) -> None:
    """Fail early (before a campaign starts) on functional names PySCF cannot parse."""
    if xc in {"hf", "rhf", "uhf", "scf"}:
        return
    from pyscf.dft import libxc

    try:
        libxc.parse_xc(xc)
    except Exception:
        raise ValueError(f"unknown exchange-correlation functional {xc!r}") from None
