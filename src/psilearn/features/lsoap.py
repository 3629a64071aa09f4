"""lambda-SOAP features (equivariant SOAP power spectrum) computed by featomic.

For each requested channel (l, sigma) every atom gets a block X_i of shape (2l+1, Q): rows are the
m-components in e3nn's real-harmonic basis, columns the (l1, l2, neighbour types, n1, n2) features.
Under a rotation R, X_i -> D^l(R) X_i; under inversion X_i -> sigma (-1)^l X_i. Blocks are
normalised to unit Frobenius norm per atom, as in SA-GPR (Grisafi et al., PRL 120, 036002 (2018)).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np
from ase import Atoms

from psilearn.features.basis import featomic_to_e3nn


@dataclass
class SoapConfig:
    """Hyperparameters of the lambda-SOAP descriptor. Distances in Angstrom.

    ``max_radial`` is the number of radial basis functions (GTOs), ``max_angular`` the largest l of
    the density expansion; target channels up to l = 2*max_angular are available. ``cutoff`` may be
    a list: one lambda-SOAP per cutoff, normalised and concatenated, so that the kernel is the mean
    of the kernels at each scale (a short cutoff resolves bonds, a long one intermolecular order).
    """

    cutoff: float | list[float] = 5.0
    smoothing: float = 0.5
    density_width: float = 0.3
    max_angular: int = 4
    max_radial: int = 6
    batch_size: int = 100

    @classmethod
    def from_dict(cls, d: dict | None) -> "SoapConfig":
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown SOAP options {sorted(unknown)}; known: {sorted(names)}")
        cfg = cls(**d)
        if isinstance(cfg.cutoff, (list, tuple)):
            if not cfg.cutoff:
                raise ValueError("SOAP cutoff list is empty")
            cfg.cutoff = [float(c) for c in cfg.cutoff]
        if min(cfg.cutoffs) <= 0 or cfg.density_width <= 0 or cfg.smoothing < 0:
            raise ValueError("SOAP cutoff and density_width must be positive, smoothing non-negative")
        if cfg.max_angular < 0 or cfg.max_radial < 1:
            raise ValueError("SOAP max_angular must be >= 0 and max_radial >= 1")
        return cfg

    @property
    def cutoffs(self) -> list[float]:
        return list(self.cutoff) if isinstance(self.cutoff, (list, tuple)) else [float(self.cutoff)]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AtomFeatures:
    """lambda-SOAP blocks for all atoms of a list of structures.

    ``numbers`` (n_atoms,) atomic numbers, ``structure`` (n_atoms,) index of each atom's structure,
    ``blocks[(l, sigma)][Z]`` an array (n_atoms_Z, 2l+1, Q_Z) for the atoms of element Z, in order of
    ``index[Z]`` (their positions in the flattened atom list).
    """

    numbers: np.ndarray
    structure: np.ndarray
    n_structures: int
    index: dict[int, np.ndarray]
    blocks: dict[tuple[int, int], dict[int, np.ndarray]] = field(default_factory=dict)


def sigma_for(l: int, parity: int) -> int:
    """featomic's o3_sigma of a channel with degree l and O(3) parity (+1 even / -1 odd)."""
    return parity * (-1) ** l


class LambdaSoap:
    """Computes normalised lambda-SOAP channels for a fixed set of elements."""

    def __init__(self, config: SoapConfig, species: list[int]):
        self.config = config
        self.species = sorted(int(z) for z in species)

    def _calculator(self, cutoff: float):
        import featomic
        from featomic.clebsch_gordan import EquivariantPowerSpectrum

        c = self.config
        expansion = featomic.SphericalExpansion(
            cutoff={"radius": cutoff, "smoothing": {"type": "ShiftedCosine", "width": c.smoothing}},
            density={"type": "Gaussian", "width": c.density_width},
            basis={
                "type": "TensorProduct",
                "max_angular": c.max_angular,
                "radial": {"type": "Gto", "max_radial": c.max_radial - 1},
            },
        )
        return EquivariantPowerSpectrum(expansion, neighbor_types=self.species)

    def compute(
        self, frames: list[Atoms], channels: list[tuple[int, int]], progress: bool = False
    ) -> AtomFeatures:
        """Compute the channels [(l, sigma), ...] for ``frames``; (0, 1) is always included."""
        import metatensor
        from tqdm.auto import tqdm

        channels = sorted(set(channels) | {(0, 1)})
        l_top = max(l for l, _ in channels)
        if l_top > 2 * self.config.max_angular:
            raise ValueError(
                f"a channel with l={l_top} needs SOAP max_angular >= {(l_top + 1) // 2} "
                f"(have {self.config.max_angular})"
            )
        numbers = np.concatenate([a.numbers for a in frames]) if frames else np.zeros(0, int)
        unknown = sorted(set(numbers.tolist()) - set(self.species))
        if unknown:
            raise ValueError(f"elements {unknown} are not among the descriptor's elements {self.species}")
        counts = np.array([len(a) for a in frames])
        offsets = np.concatenate([[0], np.cumsum(counts)])
        structure = np.repeat(np.arange(len(frames)), counts)
        index = {z: np.flatnonzero(numbers == z) for z in self.species}
        U = featomic_to_e3nn(l_top)
        calcs = [self._calculator(rc) for rc in self.config.cutoffs]
        selected = metatensor.Labels(["o3_lambda", "o3_sigma"], np.array(channels, dtype=np.int32))
        parts: dict[tuple[int, int, int], list] = {}
        bs = max(1, self.config.batch_size)
        batches = range(0, len(frames), bs)
        for start in tqdm(batches, desc="lambda-SOAP", unit="batch", disable=not progress, leave=False):
            chunk = [_featomic_ready(a) for a in frames[start : start + bs]]
            for scale, calc in enumerate(calcs):
                tmap = calc.compute(chunk, selected_keys=selected, neighbors_to_properties=True)
                for key, block in tmap.items():
                    l, s, z = int(key["o3_lambda"]), int(key["o3_sigma"]), int(key["center_type"])
                    samp = block.samples.values
                    gidx = offsets[samp[:, 0] + start] + samp[:, 1]
                    parts.setdefault((l, s, z, scale), []).append((gidx, np.asarray(block.values)))
        feats = AtomFeatures(numbers, structure, len(frames), index)
        n_scales = len(calcs)
        for l, s in channels:
            per_z = {}
            for z in self.species:
                scaled = [self._assemble(parts.get((l, s, z, k), []), index[z], U[l]) for k in range(n_scales)]
                # each scale normalised on its own, so each contributes equally to the kernel
                per_z[z] = np.concatenate(scaled, axis=2) / np.sqrt(n_scales)
            feats.blocks[(l, s)] = per_z
        return feats

    @staticmethod
    def _assemble(chunks: list, atoms: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Order featomic's rows as ``atoms``, rotate m into e3nn's basis, normalise per atom."""
        d = u.shape[0]
        if not chunks:
            return np.zeros((len(atoms), d, 0))
        gidx = np.concatenate([g for g, _ in chunks])
        vals = np.concatenate([v for _, v in chunks])
        order = np.argsort(gidx, kind="stable")
        if not np.array_equal(gidx[order], atoms):
            raise RuntimeError("featomic returned an unexpected set of atoms")  # defensive
        x = np.einsum("mk,nkq->nmq", u, vals[order])
        norm = np.sqrt(np.einsum("nmq,nmq->n", x, x))
        return x / np.where(norm > 0, norm, 1.0)[:, None, None]


def _featomic_ready(atoms: Atoms) -> Atoms:
    """featomic refuses pbc with a zero cell; such structures are molecules (extxyz 'Lattice' of zeros)."""
    if atoms.pbc.any() and atoms.cell.rank < 3:
        atoms = atoms.copy()
        atoms.pbc = False
    return atoms
