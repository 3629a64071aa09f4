"""Observables declared by their symmetry, and their exact irreducible decomposition."""

from psilearn.targets.cartesian import IrrepBlock, cartesian_basis
from psilearn.targets.density import DensityBlock, DensityTarget
from psilearn.targets.hamiltonian import CoupledBlock, HamiltonianTarget
from psilearn.targets.target import Target

__all__ = ["Target", "IrrepBlock", "cartesian_basis", "DensityTarget", "DensityBlock", "HamiltonianTarget", "CoupledBlock"]
