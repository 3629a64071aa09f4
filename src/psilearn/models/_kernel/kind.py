"""What the lambda-SOAP kernel kinds (sagpr, qeq, spectrum) share as model kinds."""

from __future__ import annotations


class SoapKernelKind:
    """Mixin for kinds built from a ``soap`` (descriptor) and a ``model`` (estimator) section whose
    dataclass takes ``(target, soap, config, progress=...)``."""

    @classmethod
    def from_options(cls, target, options: dict, seed: int, progress: bool):
        """From the validated ``soap`` and ``model`` options (the seed is in ``model``)."""
        return cls(target, options["soap"], options["model"], progress=progress)
