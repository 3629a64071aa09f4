"""The ``density`` model kind: SALTED-style sparse GPR of density-fitting coefficients.

Coefficients c_{i,n,l,m} = Phi_i^{Z,l} w_{Z,l,n} (+ the training mean of the l = 0 coefficients
of each element and radial function), with Phi the RKHS features of lambda-SOAP kernels
(:mod:`psilearn.models.density.rkhs`); the weights minimise sum_s ||c_pred - c_ref||^2 in each
structure's auxiliary-basis metric (Coulomb or overlap, as the labels) plus lambda ||w||^2, with
normal equations accumulated structure by structure (:mod:`psilearn.models.density.normal`), lambda
chosen on held-out structures, and an optional exact electron-count constraint at prediction
(:mod:`psilearn.models.density.constraint`). Predictions are :class:`DensityPrediction` in the
labeler's layout. Grisafi et al., ACS Cent. Sci. 5, 57 (2019); Lewis et al., JCTC 17, 7203 (2021).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from psilearn.data.errors import DataError, frame_location
from psilearn.data.memory import check_allocation
from psilearn.data.prediction import DensityPrediction
from psilearn.features import LambdaSoap, SoapConfig
from psilearn.models.base import Model
from psilearn.models.checks import check_training_data
from psilearn.models.density.config import DensityConfig
from psilearn.models.density.constraint import conserve_electrons, electron_count, structure_metric
from psilearn.models.density.fit import fit_weights
from psilearn.models.density.normal import WEIGHTS_HINT, structure_rows
from psilearn.models.density.rkhs import SparseBasis, atom_kernel, channel, fps_order

log = logging.getLogger("psilearn")


@dataclass
class DensityModel(Model):
    """SALTED-style density model for a :class:`~psilearn.targets.DensityTarget`.

    >>> model = DensityModel(target).fit(load_density_dataset("labelled.xyz"))
    >>> pred = model.predict(frames)  # DensityPrediction: flat coefficients in PySCF's order
    """

    target: object
    soap: SoapConfig = field(default_factory=SoapConfig)
    config: DensityConfig = field(default_factory=DensityConfig)
    progress: bool = False
    species: list[int] = field(default_factory=list)
    sparse_coefficients: dict = field(default_factory=dict)  # Z -> (M_Z, C), farthest-point order
    basis: SparseBasis | None = None
    weights: dict = field(default_factory=dict)  # (Z, l) -> (D_{Z,l}, n_l)
    baseline: dict = field(default_factory=dict)  # Z -> (n_{Z,0},) mean l=0 coefficients
    metadata: dict = field(default_factory=dict)
    posterior: dict | None = None  # density.uncertainty: Cholesky factor of A + lambda I, sigma2, dof, lambda
    _contracted: dict = field(default_factory=dict, repr=False)

    kind: ClassVar[str] = "density"
    config_options: ClassVar[dict[str, type]] = {"soap": SoapConfig, "density": DensityConfig}

    def __post_init__(self) -> None:
        if getattr(self.target, "kind", None) != "density":
            raise ValueError(f"the density model learns density targets (psilearn fit --density), not {self.target.describe()}")

    @classmethod
    def from_options(cls, target, options: dict, seed: int, progress: bool) -> "DensityModel":
        return cls(target, options["soap"], options["density"], progress=progress)

    # ---- layout ------------------------------------------------------------------------------------
    def degrees(self, z: int) -> list[int]:
        return sorted({b.l for b in self.target.blocks_of(chemical_symbols[z])})

    def channels(self) -> list[tuple[int, int]]:
        return sorted({channel(l) for z in self.species for l in self.degrees(z)})

    def check_elements(self, frames: list[Atoms]) -> None:
        """DataError naming file and frame: elements the model never saw or that its aux basis lacks,
        and inputs carrying density labels of another aux basis or metric than the model's."""
        for i, a in enumerate(frames):
            where = frame_location(a, i)
            for name, want in (("density_aux_basis", self.target.aux_basis), ("density_metric", self.target.metric)):
                have = str(a.info.get(name, want)).strip().lower()
                if have != want:
                    raise DataError(f"{where}: the input's density labels use {name.split('_', 1)[1].replace('_', ' ')} "
                                    f"{have!r} but the model was trained on and predicts {want!r}")
            self.target.check_elements(a, where)
        super().check_elements(frames)

    # ---- fitting -----------------------------------------------------------------------------------
    def fit(self, data) -> "DensityModel":
        """Fit on a DensityDataset of this model's target (same aux basis and metric). Returns self."""
        check_training_data(self.target, data)
        t0 = time.perf_counter()
        self.species = data.species
        soap = LambdaSoap(self.soap, self.species)
        self._choose_sparse(soap, data.frames)
        t_sparse = time.perf_counter() - t0
        self._fit_baseline(data)
        record = fit_weights(self, soap, data)
        self._contracted = {}
        self.metadata = {
            "n_train_structures": len(data), "n_train_samples": int(len(data.values)),
            "training_data_sha256": data.fingerprint(), "training_data": data.name,
            "fit_seconds": round(time.perf_counter() - t0, 3), "sparse_seconds": round(t_sparse, 3),
            "composition_baseline": None, "n_sparse": {f"{chemical_symbols[z]}:{l}": m for (z, l), m in self.basis.counts.items()},
            "n_features": {f"{chemical_symbols[z]}:{l}": self.basis.width(z, l) for (z, l) in self.basis.counts},
            **record,
        }
        return self

    def _choose_sparse(self, soap: LambdaSoap, frames: list[Atoms]) -> None:
        """Sparse environments per element by farthest-point sampling of the invariant lambda-SOAP,
        then the RKHS projectors per (element, l). The normal equations' memory is checked once
        their size is known (:func:`~psilearn.models.density.fit.fit_weights`), before the pass
        over the structures."""
        counts_z = {z: int(sum(np.sum(a.numbers == z) for a in frames)) for z in self.species}
        want = {(z, l): self.config.sparse_count(counts_z[z], l) for z in self.species for l in self.degrees(z)}
        kmm = sum(3 * 8 * (m * (2 * l + 1)) ** 2 for (_, l), m in want.items())  # K_MM, eigenvectors, workspace
        check_allocation(soap.estimate_bytes(counts_z, [(0, 1)], True) + kmm,
                         f"density-model sparse environments of {len(frames)} structures", WEIGHTS_HINT)
        feats = soap.compute(frames, [(0, 1)], progress=self.progress, keep_coefficients=True)
        self.sparse_coefficients = {}
        for z in self.species:
            m_z = max(m for (zz, _), m in want.items() if zz == z)
            order = fps_order(feats.blocks[(0, 1)][z][:, 0, :], m_z)
            self.sparse_coefficients[z] = feats.coefficients[z][order]
            for l in self.degrees(z):
                want[(z, l)] = min(want[(z, l)], len(order))
        self.basis = SparseBasis.build(soap, self.sparse_coefficients, want, self.config.zeta, self.config.eigen_tol,
                                       self.config.max_features)

    def _fit_baseline(self, data) -> None:
        """Mean l = 0 coefficient of each element and radial function over the training atoms (the
        only equivariant function of the element alone; every other block has mean-free parts)."""
        sums: dict[int, np.ndarray] = {}
        counts: dict[int, int] = {}
        for i, a in enumerate(data.frames):
            c = data.coefficients(i)
            off = self.target.offsets(a)
            for k, z in enumerate(a.numbers):
                idx = self.target.block_index(chemical_symbols[z], 0)[:, 0]
                sums[int(z)] = sums.get(int(z), 0) + c[off[k] + idx]
                counts[int(z)] = counts.get(int(z), 0) + 1
        self.baseline = {z: sums[z] / counts[z] for z in self.species}

    def baseline_vector(self, atoms: Atoms) -> np.ndarray:
        """The baseline coefficients of a structure (flat; l = 0 only, the same in both bases)."""
        out = np.zeros(self.target.size(atoms))
        off = self.target.offsets(atoms)
        for k, z in enumerate(atoms.numbers):
            out[off[k] + self.target.block_index(chemical_symbols[z], 0)[:, 0]] = self.baseline[int(z)]
        return out

    # ---- prediction --------------------------------------------------------------------------------
    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool, conserve: bool | None = None) -> DensityPrediction:
        """Coefficients in the labeler's layout; with a posterior (``density.uncertainty``) and
        ``return_std``/``return_cov`` also their predictive std and covariance (PySCF order, e and
        e^2; :mod:`psilearn.models.density.uncertainty`), else std None. ``conserve`` overrides
        ``density.conserve_electrons`` (the covariance is projected the same way)."""
        if not self.weights:
            raise RuntimeError("model is not fitted")
        if return_cov and self.posterior is None:
            raise ValueError("this density model has no predictive covariance: fit it with density.uncertainty: true")
        conserve = self.config.conserve_electrons if conserve is None else conserve
        soap = LambdaSoap(self.soap, self.species)
        bs = max(1, self.soap.batch_size)
        out: list[np.ndarray] = []
        covs: list[np.ndarray] | None = [] if self.posterior is not None and (return_std or return_cov) else None
        for start in range(0, len(frames), bs):
            batch = frames[start : start + bs]
            feats = soap.compute(batch, self.channels(), progress=self.progress)
            out += self._predict_batch(feats, batch)
            if covs is not None:
                from psilearn.models.density.uncertainty import structure_covariances

                covs += structure_covariances(self, feats, batch, conserve)
        out, electrons = self.electron_projection(frames, out, conserve)
        std = None if covs is None else [np.sqrt(np.clip(np.diag(c), 0.0, None)) for c in covs]
        return DensityPrediction(out, self.target.aux_basis, self.target.metric, std, electrons,
                                 covs if return_cov else None)

    def electron_projection(self, frames: list[Atoms], coefficients: list[np.ndarray], conserve: bool = True) -> tuple[list, list]:
        """(coefficients, electrons): each flat vector (PySCF's order) replaced, when ``conserve``, by the
        metric-closest one with exactly N electrons (:func:`conserve_electrons`), and its count q^T c (e).
        Also what a delta model applies to baseline + correction."""
        out, electrons = [], []
        for a, c in zip(frames, coefficients):
            s, q = structure_metric(self.target, a)
            c = conserve_electrons(c, s, q, electron_count(a, self.target.core_of(a))) if conserve else c
            out.append(c)
            electrons.append(float(q @ c))
        return out, electrons

    def _predict_batch(self, feats, frames: list[Atoms]) -> list[np.ndarray]:
        irreps = [np.zeros(self.target.size(a)) for a in frames]
        rows = [structure_rows(self.target, a.get_chemical_symbols(), a.numbers) for a in frames]
        for (z, l), u in self._contracted_weights().items():
            xs, x0s = self.basis.sparse(z, l)
            x, x0 = feats.blocks[channel(l)][z], feats.blocks[(0, 1)][z][:, 0, :]
            if len(x) == 0:
                continue
            k = atom_kernel(x, x0, xs, x0s, self.basis.zeta)
            n, d = k.shape[:2]
            pred = (k.reshape(n * d, -1) @ u).reshape(n, d, -1).transpose(0, 2, 1)  # (n, n_l, 2l+1)
            struct = feats.structure[feats.index[z]]
            for s in np.unique(struct):
                irreps[s][rows[s][(z, l)]] = pred[struct == s]
        return [self.target.from_irreps(a, e + self.baseline_vector(a)) for a, e in zip(frames, irreps)]

    def _contracted_weights(self) -> dict:
        """{(Z, l): P W (M_{Z,l}(2l+1), n_l)}: weights on the sparse kernel columns (cached)."""
        if not self._contracted:
            self._contracted = {key: self.basis.projectors[key] @ w for key, w in sorted(self.weights.items())}
        return self._contracted

    # ---- persistence -------------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict]:
        from psilearn.models.density.state import density_state

        return density_state(self)

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> "DensityModel":
        from psilearn.models.density.state import density_from_state

        return density_from_state(cls, meta, arrays)

