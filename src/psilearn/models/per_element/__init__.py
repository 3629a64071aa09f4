"""A separate model per centre element of a per-atom target (``psilearn fit --per-element``)."""

from psilearn.models.per_element.model import PerElementModel, check_per_atom, per_element_kind

__all__ = ["PerElementModel", "check_per_atom", "per_element_kind"]
