"""IR and Raman spectra of a trajectory: dipoles or polarizabilities along it, from a model or from
labels stored in the frames, turned into a vibrational spectrum (what ``psilearn spectrum`` runs).

>>> from psilearn.observe.trajectory import trajectory_spectrum
>>> spec = trajectory_spectrum("ir", "traj.xyz", model="mu.model")      # or key="mu"
>>> spec.to_csv("ir.csv"); spec.peak_positions(n_peaks=6)
"""

from __future__ import annotations

import numpy as np

from psilearn.observe.vibrational import SpectrumOptions, VibrationalSpectrum

#: spectrum kind -> (accepted tensor formulas, property, Cartesian components)
PROPERTIES = {"ir": (("i",), "dipole", 3), "raman": (("ij=ji", "ij"), "polarizability", 9)}


def recorded_interval(frames, where: str = "the trajectory") -> float | None:
    """Time between frames in fs as recorded by ``psilearn md``: the ``md_step`` difference of
    consecutive frames times ``md_timestep_fs`` (so a stride, or a ``@::2`` selection, counts);
    None when no frame records both. ValueError for frames that are not evenly spaced in time
    (e.g. two trajectories concatenated) or that record it only in part."""
    has = [f.info.get("md_step") is not None and f.info.get("md_timestep_fs") is not None for f in frames]
    if not any(has):
        return None
    if not all(has):
        raise ValueError(f"{where}: md_step/md_timestep_fs are recorded on some frames only; the time between frames is unknown")
    steps = [f.info["md_step"] for f in frames]
    dt = {float(f.info["md_timestep_fs"]) for f in frames}
    if len(dt) > 1:
        raise ValueError(f"{where}: frames record different MD time steps ({', '.join(f'{x:g}' for x in sorted(dt))} fs)")
    if len(frames) < 2:
        raise ValueError(f"{where}: one frame: no time series")
    diffs = np.diff(np.asarray(steps, dtype=float))
    bad = np.flatnonzero((diffs <= 0) | (diffs != diffs[0]))
    if len(bad):
        k = int(bad[0]) + 1
        raise ValueError(f"{where}: frames are not evenly spaced in time: md_step goes {steps[0]}, {steps[1]}, ... but from "
                         f"{steps[k - 1]} to {steps[k]} at frame {k}; a spectrum needs one trajectory with a constant stride")
    return float(diffs[0]) * dt.pop()


def frame_interval(frames, given: float | None = None, where: str = "the trajectory") -> float:
    """Time between frames in fs: the interval recorded in the frames (:func:`recorded_interval`,
    as ``psilearn md`` writes it); ``given`` (``--timestep``) only where the frames record none.
    A ``given`` value that disagrees with the recorded one is an error naming both."""
    recorded = recorded_interval(frames, where)
    if recorded is None:
        if given is None:
            raise ValueError(f"give --timestep FS (time between frames); {where} does not record md_step/md_timestep_fs")
        return float(given)
    if given is not None and not np.isclose(float(given), recorded, rtol=1e-9, atol=0.0):
        step = float(frames[1].info["md_step"]) - float(frames[0].info["md_step"])
        raise ValueError(f"--timestep {float(given):g} fs disagrees with the time between frames recorded in {where}: "
                         f"{recorded:g} fs (md_step every {step:g} steps x md_timestep_fs {float(frames[0].info['md_timestep_fs']):g} fs); "
                         "omit --timestep")
    return recorded


def stored_series(frames, key: str) -> np.ndarray:
    """(n_frames, n) values of ``info[key]`` along the trajectory."""
    try:
        return np.array([np.asarray(f.info[key], dtype=float).reshape(-1) for f in frames])
    except KeyError:
        raise ValueError(f"trajectory frames have no info[{key!r}]") from None


def _is_path(model) -> bool:
    return isinstance(model, str) or hasattr(model, "__fspath__")


def _check_model(model, name: str, kind: str) -> None:
    t = model.target
    formulas, what, _ = PROPERTIES[kind]
    if getattr(t, "is_spectrum", False) or t.tensor not in formulas:
        raise ValueError(f"{name}: the model's target {t.describe()} is not a {what} (need tensor {' or '.join(formulas)})")
    if t.parity != 1:
        raise ValueError(f"{name}: the target is axial (pseudo-tensor); a {what} is polar")


def predicted_series(frames, model, kind: str, batch: int = 200, progress: bool = True) -> tuple[np.ndarray, str]:
    """(n_frames, 3 or 9) dipoles or polarizabilities predicted by ``model`` (a Model or a model
    directory) along ``frames`` in batches, per-atom contributions (e.g. Wannier-centre dipoles)
    summed per frame; and their units."""
    from psilearn.models import load

    name = str(model) if _is_path(model) else model.kind
    model = load(model) if _is_path(model) else model
    _check_model(model, name, kind)
    _, what, size = PROPERTIES[kind]
    t = model.target
    model.progress = progress
    batch = max(1, int(batch))
    starts = range(0, len(frames), batch)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"predicting {what}", unit="batch")
    out = []
    for start in starts:
        chunk = frames[start : start + batch]
        pred = model.predict(chunk, return_std=False).values
        if t.per == "atom":
            owner = np.repeat(np.arange(len(chunk)), [len(a) for a in chunk])
            summed = np.zeros((len(chunk), pred.shape[1]))
            np.add.at(summed, owner, pred)
            pred = summed
        out.append(pred)
    vals = np.concatenate(out)
    if vals.shape[1] != size:
        raise ValueError(f"{name}: predictions have {vals.shape[1]} components, a {what} needs {size}")
    return vals, t.units or "model units"


def trajectory_spectrum(kind: str, trajectory, *, model=None, key: str | None = None, timestep_fs: float | None = None,
                        batch: int = 200, progress: bool = True, **options) -> VibrationalSpectrum:
    """IR (``kind="ir"``, from dipoles) or Raman (``"raman"``, from polarizabilities) spectrum of
    ``trajectory`` (a path/spec or a list of Atoms), with the property predicted by ``model`` or
    read from ``info[key]`` (exactly one of them). ``timestep_fs``: time between frames, only for
    frames that do not record it (``psilearn md`` records it; a different value is an error). ``options``: the other fields of
    :class:`~psilearn.observe.vibrational.SpectrumOptions` (correlation_fs, window, zero_padding,
    qcf, temperature_k, max_cm1). The source and trajectory are recorded in ``meta``."""
    from psilearn.observe.ir import ir_spectrum
    from psilearn.observe.raman import raman_spectrum

    if kind not in PROPERTIES:
        raise ValueError(f"unknown vibrational spectrum {kind!r}; choose {' or '.join(PROPERTIES)}")
    if (model is None) == (key is None):
        raise ValueError("give either --model MODEL (predict along the trajectory) or --key KEY (use stored labels)")
    if isinstance(trajectory, (list, tuple)):
        frames, where = list(trajectory), "the trajectory"
    else:
        from psilearn.data import read_structures

        frames, where = read_structures(trajectory), str(trajectory)
    opts = SpectrumOptions(timestep_fs=frame_interval(frames, timestep_fs, where), **options)
    if key is not None:
        series, units = stored_series(frames, key), "as stored"
    else:
        series, units = predicted_series(frames, model, kind, batch=batch, progress=progress)
    spec = (ir_spectrum if kind == "ir" else raman_spectrum)(series, opts, units=units)
    spec.meta["source"] = f"info[{key}]" if key is not None else (str(model) if _is_path(model) else model.kind)
    spec.meta["trajectory"] = "<memory>" if isinstance(trajectory, (list, tuple)) else where
    return spec
