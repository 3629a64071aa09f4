"""Invariant SOAP environments for spectrum targets: all atoms, or only the absorbing atom.

Spectra are invariant (0e) functions, so only the lambda = 0 channel of
:class:`psilearn.features.LambdaSoap` is used. For an absorber-centred target (e.g. Fe K-edge
XANES) only the absorber's environments enter the kernel; with ``crop`` each structure is first cut
down to the atoms within the SOAP cutoff of an absorber, which leaves the absorber's features
unchanged and avoids describing atoms that do not matter.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from psilearn.features import AtomFeatures, LambdaSoap, SoapConfig

CHANNEL = (0, 1)


def crop_around(atoms: Atoms, z: int, cutoff: float) -> Atoms:
    """The atoms within ``cutoff`` (Angstrom, minimum image for periodic cells) of any atom of
    element ``z``, as a non-periodic molecule (periodic structures are returned unchanged)."""
    if atoms.pbc.any():
        return atoms
    centres = atoms.positions[atoms.numbers == z]
    d = np.linalg.norm(atoms.positions[:, None, :] - centres[None, :, :], axis=-1).min(axis=1)
    return atoms[d <= cutoff + 1e-9]


def restrict_to_element(feats: AtomFeatures, z: int) -> AtomFeatures:
    """Only the environments centred on element ``z`` (structure indices kept)."""
    idx = feats.index.get(z, np.zeros(0, int))
    out = AtomFeatures(feats.numbers[idx], feats.structure[idx], feats.n_structures, {z: np.arange(len(idx))})
    out.blocks = {ch: {z: per_z[z]} for ch, per_z in feats.blocks.items()}
    return out


def invariant_features(frames: list[Atoms], soap: SoapConfig, species: list[int], absorber: str = "",
                       crop: bool = True, progress: bool = False) -> AtomFeatures:
    """Normalised invariant lambda-SOAP (0, 1) features of ``frames`` with neighbour elements
    ``species``; restricted to the absorber's environments when ``absorber`` is an element symbol."""
    calc = LambdaSoap(soap, species)
    if not absorber:
        return calc.compute(frames, [CHANNEL], progress=progress)
    z = atomic_numbers[absorber]
    if crop:
        frames = [crop_around(a, z, max(soap.cutoffs)) for a in frames]
    return restrict_to_element(calc.compute(frames, [CHANNEL], progress=progress), z)


def subset_features(feats: AtomFeatures, idx) -> AtomFeatures:
    """The environments of structures ``idx`` (in that order), e.g. to reuse one feature
    computation across the training subsets of a learning curve."""
    idx = np.asarray(idx, dtype=int)
    new_of_old = np.full(feats.n_structures, -1)
    new_of_old[idx] = np.arange(len(idx))
    keep = np.flatnonzero(new_of_old[feats.structure] >= 0)
    order = keep[np.argsort(new_of_old[feats.structure[keep]], kind="stable")]
    pos_of_atom = np.full(len(feats.numbers), -1)
    pos_of_atom[order] = np.arange(len(order))
    out = AtomFeatures(feats.numbers[order], new_of_old[feats.structure[order]], len(idx), {})
    for z, atoms in feats.index.items():
        sel = np.isin(atoms, order)
        new_pos = pos_of_atom[atoms[sel]]
        o = np.argsort(new_pos, kind="stable")
        out.index[z] = new_pos[o]
        for ch, per_z in feats.blocks.items():
            out.blocks.setdefault(ch, {})[z] = per_z[z][np.flatnonzero(sel)[o]]
    return out
