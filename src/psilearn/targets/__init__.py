"""Observables declared by their symmetry, and their exact irreducible decomposition."""

from psilearn.targets.target import Target
from psilearn.targets.cartesian import IrrepBlock, cartesian_basis

__all__ = ["Target", "IrrepBlock", "cartesian_basis"]
