"""GIAO NMR shielding tensors with pyscf-properties, made to run on PySCF 2.14.

Two incompatibilities of pyscf-properties 0.1 with PySCF 2.14 are worked around here without
editing the installed package:

1. PySCF's CPHF solver now calls the induced-potential function with a variable number of
   trial vectors, while ``pyscf.prop.nmr.rhf.gen_vind`` assumes exactly three
   (``ValueError: cannot reshape``). :func:`_gen_vind` accepts any number.
2. ``pyscf.prop.nmr.rks.get_vxc_giao`` passes a grid block size that is not a multiple of
   ``numint.BLKSIZE`` for small grids (``AssertionError`` in ``block_loop``).
   :class:`_BlockAlignedNumInt` rounds it up.

Closed-shell (RHF/RKS) only. Output: ppm, shape (n_atoms, 3, 3), ``sigma[k, a, b]`` as returned by
PySCF (dia + para); under a rotation R of the molecule sigma_k -> R sigma_k R^T.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from functools import reduce

import numpy as np

from psilearn.label.base import LabelError


def _gen_vind(mf, mo_coeff, mo_occ):
    """Induced first-order Fock response to imaginary (magnetic) orbital rotations, any batch."""
    from pyscf import lib

    vresp = mf.gen_response(singlet=True, hermi=2)
    orbo = mo_coeff[:, mo_occ > 0]
    nocc = orbo.shape[1]
    nmo = mo_coeff.shape[1]

    def vind(mo1):
        mo1 = np.asarray(mo1)
        batch = mo1.reshape(-1, nmo, nocc)
        dm1 = np.asarray([reduce(np.dot, (mo_coeff, x * 2, orbo.T.conj())) for x in batch])
        dm1 = dm1 - dm1.conj().transpose(0, 2, 1)
        v1mo = lib.einsum("xpq,pi,qj->xij", vresp(dm1), mo_coeff.conj(), orbo)
        return v1mo.reshape(mo1.shape)

    return vind


class _BlockAlignedNumInt:
    """Proxy for a NumInt whose ``block_loop`` always gets a BLKSIZE-aligned block size."""

    def __init__(self, ni) -> None:
        self._ni = ni

    def __getattr__(self, name):
        return getattr(self._ni, name)

    def block_loop(self, mol, grids, nao=None, deriv=0, max_memory=2000, non0tab=None,
                   blksize=None, buf=None):
        from pyscf.dft import numint

        if blksize is not None and blksize % numint.BLKSIZE:
            blksize = (blksize // numint.BLKSIZE + 1) * numint.BLKSIZE
            buf = None  # the caller's buffer was sized for the unaligned block
        return self._ni.block_loop(mol, grids, nao, deriv, max_memory, non0tab, blksize, buf)


@contextmanager
def patched_response(module, gen_vind, mf):
    """pyscf-properties' ``module.gen_vind`` replaced by psilearn's ``gen_vind`` and ``mf``'s numerical
    integrator by a block-aligned one (the two compatibility fixes), both restored on exit."""
    saved_vind = module.gen_vind
    saved_ni = getattr(mf, "_numint", None)
    module.gen_vind = gen_vind
    if saved_ni is not None:
        mf._numint = _BlockAlignedNumInt(saved_ni)
    try:
        yield
    finally:
        module.gen_vind = saved_vind
        if saved_ni is not None:
            mf._numint = saved_ni


def _patched(mf):
    import pyscf.prop.nmr.rhf as rhf_nmr

    return patched_response(rhf_nmr, _gen_vind, mf)


def shielding_tensors(mf) -> np.ndarray:
    """GIAO shielding tensors (ppm), shape (n_atoms, 3, 3), for a converged closed-shell SCF."""
    from pyscf import dft, scf

    if isinstance(mf, scf.uhf.UHF) or mf.mol.spin != 0:
        raise LabelError("NMR shielding is implemented for closed-shell molecules only", "shielding")
    if getattr(mf, "with_df", None) is not None:
        raise LabelError("NMR shielding does not support density fitting; drop /df", "shielding")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(mf, dft.rks.KohnShamDFT):
            from pyscf.prop.nmr.rks import NMR
        else:
            from pyscf.prop.nmr.rhf import NMR
        obj = NMR(mf)
        obj.verbose = 0
        obj.max_cycle_cphf = 50
        with _patched(mf):
            sigma = obj.kernel()
    sigma = np.asarray(sigma, dtype=float)
    if sigma.shape != (mf.mol.natm, 3, 3) or not np.all(np.isfinite(sigma)):
        raise LabelError(f"NMR shielding returned an invalid result of shape {sigma.shape}", "shielding")
    return sigma
