"""Model kinds known to `psilearn fit --model NAME` and to :func:`psilearn.models.load`.

Each kind is a module exposing ``build(target, config: dict, seed: int, progress: bool)`` returning
an unfitted estimator with fit/predict/save, and ``load_from(meta: dict, arrays: dict)`` rebuilding a
fitted one from a verified model file (see :mod:`psilearn.models.io`). Kinds are imported lazily so
that the kernel models never import torch.
"""

from __future__ import annotations

from importlib import import_module

# name -> (module implementing build/load_from, one-line description)
MODEL_KINDS: dict[str, tuple[str, str]] = {
    "sagpr": ("psilearn.models.sagpr_kind", "sparse symmetry-adapted Gaussian process regression on lambda-SOAP (data-efficient)"),
    "nn": ("psilearn.models.nn.kind", "E(3)-equivariant message-passing network (e3nn) with LLPR or ensemble uncertainty (scales to large data)"),
    "qeq": ("psilearn.models.longrange.kind", "kernel charge equilibration: learned electronegativities + QEq, charges/dipoles with exact total charge (--long-range qeq)"),
    "qeq-nn": ("psilearn.models.longrange.nn_kind", "charge equilibration with NN electronegativities (e3nn network trained through QEq; --long-range qeq --model nn)"),
    "spectrum": ("psilearn.models.spectra.kind", "kernel regression of spectra (DOS, XANES) on invariant SOAP, L2/shift-aware/aligned loss, optional PCA (psilearn fit-spectrum)"),
}


def model_kind(name: str):
    """The module implementing model kind ``name``; ValueError listing the kinds otherwise."""
    if name not in MODEL_KINDS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(MODEL_KINDS))}")
    return import_module(MODEL_KINDS[name][0])


def describe_kinds() -> str:
    return "; ".join(f"{k}: {d}" for k, (_, d) in sorted(MODEL_KINDS.items()))
