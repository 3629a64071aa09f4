"""An ASE calculator exposing the predictions of psilearn models.

>>> from psilearn.calculator import PsilearnCalculator
>>> atoms.calc = PsilearnCalculator({"dipole": "mu.model", "polarizability": "alpha.model"})
>>> atoms.get_dipole_moment()                 # from the model bound to 'dipole'
>>> atoms.calc.get_property("polarizability", atoms)   # 3x3 array
>>> atoms.calc.results["polarizability_std"]          # predictive standard deviation

Each model is bound to an ASE property name. Structure targets give arrays shaped as their
Cartesian tensor ((3,) for a vector, (3, 3) for rank 2, a float for a scalar); per-atom targets give
(n_atoms, ...) arrays. Values are in the units the model was trained on.
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from psilearn.data.prediction_io import cartesian_per_structure


class PsilearnCalculator(Calculator):
    """ASE calculator backed by one or more fitted psilearn models (paths or model objects)."""

    def __init__(self, models: dict, with_std: bool = True, **kwargs):
        """``models`` maps ASE property names to model paths or objects; ``with_std=False`` skips
        the uncertainties (faster, e.g. inside MD), and then no ``<name>_std`` results are set."""
        from psilearn.models import load

        super().__init__(**kwargs)
        self.with_std = with_std
        self.models = {name: (load(m) if isinstance(m, (str, bytes)) or hasattr(m, "__fspath__") else m) for name, m in models.items()}
        self.implemented_properties = list(self.models)

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        for name in properties or self.implemented_properties:
            if name not in self.models:
                continue
            model = self.models[name]
            pred = model.predict([self.atoms], return_std=self.with_std)
            ((val, std),) = cartesian_per_structure([self.atoms], pred, model.target)
            self.results[name] = val
            if self.with_std:
                self.results[f"{name}_std"] = std

    def get_property(self, name, atoms=None, allow_calculation=True):
        if name not in self.implemented_properties:
            from ase.calculators.calculator import PropertyNotImplementedError

            raise PropertyNotImplementedError(f"no model bound to {name!r}; available: {self.implemented_properties}")
        return super().get_property(name, atoms, allow_calculation)

    def get_dipole_moment(self, atoms=None):
        return np.asarray(self.get_property("dipole", atoms))
