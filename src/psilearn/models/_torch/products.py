"""Equivariant products of per-atom features for pair-level outputs (the pair network of per-pair
targets, the Hamiltonian's edge heads): built from e3nn tensor products, restricted to the output
irreps a head needs, in e3nn's sorted order."""

from __future__ import annotations

import torch
from e3nn import o3

from psilearn.models._torch.network import _sorted_with_instructions


def channelwise_product(irreps: o3.Irreps, allowed: set) -> o3.TensorProduct:
    """a (x) b channel by channel ('uuu'), to the irreps in ``allowed`` (l, p), with learned path weights."""
    instr, out = [], []
    for i1, (mul, ir1) in enumerate(irreps):
        for i2, (_, ir2) in enumerate(irreps):
            for ir in ir1 * ir2:
                if (ir.l, ir.p) in allowed:
                    instr.append((i1, i2, len(out), "uuu", True))
                    out.append((mul, ir))
    out, instr = _sorted_with_instructions(out, instr)
    return o3.TensorProduct(irreps, irreps, out, instr)


def direction_product(irreps: o3.Irreps, sh_irreps: o3.Irreps, allowed: set) -> o3.TensorProduct:
    """x (x) Y(r) per channel ('uvu') to the irreps in ``allowed``, weights given per pair (from a radial MLP)."""
    instr, mid = [], []
    for i, (mul, ir_in) in enumerate(irreps):
        for j, (_, ir_sh) in enumerate(sh_irreps):
            for ir_out in ir_in * ir_sh:
                if (ir_out.l, ir_out.p) in allowed:
                    instr.append((i, j, len(mid), "uvu", True))
                    mid.append((mul, ir_out))
    mid, instr = _sorted_with_instructions(mid, instr)
    return o3.TensorProduct(irreps, sh_irreps, mid, instr, shared_weights=False, internal_weights=False)


def merge_irreps(x: torch.Tensor, ix: o3.Irreps, y: torch.Tensor, iy: o3.Irreps, target: o3.Irreps) -> torch.Tensor:
    """Concatenate two irreps tensors and reorder their parts into ``target``'s (sorted, simplified) order."""
    parts: dict = {}
    for irreps, v in ((ix, x), (iy, y)):
        for (mul, ir), sl in zip(irreps, irreps.slices()):
            parts.setdefault(ir, []).append(v[:, sl].reshape(len(v), mul, ir.dim))
    return torch.cat([torch.cat(parts[ir], dim=1).reshape(len(x), -1) for _, ir in target], dim=1)
