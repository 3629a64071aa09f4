"""psilearn: machine-learn first-principles observables with symmetry-exact models.

Public API (scikit-learn-like)::

    from psilearn import Target, load_dataset, SAGPR, load
    target = Target("alpha", tensor="ij=ji", units="a.u.")
    ds = load_dataset("coords.xyz@:200", target)
    model = SAGPR(target).fit(ds)
    pred = model.predict(atoms_list)        # Prediction: Cartesian values and std
    model.save("alpha.model"); model = load("alpha.model")
    metrics = evaluate(model, "test.xyz")   # errors per channel, calibration
    model = tune_model("sagpr", target, ds, seconds=300)   # settings chosen by k-fold CV (Optuna)
"""

from importlib import import_module

from psilearn._version import __version__

# Lazy attributes keep `import psilearn` (and `psilearn --help`) from importing torch/featomic.
_LAZY = {
    "Target": "psilearn.targets",
    "Dataset": "psilearn.data",
    "load_dataset": "psilearn.data",
    "read_structures": "psilearn.data",
    "SAGPR": "psilearn.models",
    "load": "psilearn.models",
    "evaluate": "psilearn.evaluation",
    "learning_curve": "psilearn.evaluation",
    "tune_model": "psilearn.tune",
    "PsilearnCalculator": "psilearn.calculator",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'psilearn' has no attribute {name!r}")
