"""lambda-SOAP features (equivariant SOAP power spectrum) computed by featomic.

The density expansion comes from featomic's SphericalExpansion; the Clebsch-Gordan coupling into
lambda-SOAP is done here with e3nn's Wigner 3j symbols (see LambdaSoap._couple for why). For each
requested channel (l, sigma) every atom gets a block X_i of shape (2l+1, Q): rows are the
m-components in e3nn's real-harmonic basis, columns the (l1, l2, neighbour types, n1, n2) features.
Under a rotation R, X_i -> D^l(R) X_i; under inversion X_i -> sigma (-1)^l X_i. Blocks are
normalised to unit Frobenius norm per atom, as in SA-GPR (Grisafi et al., PRL 120, 036002 (2018)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar

import numpy as np
from ase import Atoms

from psilearn._tables import lookup
from psilearn.config import Checks, Options
from psilearn.data.memory import check_allocation
from psilearn.features._featomic import import_featomic
from psilearn.features.basis import featomic_to_e3nn

#: what to change when lambda-SOAP features do not fit in memory
FEATURE_HINT = ("soap.max_radial or soap.max_angular, the number of elements (features grow with its square) "
                "or the number of structures")


@dataclass
class SoapConfig(Options):
    """Hyperparameters of the lambda-SOAP descriptor (YAML section ``soap:``). Distances in Angstrom.

    ``max_radial`` is the number of radial basis functions (GTOs), ``max_angular`` the largest l of
    the density expansion; target channels up to l = 2*max_angular are available. ``cutoff`` may be
    a list: one lambda-SOAP per cutoff, normalised and concatenated, so that the kernel is the mean
    of the kernels at each scale (a short cutoff resolves bonds, a long one intermolecular order).
    """

    section: ClassVar[str] = "soap"

    cutoff: float | list[float] = 5.0
    smoothing: float = 0.5
    density_width: float = 0.3
    max_angular: int = 4
    max_radial: int = 6
    center_atom_weight: float = 1.0
    # Willatt et al. (PCCP 20, 29661 (2018)) radial scaling c / (c + (r/r0)^m) of neighbour densities,
    # as {"exponent": m, "rate": c, "scale": r0 (Angstrom)}; None for no scaling
    radial_scaling: dict[str, float] | None = None
    batch_size: int = 100
    # element compression: the neighbour density's element channels projected onto this many
    # pseudo-elements before coupling (features then grow linearly, not quadratically, with the number
    # of elements; 0: off, one channel per element; psilearn.features.species_embedding)
    species_embedding: int = 0
    # how the pseudo-elements are drawn: 'random' (each element a random direction) or 'elemental'
    # (from period, group and covalent radius, so similar elements are close; species_embedding.py)
    species_embedding_kind: str = "random"

    def check(self, c: Checks) -> None:
        c.require(bool(self.cutoffs) and min(self.cutoffs) > 0, "cutoff", "must be > 0 (or a non-empty list of them)")
        c.require(self.density_width > 0, "density_width", "must be > 0")
        c.require(self.smoothing >= 0, "smoothing", "must be >= 0")
        c.require(self.max_angular >= 0, "max_angular", "must be >= 0")
        c.require(self.max_radial >= 1, "max_radial", "must be >= 1")
        c.require(self.batch_size >= 1, "batch_size", "must be >= 1")
        c.require(self.species_embedding >= 0, "species_embedding", "must be >= 0 (0: one channel per element)")
        c.one_of("species_embedding_kind", ("random", "elemental"))
        if self.radial_scaling is not None:
            rs = self.radial_scaling
            ok = set(rs) == {"exponent", "rate", "scale"} and rs["exponent"] >= 0 and rs["rate"] >= 0 and rs["scale"] > 0
            c.require(ok, "radial_scaling", "needs exponent >= 0, rate >= 0 and scale > 0 (Angstrom)")
            self.radial_scaling = {"exponent": int(rs["exponent"]), "rate": float(rs["rate"]), "scale": float(rs["scale"])}

    @property
    def cutoffs(self) -> list[float]:
        return list(self.cutoff) if isinstance(self.cutoff, (list, tuple)) else [float(self.cutoff)]


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
    #: with ``compute(..., keep_coefficients=True)``: {Z: (n_atoms_Z, C)} the density-expansion
    #: coefficients the blocks are built from (all scales, e3nn basis; see LambdaSoap.from_coefficients)
    coefficients: dict[int, np.ndarray] = field(default_factory=dict)


def sigma_for(l: int, parity: int) -> int:
    """featomic's o3_sigma of a channel with degree l and O(3) parity (+1 even / -1 odd)."""
    return parity * (-1) ** l


class LambdaSoap:
    """Computes normalised lambda-SOAP channels for a fixed set of elements."""

    def __init__(self, config: SoapConfig, species: list[int]):
        self.config = config
        self.species = sorted(int(z) for z in species)
        self._embedding = None
        if config.species_embedding:
            from psilearn.features.species_embedding import element_embedding

            self._embedding = element_embedding(self.species, config.species_embedding, config.species_embedding_kind)

    @property
    def n_channels(self) -> int:
        """Element channels of the neighbour density: the elements, or the embedding's dimension."""
        return self.config.species_embedding or len(self.species)

    def _expansion(self, cutoff: float, by_pair: bool = False):
        """featomic's spherical expansion at one cutoff; ``by_pair``: its per-neighbour terms
        (SphericalExpansionByPair, whose sum over the neighbours of an atom is that atom's expansion)."""
        featomic = import_featomic()
        c = self.config
        return (featomic.SphericalExpansionByPair if by_pair else featomic.SphericalExpansion)(
            cutoff={"radius": cutoff, "smoothing": {"type": "ShiftedCosine", "width": c.smoothing}},
            density=self._density(),
            basis={
                "type": "TensorProduct",
                "max_angular": c.max_angular,
                "radial": {"type": "Gto", "max_radial": c.max_radial - 1},
            },
        )

    def _density(self) -> dict:
        c = self.config
        density = {"type": "Gaussian", "width": c.density_width, "center_atom_weight": c.center_atom_weight}
        if c.radial_scaling:
            density["scaling"] = {"type": "Willatt2018", **c.radial_scaling}
        return density

    def pairs(self, l: int, sigma: int) -> list[tuple[int, int]]:
        """(l1, l2), l1 <= l2, coupling to degree l with parity sigma = (-1)^(l1+l2+l). The (l2, l1)
        products are the same numbers up to sign and index order, so they are left out."""
        L = self.config.max_angular
        return [
            (l1, l2)
            for l1 in range(L + 1)
            for l2 in range(l1, L + 1)
            if abs(l1 - l2) <= l <= l1 + l2 and (-1) ** (l1 + l2 + l) == sigma
        ]

    def compute(
        self, frames: list[Atoms], channels: list[tuple[int, int]], progress: bool = False, keep_coefficients: bool = False,
        dtype: type = np.float64,
    ) -> AtomFeatures:
        """Compute the channels [(l, sigma), ...] for ``frames``; (0, 1) is always included. With
        ``keep_coefficients`` the per-atom expansion coefficients are kept too (``coefficients``),
        from which :meth:`from_coefficients` rebuilds the same blocks (~20x smaller to store).
        ``dtype`` of the blocks (np.float32 halves their memory; the expansion itself stays float64)."""
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
        feats = AtomFeatures(numbers, structure, len(frames), index)
        expansions = [self._expansion(rc) for rc in self.config.cutoffs]
        n_scales = len(expansions)
        k = self.n_channels * self.config.max_radial
        widths = {ch: len(self.pairs(*ch)) * k * k for ch in channels}  # features per scale
        counts_z = {z: len(index[z]) for z in self.species}
        check_allocation(self.estimate_bytes(counts_z, channels, keep_coefficients),
                         f"lambda-SOAP of {len(numbers)} atoms ({len(self.species)} elements)", FEATURE_HINT)
        # preallocated output blocks, filled batch by batch in place (they can be hundreds of MB)
        for ch in channels:
            feats.blocks[ch] = {z: np.zeros((len(index[z]), 2 * ch[0] + 1, n_scales * widths[ch]), dtype=dtype) for z in self.species}
        if keep_coefficients:
            feats.coefficients = {z: np.zeros((len(index[z]), self.n_coefficients)) for z in self.species}
        bs = max(1, self.config.batch_size)
        for start in tqdm(range(0, len(frames), bs), desc="lambda-SOAP", unit="batch", disable=not progress, leave=False):
            chunk = [_featomic_ready(a, start + j) for j, a in enumerate(frames[start : start + bs])]
            for scale, calc in enumerate(expansions):
                dense = self._dense_expansion(calc.compute(chunk), offsets, start, start + len(chunk), index)
                if self._embedding is not None:
                    from psilearn.features.species_embedding import compress

                    dense = {z: (g, compress(xl, self._embedding, self.config.max_radial)) for z, (g, xl) in dense.items()}
                for z, (gidx, xl) in dense.items():
                    rows = np.searchsorted(index[z], gidx)
                    if not np.array_equal(index[z][rows], gidx):
                        raise RuntimeError("featomic returned an unexpected set of atoms")  # defensive
                    contiguous = len(rows) == 0 or rows[-1] - rows[0] + 1 == len(rows)
                    sel = slice(rows[0], rows[-1] + 1) if contiguous and len(rows) else rows
                    if keep_coefficients:
                        c0 = scale * self.n_coefficients // n_scales
                        feats.coefficients[z][sel, c0 : c0 + self.n_coefficients // n_scales] = _flatten(xl)
                    for ch in channels:
                        q0 = scale * widths[ch]
                        block = feats.blocks[ch][z]
                        if contiguous:
                            self._couple(xl, *ch, out=block[sel, :, q0 : q0 + widths[ch]])
                        else:
                            block[sel, :, q0 : q0 + widths[ch]] = self._couple(xl, *ch)
        for ch in channels:
            for z in self.species:
                _normalise(feats.blocks[ch][z], widths[ch], n_scales)
        return feats

    def estimate_bytes(self, counts: dict[int, int], channels: list[tuple[int, int]], keep_coefficients: bool = False) -> int:
        """Bytes of the arrays :meth:`compute` keeps for ``counts`` {Z: atoms of element Z}: the
        blocks, sum over channels and elements of n_Z x (2l+1) x Q x 8 (Q = scales x pairs(l, sigma)
        x (elements x max_radial)^2, hence the square of the number of elements), plus the kept
        coefficients (n_atoms x n_coefficients x 8). The per-batch temporaries (soap.batch_size
        frames) are left to the guard's safety factor."""
        n_atoms = sum(counts.values())
        per_atom = sum((2 * l + 1) * self.width(l, s) for l, s in set(channels) | {(0, 1)})
        if keep_coefficients:
            per_atom += self.n_coefficients
        return 8 * n_atoms * per_atom

    def width(self, l: int, sigma: int) -> int:
        """Q, the number of features of channel (l, sigma) (all scales)."""
        k = self.n_channels * self.config.max_radial
        return len(self.config.cutoffs) * len(self.pairs(l, sigma)) * k * k

    @property
    def n_coefficients(self) -> int:
        """Expansion coefficients per atom: scales x sum_l (2l+1) x neighbour types x radial functions."""
        c = self.config
        return len(c.cutoffs) * (c.max_angular + 1) ** 2 * self.n_channels * c.max_radial

    def from_coefficients(self, coefficients: np.ndarray, channels: list[tuple[int, int]]) -> dict:
        """{(l, sigma): (n, 2l+1, Q)} normalised lambda-SOAP blocks of atoms given by their expansion
        coefficients (n, C) as kept by ``compute(..., keep_coefficients=True)``: the same blocks,
        up to floating-point rounding, without the structures."""
        n_scales = len(self.config.cutoffs)
        per_scale = np.split(np.asarray(coefficients, dtype=np.float64), n_scales, axis=1)
        xls = [_unflatten(c, self.config.max_angular) for c in per_scale]
        k = self.n_channels * self.config.max_radial
        out = {}
        for ch in sorted(set(channels) | {(0, 1)}):
            width = len(self.pairs(*ch)) * k * k
            block = np.concatenate([self._couple(xl, *ch) for xl in xls], axis=2)
            out[ch] = _normalise(block, width, n_scales)
        return out

    def _dense_expansion(self, tmap, offsets: np.ndarray, start: int, stop: int, index: dict) -> dict:
        """featomic's spherical expansion of frames [start, stop) ->
        {Z: (global atom idx, [X_l (n, 2l+1, n_types*n_radial)])} with m in e3nn's basis and all
        neighbour types side by side. featomic's blocks are sparse (an atom without neighbours of a
        type is absent from that block); those coefficients are zero here."""
        L = self.config.max_angular
        U = featomic_to_e3nn(L)
        n_rad = self.config.max_radial
        n_t = len(self.species)
        lo, hi = offsets[start], offsets[stop]
        out = {}
        for z in self.species:
            gz = index[z][(index[z] >= lo) & (index[z] < hi)]
            if len(gz) == 0:
                continue
            xl = [np.zeros((len(gz), 2 * l + 1, n_t * n_rad)) for l in range(L + 1)]
            out[z] = (gz, xl)
        for key, block in tmap.items():
            z, l, a = int(key["center_type"]), int(key["o3_lambda"]), int(key["neighbor_type"])
            if z not in out or block.values.shape[0] == 0:
                continue
            gz, xl = out[z]
            samples = block.samples.values
            rows = np.searchsorted(gz, offsets[samples[:, 0] + start] + samples[:, 1])
            t = self.species.index(a)
            xl[l][rows, :, t * n_rad : (t + 1) * n_rad] = np.einsum("mk,nkq->nmq", U[l], np.asarray(block.values))
        return out

    def _couple(self, xl: list[np.ndarray], l: int, sigma: int, out: np.ndarray | None = None) -> np.ndarray:
        """lambda-SOAP block (n, 2l+1, Q): sum_{m1 m2} C^{l mu}_{l1 m1 l2 m2} x_{l1 m1 k1} x_{l2 m2 k2}
        for every coupled pair, flattened over (l1, l2, k1, k2); written into ``out`` when given.

        Written as batched matrix products because featomic's Python Clebsch-Gordan product runs at
        ~2k atoms/s on this machine versus ~13k atoms/s for the expansion itself; the coefficients are
        e3nn's Wigner 3j symbols, in the same basis as the targets' irreps."""
        n = xl[0].shape[0]
        k = xl[0].shape[2]
        pairs = self.pairs(l, sigma)
        if out is None:
            out = np.zeros((n, 2 * l + 1, len(pairs) * k * k))
        for i, (l1, l2) in enumerate(pairs):
            t = np.einsum("nak,abu->nukb", xl[l1], _wigner3j(l1, l2, l))  # (n, 2l+1, k, 2l2+1)
            p = np.matmul(t.reshape(n, -1, 2 * l2 + 1), xl[l2])  # (n, (2l+1) k, k)
            out[:, :, i * k * k : (i + 1) * k * k] = p.reshape(n, 2 * l + 1, k * k)
        return out


def _normalise(x: np.ndarray, width: int, n_scales: int) -> np.ndarray:
    """Unit norm per atom and scale (in place; ``x`` (n, 2l+1, n_scales*width)), so each scale
    contributes equally to the kernel."""
    for scale in range(n_scales):
        part = x[:, :, scale * width : (scale + 1) * width]
        norm = np.sqrt(np.einsum("nmq,nmq->n", part, part, **({} if x.dtype == np.float64 else {"dtype": np.float64})))  # float64 sums
        part /= (np.where(norm > 0, norm, 1.0) * np.sqrt(n_scales))[:, None, None]
    return x


def _flatten(xl: list[np.ndarray]) -> np.ndarray:
    """[X_l (n, 2l+1, k) for l = 0..L] -> (n, sum_l (2l+1) k)."""
    return np.concatenate([x.reshape(len(x), -1) for x in xl], axis=1)


def _unflatten(flat: np.ndarray, l_max: int) -> list[np.ndarray]:
    """Inverse of :func:`_flatten`: (n, (L+1)^2 k) -> [X_l (n, 2l+1, k)]."""
    n, k = len(flat), flat.shape[1] // (l_max + 1) ** 2
    out, start = [], 0
    for l in range(l_max + 1):
        size = (2 * l + 1) * k
        out.append(flat[:, start : start + size].reshape(n, 2 * l + 1, k))
        start += size
    return out


@lru_cache(maxsize=None)
def _wigner3j(l1: int, l2: int, l: int) -> np.ndarray:
    shipped = lookup(f"wigner3j/{l1}/{l2}/{l}", ("e3nn",))
    return shipped if shipped is not None else e3nn_wigner3j(l1, l2, l)


def e3nn_wigner3j(l1: int, l2: int, l: int) -> np.ndarray:
    """e3nn's real Wigner 3j symbol (2 l1 + 1, 2 l2 + 1, 2 l + 1), float64 (imports torch)."""
    import torch
    from e3nn import o3

    return o3.wigner_3j(l1, l2, l, dtype=torch.float64).numpy()


def _featomic_ready(atoms: Atoms, i: int) -> Atoms:
    """The frame under psilearn's one periodicity rule (:mod:`psilearn.data.periodicity`): an
    all-zero lattice is a molecule (a copy with pbc=False, which featomic needs); a periodic frame
    with a partly zero or degenerate cell is refused (DataError)."""
    from psilearn.data.errors import frame_location
    from psilearn.data.periodicity import periodicity_applied

    return periodicity_applied(atoms, frame_location(atoms, i))
