"""The ``hamiltonian-sagpr`` model kind: sparse SA-GPR of AO Fock/Kohn-Sham matrices (small data).

Every on-site block F_ii and every ordered pair block F_ij (i != j, atoms closer than the largest
``soap.cutoff``) is predicted from its centre's lambda-SOAP (:mod:`psilearn.features.pair_soap`: atom i,
with atom j as a tagged partner for a pair) by one sparse SA-GPR per block type and irrep channel
(:mod:`psilearn.models.hamiltonian_kernel.blocks`). F_ij = (P_ij + P_ji^T) / 2 from the two ordered
predictions, so F is symmetric and permutation-equivariant by construction; the kernels make every
block exactly O(3)-equivariant. Pairs farther apart than the cutoff get zero blocks; the error that alone
causes is measured on the held-out structures and stored as ``cutoff_truncation`` (as for the
``hamiltonian`` network kind).

fit(HamiltonianDataset) -> self; predict(frames) -> HamiltonianPrediction (Hartree, PySCF's AO order).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from psilearn.data.errors import DataError, frame_location
from psilearn.data.hamiltonian import check_prediction_inputs, truncated
from psilearn.data.prediction import HamiltonianPrediction
from psilearn.data.splits import random_split
from psilearn.features import SoapConfig
from psilearn.features.pair_soap import BlockKey, PairSoap, block_centres
from psilearn.metrics.hamiltonian import dataset_metrics
from psilearn.models.base import Model
from psilearn.models.checks import check_training_data
from psilearn.models.hamiltonian_kernel.blocks import BlockTypeFit, fit_block_type, predict_block_type
from psilearn.models.hamiltonian_kernel.config import HamiltonianKernelConfig
from psilearn.targets.hamiltonian import HamiltonianTarget


def _name(key: BlockKey) -> str:
    zi, zj, onsite = key
    return f"{chemical_symbols[zi]}-{chemical_symbols[zj]}-{'onsite' if onsite else 'pair'}"


@dataclass
class HamiltonianKernelModel(Model):
    """Sparse SA-GPR for a :class:`~psilearn.targets.HamiltonianTarget`.

    >>> model = HamiltonianKernelModel(target).fit(load_hamiltonian_dataset("labelled.xyz"))
    >>> model.predict(frames).matrices[0]   # (n_ao, n_ao) Hartree, PySCF's AO order
    """

    target: HamiltonianTarget
    soap: SoapConfig = field(default_factory=SoapConfig)
    config: HamiltonianKernelConfig = field(default_factory=HamiltonianKernelConfig)
    seed: int = 0
    progress: bool = False
    species: list[int] = field(default_factory=list)
    fits: dict[BlockKey, BlockTypeFit] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    #: set by a Δ model for one fit (not saved): held-out indices -> (the dataset of the sums, the baseline
    #: matrices to add to the predicted corrections), so that the held-out record is that of the sum
    heldout_offset: Callable[[np.ndarray], tuple] | None = field(default=None, repr=False)

    kind: ClassVar[str] = "hamiltonian-sagpr"
    config_options: ClassVar[dict[str, type]] = {"soap": SoapConfig, "model": HamiltonianKernelConfig}

    def __post_init__(self) -> None:
        if getattr(self.target, "kind", None) != "hamiltonian":
            raise ValueError(f"the hamiltonian-sagpr model learns hamiltonian targets (psilearn fit --hamiltonian), not {self.target.describe()}")
        self._cache: dict = {}

    @classmethod
    def from_options(cls, target, options: dict, seed: int, progress: bool) -> "HamiltonianKernelModel":
        return cls(target, options["soap"], options["model"], seed=seed, progress=progress)

    @property
    def cutoff(self) -> float:
        """Angstrom: pairs closer than this get predicted blocks (the largest SOAP cutoff)."""
        return max(self.soap.cutoffs)

    def _features(self) -> PairSoap:
        return PairSoap(self.soap, self.species)

    def check_elements(self, frames: list[Atoms]) -> None:
        """DataError naming file and frame: elements the model never saw, inputs labelled in another
        basis, periodic structures."""
        check_prediction_inputs(frames, self.target, self.kind)
        super().check_elements(frames)

    # ---- fitting -----------------------------------------------------------------------------------
    def fit(self, data) -> "HamiltonianKernelModel":
        """Fit on a HamiltonianDataset of this model's target (first on all but the held-out
        structures, for the stored error estimate, then on all of them). Returns self."""
        check_training_data(self.target, data, why="(hamiltonian-sagpr)")
        t0 = time.perf_counter()
        self.species = data.species
        held: dict = {}
        if self.config.holdout > 0 and len(data) >= 4:
            tr, va = random_split(len(data), self.config.holdout, self.seed)
            self._fit_on(data.subset(tr))
            held = self._heldout(data, va, len(tr))
        self._fit_on(data)
        self.metadata = {
            "n_train_structures": len(data), "n_train_samples": int(sum(f.n_train for f in self.fits.values())),
            "training_data_sha256": data.fingerprint(), "training_data": data.name,
            "fit_seconds": round(time.perf_counter() - t0, 3), "composition_baseline": None,
            "n_parameters": int(sum(c.coef.size for f in self.fits.values() for c in f.channels)),
            "block_types": {_name(k): {"centres": f.n_train, "sparse": len(f.sparse)} for k, f in self.fits.items()},
            **held,
        }
        return self

    def _fit_on(self, data) -> None:
        soap = self._features()
        centres = block_centres(data.frames, self.cutoff)
        coefficients = soap.coefficients(data.frames, centres, progress=self.progress)
        self.fits, self._cache = {}, {}
        keys = list(centres)
        if self.progress:
            from tqdm.auto import tqdm

            keys = tqdm(keys, desc="block types", unit="type", leave=False)
        for key in keys:
            values = self._irreps(data, centres[key], key)
            layout = self.target.pair_layout(chemical_symbols[key[0]], chemical_symbols[key[1]], onsite=key[2])
            self.fits[key] = fit_block_type(soap, key, coefficients[key], values, layout, self.config)

    def _irreps(self, data, centres: np.ndarray, key: BlockKey) -> np.ndarray:
        """(n, size) coupled irreps of the labelled blocks F_ij of ``centres`` (structure, i, j)."""
        couple = self.target.coupling_maps(chemical_symbols[key[0]], chemical_symbols[key[1]], onsite=key[2])[0]
        offsets = {s: self.target.offsets(data.frames[s]) for s in np.unique(centres[:, 0])}
        blocks = [data.matrix(s)[offsets[s][i] : offsets[s][i + 1], offsets[s][j] : offsets[s][j + 1]].ravel() for s, i, j in centres]
        return np.array(blocks).reshape(len(centres), -1) @ couple.T

    def _heldout(self, data, va: np.ndarray, n_train: int) -> dict:
        """Held-out metrics of the structures ``va`` of ``data`` by a model fitted without them, and the
        cutoff's truncation error on them (Hartree); of the sum with :attr:`heldout_offset`."""
        ref = data.subset(va)
        pred = self._matrices(ref.frames)
        how = f"held-out split ({len(va)} structures; fitted on the other {n_train}, then refitted on all)"
        if self.heldout_offset is not None:
            ref, base = self.heldout_offset(va)
            pred = [b.reshape(p.shape) + p for b, p in zip(base, pred)]
            how += ", of the sum"
        cut = [truncated(self.target, a, ref.matrix(k), self.cutoff) for k, a in enumerate(ref.frames)]
        return {"heldout_metrics": {"method": how, "units": "Hartree", **dataset_metrics(pred, ref)},
                "cutoff_truncation": {"cutoff": self.cutoff, "units": "Hartree", **dataset_metrics(cut, ref)}}

    # ---- prediction --------------------------------------------------------------------------------
    def _check_block_types(self, frames: list[Atoms], centres: dict) -> None:
        for key, c in centres.items():
            if key not in self.fits:
                s, i, j = c[0]
                a = frames[s]
                what = (f"atom {i} ({chemical_symbols[key[0]]})" if key[2] else
                        f"atoms {i} ({chemical_symbols[key[0]]}) and {j} ({chemical_symbols[key[1]]}) are "
                        f"{a.get_distance(i, j):.2f} A apart, but")
                raise DataError(f"{frame_location(a, s)}: {what} the model saw no {_name(key)} block in training "
                                f"(pairs within its cutoff {self.cutoff:g} A)")

    def _matrices(self, frames: list[Atoms]) -> list[np.ndarray]:
        return self._predict_blocks(frames)[0]

    def _predict_blocks(self, frames: list[Atoms]) -> tuple[list[np.ndarray], list[int], list[int]]:
        """F per structure; per structure the number of centres (atoms, ordered pairs) outside the
        training range (less similar to every sparse centre than any training centre was: ``coverage``);
        and per structure the number of atom pairs within the cutoff (half its ordered pair centres)."""
        soap = self._features()
        centres = block_centres(frames, self.cutoff)
        self._check_block_types(frames, centres)
        coefficients = soap.coefficients(frames, centres)
        out = [np.zeros((self.target.n_ao(a),) * 2) for a in frames]
        offsets = [self.target.offsets(a) for a in frames]
        outside, ordered_pairs = np.zeros(len(frames), dtype=int), np.zeros(len(frames), dtype=int)
        for key, c in centres.items():
            pred, similarity = predict_block_type(soap, self.fits[key], coefficients[key], self.config.zeta, self.config.batch_rows,
                                                  self._cache.setdefault(key, {}))
            np.add.at(outside, c[:, 0], similarity < self.fits[key].coverage - 1e-9)
            row, col = chemical_symbols[key[0]], chemical_symbols[key[1]]
            uncouple = self.target.coupling_maps(row, col, onsite=key[2])[1]
            blocks = (pred @ uncouple.T).reshape(len(c), self.target.atom_size(row), self.target.atom_size(col))
            if not key[2]:
                np.add.at(ordered_pairs, c[:, 0], 1)
            for (s, i, j), block in zip(c, blocks):
                off = offsets[s]
                if key[2]:
                    out[s][off[i] : off[i + 1], off[i] : off[i + 1]] = block
                else:  # F_ij = (P_ij + P_ji^T) / 2: each ordered prediction fills half of both blocks
                    out[s][off[i] : off[i + 1], off[j] : off[j + 1]] += 0.5 * block
                    out[s][off[j] : off[j + 1], off[i] : off[i + 1]] += 0.5 * block.T
        # bitwise symmetric (the halves above add in different orders)
        return [0.5 * (f + f.T) for f in out], outside.tolist(), (ordered_pairs // 2).tolist()

    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool) -> HamiltonianPrediction:
        """Matrices in Hartree; std is None (no uncertainty estimate for this kind yet)."""
        if not self.fits:
            raise RuntimeError("model is not fitted")
        if return_cov:
            raise ValueError("the hamiltonian-sagpr model has no predictive covariance")
        n_pairs = [len(a) * (len(a) - 1) // 2 for a in frames]
        matrices, outside, within = self._predict_blocks(frames)
        return HamiltonianPrediction(matrices, self.target.basis, None, n_pairs, within, n_centres_outside=outside)

    # ---- persistence -------------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict]:
        from psilearn.models.hamiltonian_kernel.state import kernel_state

        return kernel_state(self)

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> "HamiltonianKernelModel":
        from psilearn.models.hamiltonian_kernel.state import kernel_from_state

        return kernel_from_state(cls, meta, arrays)
