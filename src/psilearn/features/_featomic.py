"""Importing featomic without torch.

featomic imports metatensor, which imports torch when it is installed (~1.3 s) only so that
TensorBlocks may also hold torch tensors. psilearn hands featomic numpy arrays only, so a kernel
model (SA-GPR, QEq, spectra) needs no torch: unless torch is already loaded, featomic is imported
with torch masked (metatensor then supports numpy arrays, which is all that is used here). torch
stays importable afterwards, e.g. for a network model in the same process.
"""

from __future__ import annotations

import sys


def import_featomic():
    """The featomic module, imported without loading torch when torch is not loaded yet."""
    if "featomic" in sys.modules or "torch" in sys.modules:
        import featomic

        return featomic
    sys.modules["torch"] = None  # makes `import torch` raise ImportError inside metatensor
    try:
        import featomic
    finally:
        del sys.modules["torch"]
    return featomic
