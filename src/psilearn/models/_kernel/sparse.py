"""Choosing sparse (representative) environments: farthest-point sampling or CUR, and how many; and
rebuilding their lambda-SOAP blocks from stored expansion coefficients (:func:`rebuild_sparse`).

How many per element (``model.n_sparse``): a number (the same for every element), a mapping by
element symbol (``{H: 800, C: 400}``; elements not named get the data-scaled default), or unset
(None): the data-scaled default

    M_Z = min(n_Z, max(AUTO_MIN, ceil(AUTO_FACTOR * sqrt(n_Z))))

where n_Z is the number of training environments (atoms) of element Z: every environment up to
AUTO_MIN of them, then growing with the square root of their number, so the fit's cost (n M) grows
as n^1.5 rather than n^2 (docs/tuning.md has the measurement behind the constants). A fit whose
default sizes would not fit in memory shrinks them (:func:`shrink_sizes`); explicit sizes never change.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import qr, svd

from psilearn.data.splits import farthest_point_order

#: the data-scaled default (see the module docstring)
AUTO_MIN = 400
AUTO_FACTOR = 10.0
AUTO_RULE = f"min(n_Z, max({AUTO_MIN}, ceil({AUTO_FACTOR:g} * sqrt(n_Z)))) per element Z with n_Z training environments"


def auto_sparse_size(n_env: int) -> int:
    """The data-scaled default number of sparse environments for ``n_env`` environments of one element."""
    return int(min(n_env, max(AUTO_MIN, math.ceil(AUTO_FACTOR * math.sqrt(max(n_env, 0))))))


def sparse_sizes(option, counts: dict[int, int]) -> dict[int, int]:
    """{Z: M_Z} for the training environment counts {Z: n_Z} and the ``n_sparse`` option (an int,
    a {symbol: int} mapping, or None for the data-scaled default)."""
    from ase.data import chemical_symbols

    out = {}
    for z, n in counts.items():
        if option is None or isinstance(option, dict) and chemical_symbols[z] not in option:
            out[z] = auto_sparse_size(n)
        else:
            m = option[chemical_symbols[z]] if isinstance(option, dict) else option
            out[z] = int(min(n, m))
    return out


def is_automatic(option, z: int) -> bool:
    """True when element ``z``'s number of sparse environments comes from the data-scaled default."""
    from ase.data import chemical_symbols

    return option is None or isinstance(option, dict) and chemical_symbols[z] not in option


def shrink_sizes(sizes: dict[int, int], option, factor: float = 0.7) -> dict[int, int] | None:
    """The default (not user-stated) sizes times ``factor`` (at least 1), or None when none can shrink."""
    auto = [z for z in sizes if is_automatic(option, z) and sizes[z] > 1]
    if not auto:
        return None
    return {z: max(1, int(m * factor)) if z in auto else m for z, m in sizes.items()}


def check_elements_known(option, species, key: str = "model.n_sparse") -> None:
    """ConfigError for a per-element mapping naming an element absent from the training data."""
    if not isinstance(option, dict):
        return
    from ase.data import chemical_symbols

    from psilearn.errors import ConfigError

    present = [chemical_symbols[z] for z in sorted(species)]
    extra = [s for s in option if s not in present]
    if extra:
        raise ConfigError(f"{key}: element {extra[0]!r} is not in the training data (elements: {', '.join(present)})")


def select_sparse(x: np.ndarray, n: int, method: str = "fps", dots=None) -> np.ndarray:
    """Indices of up to ``n`` rows of ``x`` (n_envs, Q): ``"fps"`` greedy farthest-point sampling
    (starting from the environment farthest from the mean; ``dots`` as for
    :func:`~psilearn.data.splits.farthest_point_order`), or ``"cur"`` deterministic CUR (rows
    chosen by column-pivoted QR of the leading left singular vectors). Duplicates are never chosen."""
    if len(x) == 0:
        return np.zeros(0, dtype=int)
    n = min(n, len(x))
    if method == "fps":
        first = int(np.argmax(np.linalg.norm(x - x.mean(0), axis=1)))
        return np.sort(farthest_point_order(x, first, n, dots))
    if method == "cur":
        u, s, _ = svd(x, full_matrices=False)
        k = min(n, int(np.sum(s > 1e-10 * s[0])))
        _, _, piv = qr(u[:, :k].T, pivoting=True, mode="economic")
        return np.sort(piv[:k])
    raise ValueError(f"unknown sparse selection {method!r} (use 'fps' or 'cur')")


def select_sparse_by_state(x: np.ndarray, states: np.ndarray | None, n: int, method: str = "fps", width: float = 1.0,
                           dots=None) -> np.ndarray:
    """:func:`select_sparse` for models whose kernel is the structural one times a Gaussian kernel of
    ``width`` on the electronic state (``states`` (n_envs, 2): total charge, unpaired electrons of
    each environment's structure; :mod:`.state_kernel`). ``fps``: farthest-point sampling in that
    product kernel's feature space, d²(i, j) = |x_i|² + |x_j|² − 2 (x_i · x_j) k_s(s_i, s_j), so one
    environment in two states counts as two distant points; ``cur``: the points shared among the
    states in proportion to their environments and chosen within each. Without this, a data set with
    one geometry in several charge states got its sparse points from one state only (structural
    duplicates are never picked) and the state kernel left the other states almost no basis
    (measured: 2 of 400 hydrogen points from the anions of PlusSet + MinusSet). ``states`` None or
    all equal: :func:`select_sparse`. ``dots``: the structural inner products, as for :func:`select_sparse`."""
    if states is None or len(x) == 0:
        return select_sparse(x, n, method, dots)
    from psilearn.models._kernel.state_kernel import state_kernel

    keys, group = np.unique(np.asarray(states, float), axis=0, return_inverse=True)
    group = group.ravel()
    if len(keys) == 1:
        return select_sparse(x, n, method, dots)
    n = min(n, len(x))
    if method == "fps":  # the product kernel's inner products (k_s(s, s) = 1 keeps the diagonal |x_i|^2)
        ks, base = state_kernel(keys, keys, width), dots or (lambda j: x @ x[j])
        return select_sparse(x, n, method, lambda j: base(j) * ks[group, group[j]])
    counts = np.bincount(group, minlength=len(keys))
    share = _proportional_shares(counts, n)
    picked = [np.flatnonzero(group == g)[select_sparse(x[group == g], share[g], method)] for g in range(len(keys)) if share[g]]
    return np.sort(np.concatenate(picked))


def _proportional_shares(counts: np.ndarray, n: int) -> np.ndarray:
    """Integers summing to ``n`` (<= counts.sum()), proportional to ``counts`` by largest remainders,
    each group given one first while ``n`` allows, none above its count."""
    share = np.zeros(len(counts), dtype=int)
    order = np.argsort(-counts, kind="stable")
    for g in order[:n]:
        share[g] = 1
    left = n - share.sum()
    while left > 0:
        room = counts - share
        want = counts / counts.sum() * n - share
        want[room <= 0] = -np.inf
        g = int(np.argmax(want))
        share[g] += 1
        left -= 1
    return share


def rebuild_sparse(model, coefficients: dict[int, np.ndarray]) -> None:
    """The sparse lambda-SOAP blocks of a SOAP-kernel model (its ``_lsoap()``, ``_channel_list()``,
    ``projections``) from their stored expansion coefficients {Z: (M_Z, n_coefficients)}, then the
    feature compression, as at fit time; added to ``model.sparse``. ValueError for coefficients that do
    not match the model's elements or SOAP settings."""
    if set(coefficients) != set(model.species):
        raise ValueError("sparse coefficients do not match the model's elements")
    soap = model._lsoap()
    model.sparse_coefficients = coefficients
    for z, c in coefficients.items():
        if c.shape[1] != soap.n_coefficients:
            raise ValueError(f"sparse coefficients of element {z} have {c.shape[1]} columns, the SOAP settings {soap.n_coefficients}")
        for ch, block in soap.from_coefficients(c, model._channel_list()).items():
            v = model.projections.get(ch, {}).get(z)
            model.sparse.setdefault(ch, {})[z] = block if v is None else np.einsum("nmq,qk->nmk", block, v)
