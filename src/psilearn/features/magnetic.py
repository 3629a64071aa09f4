"""lambda-SOAP with per-atom magnetic moments as inputs (issue 16, item 2).

Each atom j carries a signed moment m_j (``atoms.arrays["initial_magmoms"]``, ASE's name). Besides
the neighbour density rho(r) = sum_j g(r - r_j) around each centre i we expand the moment-weighted
density rho_m(r) = sum_j m_j g(r - r_j) (the sum includes the centre's own Gaussian, weighted by
m_i). featomic's SphericalExpansionByPair returns the expansion of every (i, j, cell shift) pair
separately, and SphericalExpansion is exactly their sum (measured: identical to the last bit), so
rho_m's coefficients y are sum_j m_j c_ij: exact, in the same basis as rho's coefficients x.

A collinear moment is a scalar under rotations and inversion (an axial vector is inversion-even,
and collinear moments ignore their direction), so y transforms exactly as x under O(3). Under time
reversal m -> -m on every atom, y -> -y. A time-even target may only depend on features even in m;
per channel (l, sigma) and scale the block is the concatenation of

* x (x) x : the ordinary lambda-SOAP (identical numbers to :class:`LambdaSoap`),
* y (x) y : moment-moment correlations (sum_jk m_j m_k ...),
* x (x) (m_i y) : the centre's moment times rho_m (m_i sum_j m_j ...), all ordered (l1, l2) pairs,

normalised together to unit norm per atom and scale. All three are exactly even in m (the
floating-point negation of y and m_i is exact, so a global sign flip gives bit-identical features).
With all moments zero the last two parts are exactly zero and the normalised block is the ordinary
lambda-SOAP padded with zeros: kernels and predictions equal those of a model without moments to
rounding. Per-atom expansion coefficients (the model file's compact storage) are
[x (all scales), y (all scales), m_i].

Non-collinear moments (``initial_magmoms`` of shape (n, 3), an axial vector per atom): one density
y_a per Cartesian component a, and the blocks x (x) x, sum_a y_a (x) y_a, x (x) (sum_a m_ia y_a): the
moments enter only through dot products over the spin index, so the features are invariant under
any global rotation of the moments alone (isotropic exchange, no spin-orbit coupling), hence under
the axial-vector transformation m -> det(R) R m that accompanies a rotation R of the positions, and
exactly even under m -> -m. Moments along z reproduce the collinear features bit for bit.
Coefficients: [x, y_x, y_y, y_z (all scales each), m_i (3)].
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from ase import Atoms

from psilearn.data.errors import DataError, frame_location
from psilearn.data.memory import check_allocation
from psilearn.features.lsoap import FEATURE_HINT, AtomFeatures, LambdaSoap, SoapConfig, _featomic_ready, _flatten, _normalise, _unflatten, _wigner3j

#: the per-atom array holding collinear moments (ASE's name, also read by get_initial_magnetic_moments)
MOMENT_KEY = "initial_magmoms"
_CHUNK = 1024  # atoms coupled at once
#: values of the ``magnetic_moments`` option and the moment components each reads
MOMENT_MODES = {"none": 0, "collinear": 1, "noncollinear": 3}


def read_moments(frames: list[Atoms], mode: str = "collinear") -> list[np.ndarray]:
    """The moments of every atom, one (n_atoms, c) array per frame (c = 1 collinear, 3 non-collinear).
    DataError (one line naming file, frame and key) when a frame has no ``initial_magmoms``, moments
    of the other kind or non-finite values."""
    n_comp = MOMENT_MODES[mode]
    out = []
    for i, a in enumerate(frames):
        where = frame_location(a, i)
        if MOMENT_KEY not in a.arrays:
            raise DataError(f"{where}: no per-atom '{MOMENT_KEY}' (the model takes {mode} magnetic moments as inputs)")
        m = np.asarray(a.arrays[MOMENT_KEY], dtype=np.float64)
        if n_comp == 1 and m.ndim != 1:
            raise DataError(f"{where}: '{MOMENT_KEY}' has shape {m.shape}; this model takes collinear moments, one "
                            "signed number per atom (non-collinear vectors need magnetic_moments: noncollinear)")
        if n_comp == 3 and m.shape != (len(a), 3):
            raise DataError(f"{where}: '{MOMENT_KEY}' has shape {m.shape}; this model takes non-collinear moments, "
                            "a vector (3 numbers) per atom")
        if not np.all(np.isfinite(m)):
            raise DataError(f"{where}: '{MOMENT_KEY}' holds non-finite values")
        out.append(m.reshape(len(a), n_comp))
    return out


def collinear_moments(frames: list[Atoms]) -> list[np.ndarray]:
    """The signed moment of every atom, one (n_atoms,) array per frame (see :func:`read_moments`)."""
    return [m[:, 0] for m in read_moments(frames, "collinear")]


def lambda_soap(config: SoapConfig, species: list[int], magnetic_moments: str = "none") -> LambdaSoap:
    """The lambda-SOAP calculator of a model: the ordinary one, or with collinear/non-collinear moments."""
    if magnetic_moments == "none":
        return LambdaSoap(config, species)
    return MagneticLambdaSoap(config, species, magnetic_moments)


class MagneticLambdaSoap(LambdaSoap):
    """lambda-SOAP blocks [x (x) x, sum_a y_a (x) y_a, x (x) sum_a m_ia y_a] per scale (module
    docstring); a = the one collinear component or the three Cartesian ones of a non-collinear moment."""

    def __init__(self, config: SoapConfig, species: list[int], mode: str = "collinear"):
        super().__init__(config, species)
        self.mode = mode
        self.n_comp = MOMENT_MODES[mode]

    def cross_pairs(self, l: int, sigma: int) -> list[tuple[int, int]]:
        """All ordered (l1, l2) coupling to (l, sigma): x_l1 (x) y_l2 is not symmetric in l1, l2."""
        L = self.config.max_angular
        return [(l1, l2) for l1 in range(L + 1) for l2 in range(L + 1)
                if abs(l1 - l2) <= l <= l1 + l2 and (-1) ** (l1 + l2 + l) == sigma]

    def _scale_width(self, l: int, sigma: int) -> int:
        k = len(self.species) * self.config.max_radial
        return (2 * len(self.pairs(l, sigma)) + len(self.cross_pairs(l, sigma))) * k * k

    def width(self, l: int, sigma: int) -> int:
        return len(self.config.cutoffs) * self._scale_width(l, sigma)

    @property
    def n_coefficients(self) -> int:
        return (1 + self.n_comp) * super().n_coefficients + self.n_comp

    def compute(self, frames: list[Atoms], channels: list[tuple[int, int]], progress: bool = False,
                keep_coefficients: bool = False) -> AtomFeatures:
        """As :meth:`LambdaSoap.compute`, with the moments of ``frames`` (DataError if absent)."""
        channels = sorted(set(channels) | {(0, 1)})
        l_top = max(l for l, _ in channels)
        if l_top > 2 * self.config.max_angular:
            raise ValueError(f"a channel with l={l_top} needs SOAP max_angular >= {(l_top + 1) // 2} "
                             f"(have {self.config.max_angular})")
        moments = np.concatenate(read_moments(frames, self.mode)) if frames else np.zeros((0, self.n_comp))
        numbers = np.concatenate([a.numbers for a in frames]) if frames else np.zeros(0, int)
        unknown = sorted(set(numbers.tolist()) - set(self.species))
        if unknown:
            raise ValueError(f"elements {unknown} are not among the descriptor's elements {self.species}")
        counts = np.array([len(a) for a in frames])
        index = {z: np.flatnonzero(numbers == z) for z in self.species}
        feats = AtomFeatures(numbers, np.repeat(np.arange(len(frames)), counts), len(frames), index)
        check_allocation(self.estimate_bytes({z: len(i) for z, i in index.items()}, channels, True),
                         f"magnetic lambda-SOAP of {len(numbers)} atoms ({len(self.species)} elements)", FEATURE_HINT)
        coefficients = self.coefficients(frames, moments, progress)
        for ch in channels:
            feats.blocks[ch] = {z: np.zeros((len(index[z]), 2 * ch[0] + 1, self.width(*ch))) for z in self.species}
        for z in self.species:  # in chunks of atoms (blocks are per atom), bounding the coupling's temporaries
            for start in range(0, len(index[z]), _CHUNK):
                for ch, block in self.from_coefficients(coefficients[z][start : start + _CHUNK], channels).items():
                    feats.blocks[ch][z][start : start + _CHUNK] = block
        if keep_coefficients:
            feats.coefficients = coefficients
        return feats

    def coefficients(self, frames: list[Atoms], moments: np.ndarray, progress: bool = False) -> dict[int, np.ndarray]:
        """{Z: (n_Z, C)} per-atom coefficients [x, y_a for each component a (all scales each), m_i (c)];
        ``moments`` (n_atoms, c)."""
        from tqdm.auto import tqdm

        featomic = self._featomic()
        numbers = np.concatenate([a.numbers for a in frames]) if frames else np.zeros(0, int)
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in frames])]).astype(int)
        index = {z: np.flatnonzero(numbers == z) for z in self.species}
        nc = self.n_comp
        part = super().n_coefficients
        per_scale = part // len(self.config.cutoffs)
        out = {z: np.zeros((len(index[z]), self.n_coefficients)) for z in self.species}
        for z in self.species:
            out[z][:, -nc:] = moments[index[z]]
        bs = max(1, self.config.batch_size)
        for start in tqdm(range(0, len(frames), bs), desc="magnetic lambda-SOAP", unit="batch", disable=not progress, leave=False):
            chunk = [_featomic_ready(a, start + j) for j, a in enumerate(frames[start : start + bs])]
            for scale, rc in enumerate(self.config.cutoffs):
                x = self._dense_expansion(self._expansion(rc).compute(chunk), offsets, start, start + len(chunk), index)
                pairs = featomic.SphericalExpansionByPair(**self._expansion_options(rc)).compute(chunk)
                c0 = scale * per_scale
                for z, (gidx, xl) in x.items():
                    out[z][np.searchsorted(index[z], gidx), c0 : c0 + per_scale] = _flatten(xl)
                for a in range(nc):
                    y = self._dense_expansion(_moment_weighted(pairs, moments[:, a], offsets, start), offsets, start,
                                              start + len(chunk), index)
                    ca = (1 + a) * part + c0
                    for z, (gidx, yl) in y.items():
                        out[z][np.searchsorted(index[z], gidx), ca : ca + per_scale] = _flatten(yl)
        return out

    def _featomic(self):
        from psilearn.features._featomic import import_featomic

        return import_featomic()

    def _expansion_options(self, cutoff: float) -> dict:
        c = self.config
        return dict(cutoff={"radius": cutoff, "smoothing": {"type": "ShiftedCosine", "width": c.smoothing}},
                    density=self._density(),
                    basis={"type": "TensorProduct", "max_angular": c.max_angular,
                           "radial": {"type": "Gto", "max_radial": c.max_radial - 1}})

    def from_coefficients(self, coefficients: np.ndarray, channels: list[tuple[int, int]]) -> dict:
        """{(l, sigma): (n, 2l+1, Q)} normalised blocks from coefficients [x, y_a, m_i] (:meth:`coefficients`)."""
        coefficients = np.asarray(coefficients, dtype=np.float64)
        n_scales, nc, L = len(self.config.cutoffs), self.n_comp, self.config.max_angular
        part = super().n_coefficients
        m = coefficients[:, (1 + nc) * part :]
        # [component][scale] -> [X_l]: component 0 is x, then y_a
        dens = [[_unflatten(c, L) for c in np.split(coefficients[:, k * part : (k + 1) * part], n_scales, axis=1)]
                for k in range(1 + nc)]
        out = {}
        for ch in sorted(set(channels) | {(0, 1)}):
            parts = []
            for s in range(n_scales):
                xl = dens[0][s]
                yy = sum(self._couple(dens[1 + a][s], *ch) for a in range(nc))
                # the centre's moment times rho_m, summed over components (m_i . y for vectors)
                myl = [sum(m[:, a, None, None] * dens[1 + a][s][l] for a in range(nc)) for l in range(L + 1)]
                parts += [self._couple(xl, *ch), yy, self._cross(xl, myl, *ch)]
            out[ch] = _normalise(np.concatenate(parts, axis=2), self._scale_width(*ch), n_scales)
        return out

    def _cross(self, al: list[np.ndarray], bl: list[np.ndarray], l: int, sigma: int) -> np.ndarray:
        """(n, 2l+1, Q): sum_{m1 m2} C^{l mu}_{l1 m1 l2 m2} a_{l1 m1 k1} b_{l2 m2 k2} over all ordered pairs."""
        n, k = al[0].shape[0], al[0].shape[2]
        pairs = self.cross_pairs(l, sigma)
        out = np.zeros((n, 2 * l + 1, len(pairs) * k * k))
        for i, (l1, l2) in enumerate(pairs):
            t = np.einsum("nak,abu->nukb", al[l1], _wigner3j(l1, l2, l))
            p = np.matmul(t.reshape(n, -1, 2 * l2 + 1), bl[l2])
            out[:, :, i * k * k : (i + 1) * k * k] = p.reshape(n, 2 * l + 1, k * k)
        return out


def _moment_weighted(pairs, moments: np.ndarray, offsets: np.ndarray, start: int) -> list:
    """featomic's per-pair expansion summed over neighbours j with weights m_j, as (key, block) items
    shaped like SphericalExpansion's (keys center_type, o3_lambda, neighbor_type; samples (system,
    atom)) for :meth:`LambdaSoap._dense_expansion`."""
    items = []
    for key, block in pairs.items():
        values = np.asarray(block.values)
        samples = block.samples.values
        if len(samples) == 0:
            continue
        w = moments[offsets[samples[:, 0] + start] + samples[:, 2]]
        centres, inverse = np.unique(samples[:, :2], axis=0, return_inverse=True)
        summed = np.zeros((len(centres),) + values.shape[1:])
        np.add.at(summed, inverse.reshape(-1), values * w[:, None, None])
        k = {"center_type": int(key["first_atom_type"]), "o3_lambda": int(key["o3_lambda"]),
             "neighbor_type": int(key["second_atom_type"])}
        items.append((k, SimpleNamespace(values=summed, samples=SimpleNamespace(values=centres))))
    return _Items(items)


class _Items(list):
    def items(self):
        return iter(self)
