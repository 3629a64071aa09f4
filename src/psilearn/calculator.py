"""An ASE calculator exposing the predictions of psilearn models, in ASE's units.

>>> from psilearn.calculator import PsilearnCalculator
>>> atoms.calc = PsilearnCalculator({"dipole": "mu.model", "polarizability": "alpha.model"})
>>> atoms.get_dipole_moment()                 # e*Angstrom, from the model bound to 'dipole'
>>> atoms.calc.get_property("polarizability", atoms)   # 3x3 array, Angstrom^3
>>> atoms.calc.results["polarizability_std"]          # predictive standard deviation, same units
>>> atoms.calc.conversions["dipole"]                  # {'from': 'e*Bohr', 'to': 'e*Angstrom', 'factor': 0.529...}

Each model is bound to an ASE property name. Structure targets give arrays shaped as their
Cartesian tensor ((3,) for a vector, (3, 3) for rank 2, a float for a scalar); per-atom targets give
(n_atoms, ...) arrays; per-pair targets (P, ...) arrays, with the pairs (P, 2) in ``results["<name>_pairs"]``.

Units: values and standard deviations are converted from the units recorded in the model (its
Target's ``units``, ``psilearn fit --units``) to ASE's, with psilearn's one unit table
(:mod:`psilearn.data.units`, ``ase.units`` constants):

==========================================  ============  ==========================================
ASE property                                returned in   from (e.g.)
==========================================  ============  ==========================================
``dipole``                                  e*Angstrom    e*Bohr / a.u. (x Bohr), Debye, e*A
``charges``, ``born_effective_charges``     e             e, a.u. (x 1)
``polarizability``                          Angstrom^3    a.u. / Bohr^3 (x Bohr**3: the polarizability
                                                          volume alpha_au * a0^3), A^3
``energy``, ``free_energy``, ``energies``   eV            Hartree / a.u. (x Hartree), kcal/mol, eV
``shielding``                               ppm           ppm (never converted)
==========================================  ============  ==========================================

A model that records no units (or units the table does not know) is refused, with a message,
unless its units are stated (``units={"dipole": "e*Bohr"}``; a statement that contradicts the
units the model records is an error) or the conversion is switched off for it
(``convert={"e_gap": False}``, or ``convert=False`` for every property: values in the model's own
units). Properties that are not in the table above (any other name) need ``convert={name: False}``.
Frames follow psilearn's periodicity rule (:mod:`psilearn.data.periodicity`).
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from psilearn.data.periodicity import periodicity_applied
from psilearn.data.prediction_io import cartesian_per_structure
from psilearn.data.units import ase_unit, known_units, to_ase_factor

#: ASE property name -> quantity of the unit table (psilearn.data.units)
PROPERTY_QUANTITIES = {
    "dipole": "dipole",
    "charges": "charge",
    "born_effective_charges": "charge",
    "polarizability": "polarizability",
    "energy": "energy",
    "free_energy": "energy",
    "energies": "energy",
    "shielding": "shielding",
}

_EXAMPLE_UNITS = {"dipole": "e*Bohr", "charge": "e", "polarizability": "a.u.", "energy": "Hartree", "shielding": "ppm"}


def unit_conversion(name: str, model_units: str, given: str | None, convert: bool) -> dict:
    """How the calculator converts property ``name``: ``{'from', 'to', 'factor'}``. ``model_units``
    are those the model records, ``given`` those the user states (``units=``), ``convert=False``
    keeps the model's numbers (factor 1). ValueError, naming the way out, when it cannot convert."""
    recorded = (model_units or "").strip()
    if not convert:
        own = given or recorded or "the model's units (not recorded)"
        return {"from": own, "to": own, "factor": 1.0}
    quantity = PROPERTY_QUANTITIES.get(name)
    if quantity is None:
        raise ValueError(f"{name!r} is not an ASE property whose units psilearn converts ({', '.join(PROPERTY_QUANTITIES)}); "
                         f"pass convert={{{name!r}: False}} to get the model's values in its own units ({recorded or 'not recorded'})")
    way_out = (f"pass units={{{name!r}: {_EXAMPLE_UNITS[quantity]!r}}} (known: {', '.join(known_units(quantity))}), "
               f"or convert={{{name!r}: False}} to get the model's numbers unconverted")
    if given and recorded:
        try:
            agree = to_ase_factor(quantity, given) == to_ase_factor(quantity, recorded)
        except ValueError:
            agree = None  # free-text recorded units the table does not know: the statement decides
        if agree is False:
            raise ValueError(f"{name!r}: units={given!r} contradict the units the model records ({recorded!r})")
    units = given or recorded
    if not units:
        raise ValueError(f"{name!r}: the model records no units (fitted without --units), so its values cannot be "
                         f"converted to ASE's {ase_unit(quantity)}; {way_out}")
    try:
        factor = to_ase_factor(quantity, units)
    except ValueError:
        raise ValueError(f"{name!r}: psilearn's unit table does not know the model's {quantity} units {units!r}; {way_out}") from None
    return {"from": units, "to": ase_unit(quantity), "factor": factor}


class PsilearnCalculator(Calculator):
    """ASE calculator backed by one or more fitted psilearn models (paths or model objects),
    returning ASE units (see the module docstring for the table)."""

    def __init__(self, models: dict, with_std: bool = True, units: dict | None = None, convert: bool | dict = True, **kwargs):
        """``models`` maps ASE property names to model paths or objects; ``with_std=False`` skips
        the uncertainties (faster, e.g. inside MD), and then no ``<name>_std`` results are set.
        ``units`` ({name: units}) states the units of models that record none; ``convert`` (True,
        False, or {name: bool}) switches the conversion to ASE units off for some or all properties.
        ValueError when a property cannot be converted (no or unknown units, see the module docstring)."""
        from psilearn.models import load

        super().__init__(**kwargs)
        self.with_std = with_std
        self.models = {name: (load(m) if isinstance(m, (str, bytes)) or hasattr(m, "__fspath__") else m) for name, m in models.items()}
        self.implemented_properties = list(self.models)
        units = dict(units or {})
        unknown = sorted(set(units) - set(self.models)) + sorted(set(convert if isinstance(convert, dict) else {}) - set(self.models))
        if unknown:
            raise ValueError(f"units/convert name properties without a model: {', '.join(unknown)}; bound: {', '.join(self.models)}")
        self.conversions = {
            name: unit_conversion(name, model.target.units, units.get(name),
                                  convert.get(name, True) if isinstance(convert, dict) else bool(convert))
            for name, model in self.models.items()
        }

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        frame = periodicity_applied(self.atoms)
        for name in properties or self.implemented_properties:
            if name not in self.models:
                continue
            model = self.models[name]
            factor = self.conversions[name]["factor"]
            pred = model.predict([frame], return_std=self.with_std)
            ((val, std),) = cartesian_per_structure([frame], pred, model.target)
            self.results[name] = _scaled(val, factor)
            if model.target.per == "pair":  # (P, ...) values of these atom pairs (P, 2)
                self.results[f"{name}_pairs"] = np.asarray(pred.pairs[0])
            if self.with_std:
                self.results[f"{name}_std"] = _scaled(std, factor)

    def get_property(self, name, atoms=None, allow_calculation=True):
        if name not in self.implemented_properties:
            from ase.calculators.calculator import PropertyNotImplementedError

            raise PropertyNotImplementedError(f"no model bound to {name!r}; available: {self.implemented_properties}")
        return super().get_property(name, atoms, allow_calculation)

    def get_dipole_moment(self, atoms=None):
        return np.asarray(self.get_property("dipole", atoms))


def _scaled(value, factor: float):
    return float(value) * factor if isinstance(value, float) else np.asarray(value) * factor
