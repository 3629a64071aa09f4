"""Radial features of edges: a Bessel basis times a smooth polynomial cutoff envelope."""

from __future__ import annotations

import math

import torch


class BesselBasis(torch.nn.Module):
    """``b_n(r) = sqrt(2 / r_c) * sin(n pi r / r_c) / r`` for n = 1..n_basis.

    Input: distances r (E,) in Angstrom; output (E, n_basis). The frequencies are fixed (not
    trained), so a saved model is fully described by (r_c, n_basis)."""

    def __init__(self, cutoff: float, n_basis: int = 8):
        super().__init__()
        self.cutoff = float(cutoff)
        self.register_buffer("freq", torch.arange(1, n_basis + 1, dtype=torch.get_default_dtype()) * math.pi / self.cutoff)
        self.prefactor = math.sqrt(2.0 / self.cutoff)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.prefactor * torch.sin(r[:, None] * self.freq) / r[:, None]


class PolynomialCutoff(torch.nn.Module):
    """Smooth envelope f(x), x = r / r_c: 1 at 0, and f, f', f'' vanish at x = 1 (Klicpera et al.,
    DimeNet, with exponent p = 6 by default); 0 beyond the cutoff. Input (E,), output (E,)."""

    def __init__(self, cutoff: float, p: int = 6):
        super().__init__()
        self.cutoff = float(cutoff)
        self.p = float(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        p, x = self.p, r / self.cutoff
        f = 1.0 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
        return f * (x < 1.0)


class RadialEmbedding(torch.nn.Module):
    """Bessel basis times cutoff envelope: (E,) distances -> (E, n_basis) smooth edge features that
    vanish (with two derivatives) at the cutoff."""

    def __init__(self, cutoff: float, n_basis: int = 8, p: int = 6):
        super().__init__()
        self.basis = BesselBasis(cutoff, n_basis)
        self.envelope = PolynomialCutoff(cutoff, p)
        self.n_basis = n_basis

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.basis(r) * self.envelope(r)[:, None]
