"""lambda-SOAP with per-atom collinear magnetic moments as inputs (issue 16, item 2).

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
#: values of the ``magnetic_moments`` option
MOMENT_MODES = ("none", "collinear")


def collinear_moments(frames: list[Atoms], offset: int = 0) -> list[np.ndarray]:
    """The signed moment of every atom, one (n_atoms,) array per frame. DataError (one line naming
    file, frame and key) when a frame has no ``initial_magmoms``, non-collinear (n, 3) moments or
    non-finite values; ``offset`` is added to frame numbers of frames read from no file."""
    out = []
    for i, a in enumerate(frames):
        where = frame_location(a, offset + i)
        if MOMENT_KEY not in a.arrays:
            raise DataError(f"{where}: no per-atom '{MOMENT_KEY}' (the model takes collinear magnetic moments "
                            "as inputs)")
        m = np.asarray(a.arrays[MOMENT_KEY], dtype=np.float64)
        if m.ndim != 1:
            raise DataError(f"{where}: '{MOMENT_KEY}' has shape {m.shape}; collinear moments are one signed "
                            "number per atom (non-collinear vectors are not supported)")
        if not np.all(np.isfinite(m)):
            raise DataError(f"{where}: '{MOMENT_KEY}' holds non-finite values")
        out.append(m)
    return out


def lambda_soap(config: SoapConfig, species: list[int], magnetic_moments: str = "none") -> LambdaSoap:
    """The lambda-SOAP calculator of a model: the ordinary one, or with collinear moments."""
    return MagneticLambdaSoap(config, species) if magnetic_moments == "collinear" else LambdaSoap(config, species)


class MagneticLambdaSoap(LambdaSoap):
    """lambda-SOAP blocks [x (x) x, y (x) y, x (x) m_i y] per scale (see the module docstring)."""

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
        return 2 * super().n_coefficients + 1

    def compute(self, frames: list[Atoms], channels: list[tuple[int, int]], progress: bool = False,
                keep_coefficients: bool = False) -> AtomFeatures:
        """As :meth:`LambdaSoap.compute`, with the moments of ``frames`` (DataError if absent)."""
        channels = sorted(set(channels) | {(0, 1)})
        l_top = max(l for l, _ in channels)
        if l_top > 2 * self.config.max_angular:
            raise ValueError(f"a channel with l={l_top} needs SOAP max_angular >= {(l_top + 1) // 2} "
                             f"(have {self.config.max_angular})")
        moments = np.concatenate(collinear_moments(frames)) if frames else np.zeros(0)
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
        for z in self.species:
            for ch, block in self.from_coefficients(coefficients[z], channels).items():
                feats.blocks.setdefault(ch, {})[z] = block
        if keep_coefficients:
            feats.coefficients = coefficients
        return feats

    def coefficients(self, frames: list[Atoms], moments: np.ndarray, progress: bool = False) -> dict[int, np.ndarray]:
        """{Z: (n_Z, C)} per-atom coefficients [x (all scales), y (all scales), m_i]."""
        from tqdm.auto import tqdm

        featomic = self._featomic()
        numbers = np.concatenate([a.numbers for a in frames]) if frames else np.zeros(0, int)
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in frames])]).astype(int)
        index = {z: np.flatnonzero(numbers == z) for z in self.species}
        half = (self.n_coefficients - 1) // 2
        per_scale = half // len(self.config.cutoffs)
        out = {z: np.zeros((len(index[z]), self.n_coefficients)) for z in self.species}
        for z in self.species:
            out[z][:, -1] = moments[index[z]]
        bs = max(1, self.config.batch_size)
        for start in tqdm(range(0, len(frames), bs), desc="magnetic lambda-SOAP", unit="batch", disable=not progress, leave=False):
            chunk = [_featomic_ready(a, start + j) for j, a in enumerate(frames[start : start + bs])]
            for scale, rc in enumerate(self.config.cutoffs):
                x = self._dense_expansion(self._expansion(rc).compute(chunk), offsets, start, start + len(chunk), index)
                pairs = featomic.SphericalExpansionByPair(**self._expansion_options(rc)).compute(chunk)
                y = self._dense_expansion(_moment_weighted(pairs, moments, offsets, start), offsets, start,
                                          start + len(chunk), index)
                for z, (gidx, xl) in x.items():
                    rows = np.searchsorted(index[z], gidx)
                    c0 = scale * per_scale
                    out[z][rows, c0 : c0 + per_scale] = _flatten(xl)
                    if z in y:
                        out[z][rows, half + c0 : half + c0 + per_scale] = _flatten(y[z][1])
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
        """{(l, sigma): (n, 2l+1, Q)} normalised blocks from coefficients [x, y, m_i] (see :meth:`coefficients`)."""
        coefficients = np.asarray(coefficients, dtype=np.float64)
        n_scales = len(self.config.cutoffs)
        half = (coefficients.shape[1] - 1) // 2
        m = coefficients[:, -1]
        xs = np.split(coefficients[:, :half], n_scales, axis=1)
        ys = np.split(coefficients[:, half : 2 * half], n_scales, axis=1)
        L = self.config.max_angular
        out = {}
        for ch in sorted(set(channels) | {(0, 1)}):
            parts = []
            for xc, yc in zip(xs, ys):
                xl, yl = _unflatten(xc, L), _unflatten(yc, L)
                myl = [m[:, None, None] * y for y in yl]
                parts += [self._couple(xl, *ch), self._couple(yl, *ch), self._cross(xl, myl, *ch)]
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
