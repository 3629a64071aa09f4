"""Long-range (non-local) models: charge equilibration with learned electronegativities.

* :mod:`.state`      total charge / multiplicity from ``atoms.info`` (validated), state kernel
* :mod:`.params`     element widths and hardness (units: Angstrom, eV)
* :mod:`.coulomb`    Gaussian-charge Coulomb matrix of molecules
* :mod:`.ewald`      the same for 3D-periodic cells (Ewald summation)
* :mod:`.qeq`        the constrained linear solve (sum q = Q exactly), energies
* :mod:`.dipole`     dipole origin conventions, units, periodic convention
* :mod:`.linear_maps` charges and dipoles as linear maps of chi
* :mod:`.chi_kernel` the SOAP kernel of chi (optionally times a state kernel)
* :mod:`.model`      :class:`QEqModel`: fit to charges, dipoles or both; predict with uncertainty
* :mod:`.persist`, :mod:`.kind`  model files and the registry entry (kind ``qeq``)
* :mod:`.checks`     which Targets QEq learns; reference charges (shared by both backends)
* NN backend (kind ``qeq-nn``, imports torch): :mod:`.nn_chi` (chi network, learned hardness),
  :mod:`.nn_loss` (QEq in torch, training loss), :mod:`.nn_llpr` (LLPR through QEq),
  :mod:`.nn_model` (:class:`QEqNNModel`), :mod:`.nn_kind` (registry entry)
"""

from psilearn.models.longrange.params import QEqParams
from psilearn.models.longrange.qeq import QEqResult, QEqSystem, equilibrate
from psilearn.models.longrange.state import charge_and_multiplicity, structure_states

__all__ = ["QEqParams", "QEqSystem", "QEqResult", "equilibrate", "charge_and_multiplicity", "structure_states",
           "QEqModel", "QEqConfig"]


def __getattr__(name):  # the model imports featomic lazily
    if name in ("QEqModel", "QEqConfig"):
        from psilearn.models.longrange import model

        return getattr(model, name)
    raise AttributeError(name)
