"""Kernel charge equilibration: a sparse GP on atomic electronegativities, trained through QEq.

chi_i = b_Z(i) + sum_m k(i, m) w_m (eV/e): an element baseline plus a sparse-GP kernel model on the
invariant SOAP of atom i (:mod:`.chi_kernel`). QEq (:mod:`.qeq`) turns chi into charges with
sum_i q_i = Q (the structure's total charge) exactly, and dipoles mu = f sum_i q_i (r_i - o).
Charges and dipoles are linear in w (:mod:`.linear_maps`), so the model is fitted in closed form
to whatever the user has:

* reference charges (Target per atom, scalar),
* reference dipoles (Target per structure, vector ``i``; charges are latent),
* both (a dipole Target plus ``charges_key``, rows weighted by ``charge_weight``).

With ``atomic_dipoles`` the dipole also gets local atomic dipoles, mu = f sum q r + sum p_i, p_i a
sparse-GP vector model on the l=1 lambda-SOAP (:mod:`.atomic_dipoles`), fitted jointly.

Each observation type is normalised by the RMS of its residual after the baseline; one noise
level and prior amplitude are then chosen by marginal likelihood (or k-fold CV, or fixed), as in
SA-GPR (:class:`psilearn.models._kernel.gpr.SparseGP`). Uncertainties: the GP posterior covariance of chi
is propagated linearly to charges and dipoles; the fitted noise is added to the trained observable.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import ClassVar

import numpy as np
from ase import Atoms

from psilearn.data import Dataset
from psilearn.data.electronic_state import needed_state_mode, structure_states
from psilearn.data.splits import structure_folds
from psilearn.features import LambdaSoap, SoapConfig
from psilearn.models._kernel.gpr import ColumnFit, SparseGP, fixed_regularization
from psilearn.models._kernel.kind import SoapKernelKind
from psilearn.models.base import Model
from psilearn.models.checks import check_training_data
from psilearn.models.composition import element_onehot
from psilearn.models.qeq.atomic_dipoles import DIP_CHANNEL, AtomicDipoleKernel
from psilearn.models.qeq.checks import QEqTargetMixin, check_charge_sums, check_target, is_dipole_target, reference_charges
from psilearn.models.qeq.chi_kernel import CHANNEL, ChiKernel, choose_sparse
from psilearn.models.qeq.config import QEqConfig
from psilearn.models.qeq.linear_maps import QEqMaps
from psilearn.models.qeq.prediction import QEqPrediction
from psilearn.models.qeq.state import qeq_from_state, qeq_state
from psilearn.physics.dipole import dipole_unit_factor
from psilearn.physics.params import QEqParams
from psilearn.targets import Target

log = logging.getLogger("psilearn")

@dataclass
class QEqModel(QEqTargetMixin, SoapKernelKind, Model):
    """Kernel charge-equilibration model (see module docstring).

    >>> model = QEqModel(Target("dipole_vector", tensor="i", units="e*Bohr")).fit(dataset)
    >>> pred = model.predict(frames)   # pred.values: dipoles; pred.charges: QEq charges (e)
    """

    target: Target
    soap: SoapConfig = field(default_factory=SoapConfig)
    config: QEqConfig = field(default_factory=QEqConfig)
    progress: bool = False
    # fitted state
    species: list[int] = field(default_factory=list)
    kernel: ChiKernel | None = None
    gp: SparseGP | None = None
    column: ColumnFit | None = None
    baseline: dict[int, float] = field(default_factory=dict)  # Z -> chi baseline (eV/e)
    dipole_kernel: AtomicDipoleKernel | None = None  # optional atomic dipoles
    noise: dict[str, float] = field(default_factory=dict)  # observation type -> noise variance (its units^2)
    metadata: dict = field(default_factory=dict)

    kind: ClassVar[str] = "qeq"
    config_options: ClassVar[dict[str, type]] = {"soap": SoapConfig, "model": QEqConfig}

    def __post_init__(self) -> None:
        check_target(self.target)
        if self.config.atomic_dipoles and not is_dipole_target(self.target):
            raise ValueError("atomic_dipoles needs a dipole Target (--tensor i): charges alone do not determine them")
        self.params = QEqParams.from_dict(self.config.qeq)
        if self.is_dipole:
            self.dipole_factor = dipole_unit_factor(self.config.dipole_units or self.target.units)
        else:
            self.dipole_factor = 1.0  # charge targets report dipoles in e*Angstrom

    # ---- inputs ----------------------------------------------------------------------------------
    def _states(self, frames: list[Atoms]) -> np.ndarray:
        return structure_states(frames)  # validates charge and multiplicity of every structure

    def _features(self, frames: list[Atoms]):
        channels = [CHANNEL, DIP_CHANNEL] if self.config.atomic_dipoles else [CHANNEL]
        return LambdaSoap(self.soap, self.species).compute(frames, channels, progress=self.progress)

    def _onehot(self, numbers: np.ndarray) -> np.ndarray:
        return element_onehot(numbers, self.species)

    def _reference_charges(self, frames: list[Atoms], key: str, total: np.ndarray) -> np.ndarray:
        return reference_charges(frames, key, total)

    @staticmethod
    def _check_charge_sums(frames, q, total, key, tol: float = 1e-3) -> None:
        check_charge_sums(frames, q, total, key, tol)

    # ---- fitting ---------------------------------------------------------------------------------
    def fit(self, data: Dataset) -> "QEqModel":
        """Fit to a Dataset whose Target is this model's (charges or dipoles). Returns self."""
        check_training_data(self.target, data)
        t0 = time.perf_counter()
        frames = data.frames
        if self.config.global_state == "auto":  # the state kernel when the data mix charge or spin states
            self.config = replace(self.config, global_state="constraint" if needed_state_mode(frames) == "none" else "kernel")
        cfg = self.config
        states = self._states(frames)
        total = states[:, 0]
        self.species = data.species
        feats = self._features(frames)
        t_feat = time.perf_counter() - t0
        width = cfg.state_width if cfg.global_state == "kernel" else None
        chosen = choose_sparse(feats, self.species, cfg.n_sparse, cfg.sparse_method, states if width else None, width or 1.0)
        self.kernel = ChiKernel.select(feats, states, chosen, cfg.zeta, width)
        phi = self.kernel.atoms_sparse(feats, states)  # (n_atoms, M)
        dip_scales = [None]
        if cfg.atomic_dipoles:
            self.dipole_kernel = AtomicDipoleKernel.select(feats, chosen, cfg.zeta, 1.0)
            xp1 = self.dipole_kernel.structure_sparse(feats)  # unit scale; times a below
            dip_scales = sorted(float(a) for a in cfg.atomic_dipole_scales)
        numbers = np.concatenate([a.numbers for a in frames])
        x = np.hstack([phi, self._onehot(numbers)])  # kernel columns, then element baseline columns
        n_s = len(frames)
        k = min(cfg.cv_folds, n_s)
        fold_of_struct = structure_folds(n_s, k, cfg.seed)

        # one linear fit per candidate Gaussian width scale (at the middle atomic-dipole scale), then
        # per atomic-dipole scale at the best width; the k-fold error of the Target decides
        def score(fit):
            return float(np.sqrt(np.mean((fit["cv_values"] - data.values) ** 2)))

        candidates = [float(w) for w in cfg.width_scales] or [self.params.width_scale]
        a_mid = dip_scales[len(dip_scales) // 2]
        best, scores, maps_of = None, {}, {}
        for ws in candidates:
            params = QEqParams.from_dict({**self.params.to_dict(), "width_scale": ws})
            maps_of[ws] = (params, QEqMaps.build(frames, total, params, cfg.origin, cfg.periodic_dipole, progress=self.progress))
            fit = self._fit_linear(data, maps_of[ws][1], x, phi.shape[1], total, fold_of_struct,
                                   None if a_mid is None else a_mid * xp1)
            scores[f"width={ws}"] = score(fit)
            log.info("QEq width_scale %.3g: k-fold RMSE %.4g", ws, score(fit))
            if best is None or score(fit) < score(best[2]):
                best = (ws, a_mid, fit)
        for a in dip_scales:
            if a is None or a == a_mid:
                continue
            fit = self._fit_linear(data, maps_of[best[0]][1], x, phi.shape[1], total, fold_of_struct, a * xp1)
            scores[f"width={best[0]},atomic_dipole_scale={a}"] = score(fit)
            if score(fit) < score(best[2]):
                best = (best[0], a, fit)
        ws, a, fit = best
        self.params = maps_of[ws][0]
        self.config.qeq = {**self.config.qeq, "width_scale": ws}
        if self.dipole_kernel is not None:
            self.dipole_kernel.scale = a
        self.gp, self.column, self.noise = fit["gp"], fit["column"], fit["noise"]
        self.baseline = {int(z): float(c) for z, c in zip(self.species, fit["beta"])}
        from psilearn.metrics.regression import regression_metrics

        t = self.target
        self.metadata = self.training_record(data, t0, **{
            "trained_on": fit["trained_on"],
            "charges_key": cfg.charges_key if "charges" in fit["trained_on"] and self.is_dipole else "",
            "hyperparameter_cv_rmse": scores,
            "atomic_dipole_scale": a,
            "fit_seconds": round(time.perf_counter() - t0, 3),
            "featurize_seconds": round(t_feat, 3),
            "heldout_metrics": {
                "method": f"{k}-fold cross-validation by structure (hyperparameters fixed at their final values)",
                **regression_metrics(t, t.to_irreps(data.values), t.to_irreps(fit["cv_values"])),
            },
        })
        return self

    def _fit_linear(self, data: Dataset, maps: QEqMaps, x: np.ndarray, n_k: int, total: np.ndarray,
                    fold_of_struct: np.ndarray, xp: np.ndarray | None = None) -> dict:
        """Closed-form fit of chi = [Phi | one-hot] w through the QEq maps ``maps``.

        ``x`` (n_atoms, M + n_species): kernel columns then element columns; ``xp`` (n_struct * 3,
        3 M) optional atomic-dipole columns (structure sums, Cartesian rows, label units). Returns
        the GP basis, its ColumnFit, element baseline ``beta``, noise variances per observation
        type, and k-fold predictions ``cv_values`` of the Target (hyperparameters fixed)."""
        cfg, frames = self.config, data.frames
        # observation blocks: name -> [design (rows, M + n_species), y - offset (rows,), weight]
        blocks: dict[str, list] = {}
        n_p = 0 if xp is None else xp.shape[1]
        if self.is_dipole:
            y = data.values.reshape(-1) - maps.dipole_offsets(self.dipole_factor).reshape(-1)
            d = maps.dipole_design(x, self.dipole_factor)
            blocks["dipole"] = [d if xp is None else np.hstack([d[:, :n_k], xp, d[:, n_k:]]), y, 1.0]
            if cfg.charges_key and cfg.charge_weight > 0:
                q = self._reference_charges(frames, cfg.charges_key, total)
                d = maps.charge_design(x)
                if n_p:
                    d = np.hstack([d[:, :n_k], np.zeros((len(d), n_p)), d[:, n_k:]])
                blocks["charges"] = [d, q - maps.charge_offsets(), cfg.charge_weight]
        else:
            self._check_charge_sums(frames, data.values[:, 0], total, self.target.key)
            blocks["charges"] = [maps.charge_design(x), data.values[:, 0] - maps.charge_offsets(), 1.0]

        n_k += n_p  # kernel columns: chi then atomic dipoles; element columns last
        # element baseline of chi (least squares, minimum norm: a common shift of chi is invisible)
        dw = np.vstack([b[0][:, n_k:] * np.sqrt(b[2]) for b in blocks.values()])
        yw = np.concatenate([b[1] * np.sqrt(b[2]) for b in blocks.values()])
        beta = np.linalg.lstsq(dw, yw, rcond=1e-10)[0]
        scales = {}
        for name, b in blocks.items():
            b[1] = b[1] - b[0][:, n_k:] @ beta
            rms = float(np.sqrt(np.mean(b[1] ** 2)))
            scales[name] = rms if rms > 0 else 1.0
        rw = {name: np.sqrt(b[2]) / scales[name] for name, b in blocks.items()}  # row weight per type
        design = np.vstack([b[0][:, :n_k] * rw[name] for name, b in blocks.items()])
        y = np.concatenate([b[1] * rw[name] for name, b in blocks.items()])

        # sparse GP on the whitened kernel basis; regularisation by marginal likelihood / CV
        kmm = self.kernel.sparse_sparse() + (self.dipole_kernel.sparse_sparse() if n_p else [])
        gp, bw = SparseGP.build(design, kmm)
        row_fold = fold_of_struct[np.concatenate([self._row_structures(name, maps) for name in blocks])]
        mode = cfg.regularization
        reg = fixed_regularization(mode)
        column = gp.fit_column(bw, y, reg=reg, folds=row_fold if mode == "cv" else None)
        log.info("QEq fit: reg=%.3g s2=%.3g", column.reg, column.s2)

        # held-out predictions of the main target (k-fold by structure, hyperparameters fixed)
        main = "dipole" if self.is_dipole else "charges"
        _, cv = gp.kfold_residuals(bw, y[:, None], row_fold, np.array([column.reg]))
        start = 0
        for name, b in blocks.items():
            if name == main:
                break
            start += len(b[1])
        rows = slice(start, start + len(blocks[main][1]))
        offset = maps.dipole_offsets(self.dipole_factor).reshape(-1) if self.is_dipole else maps.charge_offsets()
        base = blocks[main][0][:, n_k:] @ beta
        cv_values = (cv[rows, 0] / rw[main] + base + offset).reshape(len(data.values), -1)
        return {"gp": gp, "column": column, "beta": beta, "trained_on": sorted(blocks),
                "noise": {name: column.sigma2 / rw[name] ** 2 for name in blocks}, "cv_values": cv_values}

    def _row_structures(self, name: str, maps: QEqMaps) -> np.ndarray:
        """Structure index of each observation row of type ``name``."""
        if name == "dipole":
            return np.repeat(np.arange(len(maps)), 3)
        return np.repeat(np.arange(len(maps)), np.diff(maps.offsets))

    # ---- prediction ------------------------------------------------------------------------------
    def _predict(self, frames: list[Atoms], return_std: bool, return_cov: bool) -> QEqPrediction:
        """Predict the Target, charges (e), dipoles and energies for ``frames``.

        Returns a :class:`.prediction.QEqPrediction`: ``values``/``std`` are the Target (dipoles
        (n_struct, 3) in the label units, or charges (n_atoms, 1) in e); ``charges`` (n_atoms,),
        ``dipoles`` (n_struct, 3) in the Target's dipole units (e*Angstrom for charge models),
        ``chi`` (n_atoms,) eV/e and energies (eV) are always filled."""
        if self.gp is None:
            raise RuntimeError("model is not fitted")
        cfg = self.config
        states = self._states(frames)
        feats = self._features(frames)
        phi = self.kernel.atoms_sparse(feats, states)
        n_k = phi.shape[1]
        numbers = np.concatenate([a.numbers for a in frames])
        chi = phi @ self.column.coef[:n_k] + self._onehot(numbers) @ np.array([self.baseline[z] for z in self.species])
        maps = QEqMaps.build(frames, states[:, 0], self.params, cfg.origin, cfg.periodic_dipole, progress=self.progress)
        q = maps.charges(chi)
        mu = maps.dipoles(q, self.dipole_factor)
        p_atoms = None
        if self.dipole_kernel is not None:
            p_atoms = (self.dipole_kernel.atoms_sparse(feats) @ self.column.coef[n_k:]).reshape(-1, 3)
            mu = mu + np.add.reduceat(p_atoms, maps.offsets[:-1], axis=0)
        energy = np.array([sys.energy(q[maps.atoms_of(s)], chi[maps.atoms_of(s)]) for s, sys in enumerate(maps.systems)])
        e_es = np.array([sys.electrostatic_energy(q[maps.atoms_of(s)]) for s, sys in enumerate(maps.systems)])
        q_var = np.zeros(len(q))
        mu_cov = np.zeros((len(frames), 3, 3))
        if return_std or return_cov:
            q_var, mu_cov = self._uncertainty(feats, phi, maps)
        t = self.target
        if self.is_dipole:
            values, cov = mu, mu_cov
            if "dipole" in self.noise:
                cov = cov + self.noise["dipole"] * np.eye(3)[None]
        else:
            values = q[:, None]
            if "charges" in self.noise:
                q_var = q_var + self.noise["charges"]
            cov = q_var[:, None, None]
        return QEqPrediction.from_target(
            t, values, cov, return_cov,
            charges=q, charges_std=np.sqrt(np.clip(q_var, 0.0, None)), dipoles=mu,
            dipoles_std=np.sqrt(np.clip(np.einsum("nkk->nk", mu_cov), 0.0, None)), chi=chi,
            energy=energy, electrostatic_energy=e_es, charges_name=self.charges_name,
            dipole_name=t.key if self.is_dipole else "qeq_dipole", atomic_dipoles=p_atoms,
        )

    def _uncertainty(self, feats, phi: np.ndarray, maps: QEqMaps) -> tuple[np.ndarray, np.ndarray]:
        """Posterior variances of the charges (n_atoms,) e^2 and covariance of the dipoles
        (n_struct, 3, 3) in (dipole units)^2 (noise excluded): for any linear function y = T w of
        the weights, cov = s2 * prior(y) - (T P) diag(s2 - d) (T P)^T."""
        col = self.column
        n_k = phi.shape[1]
        t = phi @ self.gp.P[:n_k]  # (n_atoms, r): chi in the posterior basis
        shrink = col.s2 - col.d
        q_var = np.zeros(phi.shape[0])
        mu_cov = np.zeros((len(maps), 3, 3))
        if self.dipole_kernel is not None:
            tp = (self.dipole_kernel.structure_sparse(feats) @ self.gp.P[n_k:]).reshape(len(maps), 3, -1)
            kp = self.dipole_kernel.structure_self(feats)
        for s, sys in enumerate(maps.systems):
            sl = maps.atoms_of(s)
            k_ss = self.kernel.within_structure(feats, s, np.arange(sl.start, sl.stop))
            ts = t[sl]
            lt = -sys.response(ts)  # charges = -L chi: (n_s, r)
            lk = sys.response(sys.response(k_ss).T).T  # L K L
            cov_q = col.s2 * lk - (lt * shrink) @ lt.T
            q_var[sl] = np.diag(cov_q)
            arm = maps.arms[s] * self.dipole_factor
            tm = arm.T @ lt  # (3, r)
            prior = arm.T @ lk @ arm
            if self.dipole_kernel is not None:
                tm = tm + tp[s]
                prior = prior + kp[s]
            mu_cov[s] = col.s2 * prior - (tm * shrink) @ tm.T
        return q_var, mu_cov

    # ---- persistence -----------------------------------------------------------------------------
    def to_state(self) -> tuple[dict, dict]:
        return qeq_state(self)

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> "QEqModel":
        return qeq_from_state(cls, meta, arrays)

    def config_dict(self) -> dict:
        return asdict(self.config)
