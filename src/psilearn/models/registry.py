"""The one registry of model kinds: name -> model class (see :mod:`psilearn.models.base`).

``psilearn fit --model NAME`` builds through it and :func:`psilearn.models.load` dispatches on the
kind recorded in a model file. Classes are imported lazily so that kernel models never import torch.
Adding a kind is one folder under ``psilearn/models/`` plus one line here.
"""

from __future__ import annotations

from importlib import import_module

# name -> ("module:Class", one-line description)
MODEL_KINDS: dict[str, tuple[str, str]] = {
    "baseline": ("psilearn.models.baseline.model:BaselineModel", "per-element composition fit of the invariant part, all else zero (the reference to beat)"),
    "sagpr": ("psilearn.models.sagpr.model:SAGPR", "sparse symmetry-adapted Gaussian process regression on lambda-SOAP (data-efficient)"),
    "nn": ("psilearn.models.nn.model:NNModel", "E(3)-equivariant message-passing network (e3nn) with LLPR or ensemble uncertainty (scales to large data)"),
    "qeq": ("psilearn.models.qeq.model:QEqModel", "kernel charge equilibration: learned electronegativities + QEq, charges/dipoles with "
        "exact total charge (--long-range qeq)"),
    "qeq-nn": ("psilearn.models.qeq.nn_model:QEqNNModel", "charge equilibration with NN electronegativities (e3nn network trained through "
        "QEq; --long-range qeq --model nn)"),
    "spectrum": ("psilearn.models.spectrum.model:SpectrumModel", "kernel regression of spectra (DOS, XANES) on invariant SOAP, "
        "L2/shift-aware/aligned loss, optional PCA (psilearn fit-spectrum)"),
    "density": ("psilearn.models.density.model:DensityModel", "SALTED-style sparse GPR of electron-density coefficients "
        "(loss in the aux-basis metric, exact electron count; psilearn fit --density)"),
    "hamiltonian": ("psilearn.models.hamiltonian.model:HamiltonianModel", "equivariant node/edge network (e3nn) for AO "
        "Fock/Kohn-Sham matrices: orbital energies, gaps, density matrices (psilearn fit --hamiltonian)"),
    "hamiltonian-sagpr": ("psilearn.models.hamiltonian_kernel.model:HamiltonianKernelModel", "sparse SA-GPR of AO "
        "Fock/Kohn-Sham matrices on atom and atom-pair lambda-SOAP (small data; psilearn fit --hamiltonian --model sagpr)"),
    "delta": ("psilearn.models.fidelity.delta:DeltaModel", "delta-learning: a baseline label in the file plus a learned "
        "correction by an inner kind (psilearn fit --baseline KEY --model INNER)"),
    "per-element": ("psilearn.models.per_element.model:PerElementModel", "per-atom targets: a separate model (own SOAP, "
        "kernel and sparse settings) per centre element, ShiftML-style (psilearn fit --per-element [--model nn])"),
    "multifidelity": ("psilearn.models.fidelity.multifidelity:MultiFidelityModel", "several levels of theory pooled by recursive "
        "co-kriging: each level = rho x the level below + a correction by an inner kind (psilearn fit --fidelity-key KEY)"),
    "multifidelity-icm": ("psilearn.models.fidelity.icm:ICMModel", "several levels of theory in one SA-GPR with a learned "
        "coregionalisation matrix B per irreducible block, k((x,f),(x',f')) = B_ff' k(x,x') (psilearn fit --fidelity-key KEY "
        "--coregionalisation icm)"),
    "nn-multifidelity": ("psilearn.models.nn.multifidelity:NNHeadsModel", "several levels of theory in one equivariant network: "
        "shared body, level embedding, one readout per level (psilearn fit --fidelity-key KEY --model nn-multifidelity)"),
}

#: the kinds that hold several levels of theory (``predict --fidelity``; none can be a level of another)
MULTI_FIDELITY_KINDS = ("multifidelity", "multifidelity-icm", "nn-multifidelity")


def model_class(name):
    """The model class of kind ``name``; ValueError listing the kinds otherwise. A model class
    (e.g. a delta kind configured by :func:`psilearn.models.fidelity.delta_kind`) is returned as is."""
    if isinstance(name, type):
        return name
    if name not in MODEL_KINDS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(MODEL_KINDS))}")
    module, cls = MODEL_KINDS[name][0].split(":")
    return getattr(import_module(module), cls)


def describe_kinds() -> str:
    return "; ".join(f"{k}: {d}" for k, (_, d) in sorted(MODEL_KINDS.items()))
