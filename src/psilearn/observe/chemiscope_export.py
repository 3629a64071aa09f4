"""chemiscope export: a model's predictions on a set of structures as an interactive map.

:func:`export_chemiscope` writes one chemiscope input file (``.json`` or ``.json.gz``, with the
``chemiscope`` package's own writer) holding the structures, the model's predictions with their
uncertainties, the reference labels and errors when the data carry them, and a 2-D map: the first
two principal components of the invariant lambda-SOAP (0e) features, averaged per structure (or
per atom for per-atom targets). Kernel models use their own SOAP settings; models without a SOAP
descriptor (nn, qeq-nn, baseline) use the default :class:`~psilearn.features.SoapConfig`, which is
not the network's own representation (the file's description says which was used).

Tensors become scalars chemiscope can colour by (:func:`tensor_summaries`): Cartesian components,
the isotropic value and the norm of the anisotropic part (rank 2), the norm (vectors), the norm of
each irreducible part (rank >= 3); each with its predictive standard deviation (``_std``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from psilearn.data import read_structures
from psilearn.data.dataset import extract_values
from psilearn.data.spectra import load_spectrum_dataset
from psilearn.features import LambdaSoap, SoapConfig
from psilearn.metrics.regression import block_names
from psilearn.targets import Target

_XYZ = "xyz"
_MAX_MAP_NUMBERS = 50_000_000  # above (rows x features), features are randomly projected (Johnson-Lindenstrauss) before PCA
_SKETCH = 1024  # ... onto this many dimensions
_CHUNK = 200  # structures per feature computation (bounds memory)


# ---- scalar summaries of tensors ------------------------------------------------------------------
def _norm_and_std(x: np.ndarray, s: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Euclidean norm of the rows of ``x`` and its first-order (delta-method) standard deviation
    from independent component std ``s``."""
    n = np.linalg.norm(x, axis=1)
    if s is None:
        return n, None
    safe = np.where(n > 0, n, 1.0)
    std = np.where(n > 0, np.sqrt(np.sum((x * s) ** 2, axis=1)) / safe, np.sqrt(np.sum(s**2, axis=1)))
    return n, std


def _components(target: Target) -> list[tuple[str, int]]:
    """(name, column) of the Cartesian components worth a property: all of them up to rank 2,
    the upper triangle only for a symmetric rank-2 tensor; none above rank 2."""
    if target.rank == 1:
        return [(c, i) for i, c in enumerate(_XYZ)]
    if target.rank == 2:
        sym = target.tensor.replace(" ", "") == "ij=ji"
        return [(a + b, 3 * i + j) for i, a in enumerate(_XYZ) for j, b in enumerate(_XYZ) if not sym or j >= i]
    return []


def tensor_summaries(target: Target, irreps: np.ndarray, irreps_std: np.ndarray | None = None,
                     cartesian_std: np.ndarray | None = None) -> dict[str, tuple]:
    """{suffix: (values (n,), description)} of scalars summarising the Target's values given in the
    irreducible basis (``irreps``, with optional standard deviations ``irreps_std`` and, exact where
    the irreps are correlated, ``cartesian_std`` for the Cartesian components).

    Suffixes: ``""`` for a scalar; ``_x`` ... / ``_xx`` ... Cartesian components (rank 1 and 2);
    ``_norm`` (vectors); ``_iso`` (trace / 3) and ``_aniso`` (Frobenius norm of the tensor minus its
    isotropic part) for rank 2; ``_|2e|`` etc., the norm of each irreducible part, for rank >= 3.
    Each gets ``..._std`` when ``irreps_std`` is given (norms: first-order propagation, treating the
    irreps components as independent). The irreducible basis is orthonormal, so norms of irreps
    equal Frobenius norms of Cartesian parts."""
    out: dict[str, tuple] = {}
    cart = target.to_cartesian(irreps)
    cart_std = cartesian_std
    if cart_std is None and irreps_std is not None:
        cart_std = target.to_cartesian_std(irreps_std**2)

    def put(suffix, val, std, what):
        out[suffix] = (val, what)
        if std is not None:
            out[f"{suffix}_std"] = (std, f"predictive standard deviation of {what}")

    if target.rank == 0:
        put("", cart[:, 0], None if cart_std is None else cart_std[:, 0], target.key)
        return out
    for name, col in _components(target):
        put(f"_{name}", cart[:, col], None if cart_std is None else cart_std[:, col], f"{target.key} {name} component")
    blocks = list(zip(block_names(target), target.blocks))
    cols = lambda keep: np.concatenate([np.arange(b.start, b.start + b.dim) for n, b in blocks if keep(n, b)] or [np.zeros(0, int)])
    part = lambda idx: (irreps[:, idx], None if irreps_std is None else irreps_std[:, idx])
    if target.rank == 1:
        put("_norm", *_norm_and_std(*part(cols(lambda n, b: True))), f"norm of {target.key}")
    elif target.rank == 2:
        iso = [b for _, b in blocks if b.l == 0]
        if iso:  # the unit 0e irrep is the identity over sqrt(3): trace / 3 = x_0e / sqrt(3)
            c = 1.0 / np.sqrt(3.0)
            x, s = part(np.array([iso[0].start]))
            put("_iso", c * x[:, 0], None if s is None else c * s[:, 0], f"isotropic {target.key} (trace / 3)")
        put("_aniso", *_norm_and_std(*part(cols(lambda n, b: b.l > 0))),
            f"anisotropy of {target.key}: Frobenius norm of the tensor minus its isotropic part")
    else:
        for n, b in blocks:
            put(f"_|{n}|", *_norm_and_std(*part(cols(lambda m, _, n=n: m == n))), f"norm of the {n} part of {target.key}")
    if cart_std is not None:
        out["_std_rms"] = (np.sqrt(np.mean(cart_std**2, axis=1)), f"RMS predictive standard deviation of the {target.key} components")
    return out


def main_property(target: Target) -> str:
    """The suffix of the summary a map is coloured by by default."""
    if target.is_spectrum:
        return "_integral"
    if target.rank == 0:
        return ""
    if target.rank == 1:
        return "_norm"
    if target.rank == 2:
        return "_iso" if any(b.l == 0 for b in target.blocks) else "_aniso"
    return f"_|{block_names(target)[0]}|"


# ---- the map -------------------------------------------------------------------------------------
def _map_soap(model) -> tuple[SoapConfig, str]:
    soap = getattr(model, "soap", None)
    if isinstance(soap, SoapConfig):
        return soap, f"the {model.kind} model's own SOAP settings"
    return SoapConfig(), f"default SOAP settings (the {model.kind} model has no SOAP descriptor; its own features are not used)"


def invariant_map(model, frames: list[Atoms], progress: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
    """(scores (n, 2), explained variance fractions (2,), description): PCA of the invariant
    lambda-SOAP (0e) features, averaged per structure (over the absorber atoms for an
    absorber-centred spectrum), or one row per atom for per-atom targets."""
    from tqdm.auto import tqdm

    target = model.target
    soap, which = _map_soap(model)
    calc = LambdaSoap(soap, model.species)
    rows, sketch = [], None
    absorber = getattr(target, "absorber", "")
    n_rows = len(frames) if target.per == "structure" else sum(len(a) for a in frames)
    for start in tqdm(range(0, len(frames), _CHUNK), desc="map features", unit="batch", disable=not progress, leave=False):
        chunk = frames[start : start + _CHUNK]
        feats = calc.compute(chunk, [(0, 1)])
        x = np.zeros((len(feats.numbers), feats.blocks[(0, 1)][calc.species[0]].shape[-1]))
        for z, idx in feats.index.items():
            x[idx] = feats.blocks[(0, 1)][z][:, 0, :]
        if target.per == "structure":
            w = np.ones(len(x)) if not absorber else (feats.numbers == _atomic_number(absorber)).astype(float)
            sums = np.zeros((len(chunk), x.shape[1]))
            np.add.at(sums, feats.structure, w[:, None] * x)
            counts = np.bincount(feats.structure, weights=w, minlength=len(chunk))
            x = sums / np.maximum(counts, 1e-300)[:, None]
        if x.shape[1] > _SKETCH and n_rows * x.shape[1] > _MAX_MAP_NUMBERS:
            if sketch is None:
                sketch = np.random.default_rng(0).normal(size=(x.shape[1], _SKETCH)) / np.sqrt(_SKETCH)
            x = x @ sketch
        rows.append(x)
    x = np.concatenate(rows)
    scores, explained = _pca2(x)
    where = "per atom" if target.per == "atom" else ("averaged over the absorber atoms" if absorber else "averaged per structure")
    desc = f"PCA of the invariant lambda-SOAP (0e) features {where}, with {which}"
    if sketch is not None:
        desc += f"; features randomly projected to {_SKETCH} dimensions first (memory)"
    return scores, explained, desc


def _atomic_number(symbol: str) -> int:
    from ase.data import atomic_numbers

    return atomic_numbers[symbol]


def _pca2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First two principal-component scores of the rows of ``x`` and their explained variance fractions."""
    xc = x - x.mean(0)
    scores, explained = np.zeros((len(x), 2)), np.zeros(2)
    if len(x) < 2:
        return scores, explained
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    k = min(2, len(s))
    scores[:, :k] = u[:, :k] * s[:k]
    total = float(np.sum(s**2))
    if total > 0:
        explained[:k] = s[:k] ** 2 / total
    return scores, explained


# ---- properties ----------------------------------------------------------------------------------
def _reference(frames: list[Atoms], target: Target) -> tuple[np.ndarray | None, int]:
    """The Target's labels in ``frames`` (Cartesian, one row per sample) and the number of structures
    that carry them; rows of structures without the labels are NaN (shown as missing by chemiscope).
    None when no structure carries them."""
    store = (lambda a: a.info) if target.per == "structure" else (lambda a: a.arrays)
    have = [i for i, a in enumerate(frames) if target.key in store(a)]
    if not have:
        return None, 0
    sub = [frames[i] for i in have]
    # spectra on the model's grid (interpolated, with a warning, from another recorded grid)
    values = load_spectrum_dataset(sub, target).values if target.is_spectrum else extract_values(sub, target)
    if len(have) == len(frames):
        return values, len(have)
    sizes = np.ones(len(frames), int) if target.per == "structure" else np.array([len(a) for a in frames])
    starts = np.concatenate([[0], np.cumsum(sizes)])
    rows = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in have])
    out = np.full((int(starts[-1]), values.shape[1]), np.nan)
    out[rows] = values
    return out, len(have)


def _prop(values, description: str, units: str = "", **extra) -> dict:
    entry = {"values": np.asarray(values, float), "description": description, **extra}
    if units:
        entry["units"] = units
    return entry


def _spectrum_properties(target: Target, pred, ref: np.ndarray | None) -> tuple[dict, dict]:
    """Spectra as multidimensional properties (curves in chemiscope's info panel) plus scalars."""
    key, u, grid = target.key, target.units, np.asarray(target.grid)
    param = f"{key}_grid"
    parameters = {param: {"values": grid, "name": param, "units": target.grid_units}}
    props = {key: _prop(pred.values, f"predicted {key}", u, parameters=[param]),
             f"{key}_integral": _prop(np.trapezoid(pred.values, grid, axis=1), f"integral of the predicted {key} over the grid"),
             f"{key}_peak": _prop(grid[np.argmax(pred.values, axis=1)], f"grid position of the maximum of the predicted {key}", target.grid_units),
             f"{key}_std_rms": _prop(np.sqrt(np.mean(pred.std**2, axis=1)), f"RMS predictive standard deviation of {key}", u)}
    if ref is not None:
        props[f"{key}_reference"] = _prop(ref, f"reference {key}", u, parameters=[param])
        props[f"{key}_error_rms"] = _prop(np.sqrt(np.mean((pred.values - ref) ** 2, axis=1)), f"RMS error of the predicted {key}", u)
    return props, parameters


def _tensor_properties(target: Target, pred, ref: np.ndarray | None) -> dict:
    key, u = target.key, target.units
    props = {f"{key}{s}": _prop(v, f"predicted {d}", u) for s, (v, d) in tensor_summaries(target, pred.irreps, pred.irreps_std, pred.std).items()}
    if ref is not None:
        for s, (v, d) in tensor_summaries(target, target.to_irreps(ref)).items():
            props[f"{key}_reference{s}"] = _prop(v, f"reference {d}", u)
        err = pred.values - ref
        if target.rank == 0:
            props[f"{key}_error"] = _prop(err[:, 0], f"predicted minus reference {key}", u)
        else:
            props[f"{key}_error_rms"] = _prop(np.sqrt(np.mean(err**2, axis=1)), f"RMS error of the {key} components", u)
    return props


def chemiscope_properties(model, frames: list[Atoms], pred, ref: np.ndarray | None) -> tuple[dict, dict]:
    """(properties, parameters) in chemiscope's format for the prediction ``pred`` of ``model``
    on ``frames`` (reference labels ``ref``, Cartesian, or None); the map is added separately.
    By-products of the prediction (e.g. the QEq charges of a dipole model) are included as well."""
    target = model.target
    if target.is_spectrum:
        props, parameters = _spectrum_properties(target, pred, ref)
    else:
        props, parameters = _tensor_properties(target, pred, ref), {}
    for p in props.values():
        p["target"] = target.per
    extras = [("structure", getattr(pred, "extra_info", {}), len(frames)),
              ("atom", getattr(pred, "extra_arrays", {}), sum(len(a) for a in frames))]
    for per, named, n in extras:
        for name, values in named.items():
            v = np.asarray(values, float).reshape(n, -1)
            props.setdefault(name, _prop(v[:, 0] if v.shape[1] == 1 else v, f"predicted {name} (by-product of the model)", target=per))
    return props, parameters


# ---- the export ----------------------------------------------------------------------------------
def _check_output(path: Path, data) -> None:
    if not (path.name.endswith(".json") or path.name.endswith(".json.gz")):
        raise ValueError(f"{path}: a chemiscope file must end in .json or .json.gz")
    if isinstance(data, (str, Path)):
        for src in {Path(str(data)), Path(str(data).rsplit("@", 1)[0])}:
            if src.exists() and src.resolve() == path.resolve():
                raise ValueError(f"{path}: the output is the input data file; choose another name")


def export_chemiscope(model, data, path, *, name: str = "", progress: bool = False) -> dict:
    """Write a chemiscope input file for ``model`` (a fitted model or a model path) on ``data`` (a
    structure file spec such as ``test.xyz@:100``, or a list of Atoms) to ``path`` (``.json`` or
    ``.json.gz``). Returns a summary: path, number of structures and atoms, property names, the map's
    description and explained variance, whether reference labels were found."""
    import chemiscope

    from psilearn.models import load

    path = Path(path)
    _check_output(path, data)
    if isinstance(model, (str, Path)):
        model = load(model)
    frames = read_structures(data) if isinstance(data, (str, Path)) else list(data)
    target = model.target
    if target.per == "pair":  # chemiscope shows properties of structures and atoms, not of pairs
        from psilearn.errors import ConfigError

        raise ConfigError(f"{target.key!r} is a per-pair target: chemiscope shows per-structure and per-atom properties only; "
                          f"use psilearn predict (KEY_pairs, KEY, KEY_std in the output file)")
    pred = model.predict(frames, return_std=True)
    ref, n_ref = _reference(frames, target)
    props, parameters = chemiscope_properties(model, frames, pred, ref)
    scores, explained, map_desc = invariant_map(model, frames, progress=progress)
    for k in range(2):
        props[f"PCA[{k + 1}]"] = {"target": target.per, "values": scores[:, k],
                                  "description": f"principal component {k + 1} ({100 * explained[k]:.1f}% of the variance): {map_desc}"}
    color = f"{target.key}{main_property(target)}"
    has_atoms = any(p["target"] == "atom" for p in props.values())
    settings = chemiscope.quick_settings(x="PCA[1]", y="PCA[2]", map_color=color, structure_color=color if target.per == "atom" else None,
                                         target=target.per, periodic=bool(any(a.pbc.any() and a.cell.rank == 3 for a in frames)))
    meta = {"name": name or f"{target.key}: {model.kind} model predictions",
            "description": (f"Predictions of a psilearn {model.kind} model of {target.describe()} on {len(frames)} structures"
                            f"{' from ' + str(data) if isinstance(data, (str, Path)) else ''}; "
                            f"{_reference_note(n_ref, len(frames))}. "
                            f"Map: {map_desc}. Uncertainties are predictive standard deviations (_std).")}
    path.parent.mkdir(parents=True, exist_ok=True)
    environments = chemiscope.all_atomic_environments(frames, cutoff=max(_map_soap(model)[0].cutoffs)) if has_atoms else None
    chemiscope.write_input(str(path), structures=frames, properties=props, environments=environments, settings=settings,
                           metadata=meta, parameters=parameters or None)
    return {"path": str(path), "n_structures": len(frames), "n_atoms": int(sum(len(a) for a in frames)),
            "properties": sorted(props), "map": map_desc, "explained": explained.tolist(), "reference": ref is not None,
            "n_reference": n_ref, "reference_note": _reference_note(n_ref, len(frames)), "color": color}


def _reference_note(n_ref: int, n: int) -> str:
    if n_ref == 0:
        return "no reference labels in the data"
    if n_ref == n:
        return "reference labels and errors included"
    return f"reference labels and errors included for the {n_ref} of {n} structures that carry them (missing elsewhere)"
