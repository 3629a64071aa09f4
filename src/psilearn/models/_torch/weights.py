"""Network weights in model files, and building networks in a chosen dtype (shared by every torch kind).

Weights are stored as a safetensors blob inside the model file's npz (a uint8 array), so loading
never unpickles: safetensors holds only tensors and a JSON header.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def weights_blob(net: torch.nn.Module) -> np.ndarray:
    """The network's state dict as a safetensors blob, shape (n_bytes,) uint8."""
    from safetensors.torch import save as st_save

    sd = {n: v.detach().cpu().contiguous() for n, v in net.state_dict().items()}
    return np.frombuffer(st_save(sd), dtype=np.uint8).copy()


def load_weights(net: torch.nn.Module, blob: np.ndarray) -> torch.nn.Module:
    """Load a :func:`weights_blob` into ``net`` (every tensor must match: strict) and set eval mode."""
    from safetensors.torch import load as st_load

    net.load_state_dict(st_load(np.asarray(blob, dtype=np.uint8).tobytes()), strict=True)
    net.eval()
    return net


def build_in_dtype(factory: Callable[[], torch.nn.Module], dtype: torch.dtype, device) -> torch.nn.Module:
    """``factory()`` run with torch's default dtype set to ``dtype``, moved to ``device``.

    e3nn computes its constants (Clebsch-Gordan coefficients, normalisations) in the default
    dtype, so that is set for the build: float32 constants cast to float64 would limit
    equivariance to ~1e-8."""
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        net = factory()
    finally:
        torch.set_default_dtype(prev)
    return net.to(device=device)
