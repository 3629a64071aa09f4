"""Model-free physics: charge equilibration (QEq) with Gaussian charges, Coulomb and Ewald sums,
dipole conventions. Usable without any model (e.g. QEq with fixed electronegativities)::

    from psilearn.physics import QEqParams, QEqSystem, equilibrate

* :mod:`.params`   element widths and hardness (Angstrom, eV)
* :mod:`.coulomb`  Gaussian-charge Coulomb matrix of molecules
* :mod:`.ewald`    the same for 3D-periodic cells (Ewald summation)
* :mod:`.qeq`      the constrained linear solve (sum q = Q exactly), energies
* :mod:`.dipole`   dipole origin conventions, units, periodic convention
"""

from psilearn.physics.params import QEqParams
from psilearn.physics.qeq import QEqResult, QEqSystem, equilibrate

__all__ = ["QEqParams", "QEqSystem", "QEqResult", "equilibrate"]
