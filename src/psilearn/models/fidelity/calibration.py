"""An affine calibration of one level on the level below: the model of a source such as an experiment,
whose values are a scaled and shifted, noisy view of a computed level.

    y_source(x) = rho * m_below(x) + c + noise,

with one scale rho per irreducible block of the Target (exactly equivariant for any value), an offset c
only on invariant blocks (l = 0, even: an offset of a vector or of an anisotropic part would pick a
direction in space), and one noise standard deviation per block, the RMS residual of the fit. Fitted by
least squares over the source's samples (with intercept on invariant blocks, through the origin
elsewhere). No correction is learned for such a level: it is a calibration, not a model of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psilearn.targets import Target


def scale_through_origin(y: np.ndarray, m: np.ndarray) -> float:
    """The least-squares rho of y = rho * m over all entries (0 when m is zero)."""
    den = float(np.sum(m * m))
    return float(np.sum(m * y)) / den if den > 0 else 0.0


@dataclass
class AffineCalibration:
    """``rho`` (n_blocks,) scales, ``offset`` (n_irreps,) in the irreps basis (zero outside invariant
    blocks), ``noise`` (n_blocks,) standard deviation of the residual of each block's components."""

    rho: np.ndarray
    offset: np.ndarray
    noise: np.ndarray

    @classmethod
    def fit(cls, target: Target, y_irreps: np.ndarray, below_irreps: np.ndarray) -> "AffineCalibration":
        """Least squares of the source ``y_irreps`` (n, n_irreps) on the level below (same shape)."""
        n_irr = y_irreps.shape[1]
        rho, noise, offset = np.zeros(len(target.blocks)), np.zeros(len(target.blocks)), np.zeros(n_irr)
        for b, blk in enumerate(target.blocks):
            m, y = below_irreps[:, blk.cols], y_irreps[:, blk.cols]
            if blk.l == 0 and blk.p == 1 and len(y) > 1:
                design = np.column_stack([m.ravel(), np.ones(m.size)])
                (rho[b], c), *_ = np.linalg.lstsq(design, y.ravel(), rcond=None)
                offset[blk.cols] = c
            else:
                rho[b] = scale_through_origin(y, m)
            resid = y - rho[b] * m - offset[blk.cols]
            noise[b] = float(np.sqrt(np.mean(resid**2))) if resid.size else 0.0
        return cls(rho, offset, noise)

    def noise_covariance(self, target: Target) -> np.ndarray:
        """(D, D) Cartesian covariance of the source's noise (D = 3**rank), independent per irreps component."""
        var = np.zeros(len(self.offset))
        for b, blk in enumerate(target.blocks):
            var[blk.cols] = self.noise[b] ** 2
        m = target.to_cartesian(np.eye(len(var)))  # (n_irreps, D): row i = irreps basis vector i in Cartesian
        return m.T @ (var[:, None] * m)

    def offset_cartesian(self, target: Target) -> np.ndarray:
        """(D,) the offset in Cartesian components."""
        return target.to_cartesian(self.offset[None, :])[0]

    def record(self, target: Target) -> dict:
        """JSON-able summary: scale and noise per block (named by its irrep), Cartesian offset."""
        names = [blk.name for blk in target.blocks]
        return {"rho": dict(zip(names, self.rho.tolist())), "noise_std": dict(zip(names, self.noise.tolist())),
                "offset_cartesian": self.offset_cartesian(target).tolist()}
