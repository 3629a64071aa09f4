"""Δ-learning of spectra (DOS, XANES, ... on a grid): what the ``delta`` kind needs beyond Cartesian targets.

Allowed with the spectrum kind's plain ``l2`` loss only: the model is then linear in the labels (kernel
regression per grid point plus a per-element baseline), so learning ``KEY - BASELINE`` on the target's
grid and adding the baseline back is well defined. The ``shift`` and ``align`` losses move each
*target* spectrum in energy during the fit; a difference of two spectra has no such energy reference
unless the baseline is moved with it, so they stay refused. The baseline spectrum must be on the
model's grid (a recorded ``BASELINE_grid`` or ``BASELINE_emin/_emax/_npts`` that differs is refused:
interpolate it beforehand, e.g. with the reader of ``fit-spectrum``).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from psilearn.data.errors import DataError, frame_location
from psilearn.errors import ConfigError

SHIFT_LOSSES_REFUSED = ("the spectrum losses 'shift' and 'align' move each target spectrum in energy during the fit; a "
                        "difference of two spectra has no energy reference of its own unless the baseline moves with it, so "
                        "Δ-learning of spectra takes the plain loss 'l2' only (--loss l2)")


def check_spectrum_inner(target, inner) -> None:
    """ConfigError unless a spectrum target is learned by the spectrum kind with loss 'l2' (``inner``:
    the inner model, or None before it is built)."""
    if not getattr(target, "is_spectrum", False):
        return
    if inner is not None and inner.kind != "spectrum":
        raise ConfigError(f"the delta model of the spectrum {target.key!r} needs the spectrum kind inside, not {inner.kind!r}")
    loss = getattr(getattr(inner, "config", None), "loss", "l2")
    if loss != "l2":
        raise ConfigError(f"--baseline with --loss {loss}: {SHIFT_LOSSES_REFUSED}")


def check_baseline_grid(frames: list[Atoms], target, key: str) -> None:
    """DataError (one line: file, frame, key) for a baseline spectrum whose recorded grid is not the target's."""
    if not getattr(target, "is_spectrum", False):
        return
    from psilearn.data.grids import frame_grid, same_grid

    grid = np.asarray(target.grid, dtype=np.float64)
    for i, a in enumerate(frames):
        g = frame_grid(a, key)
        if g is not None and not same_grid(g, grid):
            raise DataError(f"{frame_location(a, i)}: the baseline spectrum {key!r} is on another grid ({len(g)} points, "
                            f"{g[0]:g}..{g[-1]:g}) than the model's ({len(grid)} points, {grid[0]:g}..{grid[-1]:g}); "
                            "Δ-learning needs the baseline on the target's grid")
