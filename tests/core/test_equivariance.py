"""SA-GPR predictions are exactly O(3)-equivariant, translation- and permutation-invariant, and have
the declared index symmetry, for scalars, vectors and rank-2/3 tensors, per structure and per atom."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from ase import Atoms

from psilearn.data import DataError, load_dataset
from psilearn.models import SAGPR, Prediction
from psilearn.targets import Target

from ._synth import (
    cartesian_operator,
    label_frames,
    molecules,
    random_rotation,
    rel_dev,
    small_model,
    small_soap,
    transform_frames,
)

TOL = 1e-8
N_TRAIN, N_TEST = 24, 6

# name -> (label kind, tensor formula, parity, traceless, per)
CASES = {
    f"{kind}-{per}": (kind, formula, 1, False, per)
    for kind, formula in [
        ("scalar", ""),
        ("vector", "i"),
        ("sym2", "ij=ji"),
        ("gen2", "ij"),
        ("gen3", "ijk"),
        ("sym3", "ijk=jik=ikj"),
    ]
    for per in ("structure", "atom")
}
CASES["sym2_traceless-atom"] = ("sym2_traceless", "ij=ji", 1, True, "atom")
CASES["sym2_traceless-structure"] = ("sym2_traceless", "ij=ji", 1, True, "structure")
CASES["axial-structure"] = ("axial", "i", -1, False, "structure")
CASES["axial-atom"] = ("axial", "i", -1, False, "atom")

SYMMETRIC = [c for c, v in CASES.items() if v[1] in ("ij=ji", "ijk=jik=ikj")]
TRACELESS = [c for c, v in CASES.items() if v[3]]

_rng = np.random.default_rng(2024)
OPS = {
    "rotation": random_rotation(_rng),
    "reflection": np.diag([1.0, -1.0, 1.0]),
    "improper": -random_rotation(_rng),
}
SHIFT = np.array([0.7, -2.3, 1.1])


@dataclass
class Fitted:
    target: Target
    model: SAGPR
    test: list[Atoms]
    pred: Prediction
    labels: np.ndarray


@pytest.fixture(scope="module")
def train_test():
    frames = molecules(11, N_TRAIN + N_TEST)
    return frames[:N_TRAIN], frames[N_TRAIN:]


@pytest.fixture(scope="module")
def fitted(train_test):
    """Lazily fitted models, one per case, shared by every test of this module."""
    cache: dict[str, Fitted | Exception] = {}
    train, test = train_test

    def get(case: str) -> Fitted:
        if case in cache:
            if isinstance(cache[case], Exception):  # a failed fit fails every test of its case, once
                exc = cache[case]
                raise RuntimeError(f"fitting case {case} failed: {type(exc).__name__}: {exc}") from exc
            return cache[case]
        try:
            cache[case] = _fit(case)
        except Exception as exc:
            cache[case] = exc
            raise
        return cache[case]

    def _fit(case: str) -> Fitted:
        kind, formula, parity, traceless, per = CASES[case]
        target = Target("y", per=per, tensor=formula, parity=parity, traceless=traceless)
        ds = load_dataset(label_frames(train, "y", kind, per), target)
        model = SAGPR(target, small_soap(), small_model()).fit(ds)
        test_ds = load_dataset(label_frames(test, "y", kind, per), target)
        pred = model.predict(test, return_cov=True)
        return Fitted(target, model, test, pred, test_ds.values)

    return get


def _assert_nontrivial(f: Fitted) -> None:
    scale = np.abs(f.labels).max()
    assert np.abs(f.pred.values).max() > 1e-3 * scale, "model predicts ~0: the symmetry checks would be vacuous"


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("case", list(CASES))
def test_transforms_as_cartesian_tensor(fitted, case, op):
    f = fitted(case)
    _assert_nontrivial(f)
    q = OPS[op]
    m = cartesian_operator(q, f.target.rank, f.target.parity)
    moved = f.model.predict(transform_frames(f.test, q, SHIFT), return_cov=True)
    assert moved.values.shape == f.pred.values.shape
    assert rel_dev(moved.values, f.pred.values @ m.T) < TOL
    # the full predictive covariance transforms as M C M^T, so std is consistent in every frame
    cov_expect = np.einsum("ak,nkl,bl->nab", m, f.pred.cov, m)
    assert rel_dev(moved.cov, cov_expect) < TOL
    if f.target.rank == 0:
        assert rel_dev(moved.std, f.pred.std) < TOL
    # irreducible components: norms of each block are invariant
    for b in f.target.blocks:
        assert rel_dev(np.linalg.norm(moved.irreps[:, b.cols], axis=1), np.linalg.norm(f.pred.irreps[:, b.cols], axis=1)) < TOL


@pytest.mark.parametrize("case", list(CASES))
def test_atom_permutation(fitted, case):
    f = fitted(case)
    rng = np.random.default_rng(5)
    perms = [rng.permutation(len(a)) for a in f.test]
    permuted = [a[p] for a, p in zip(f.test, perms)]
    moved = f.model.predict(permuted)
    if f.target.per == "structure":
        assert rel_dev(moved.values, f.pred.values) < TOL
        assert rel_dev(moved.std, f.pred.std) < TOL
    else:
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in f.test])])
        order = np.concatenate([offsets[i] + p for i, p in enumerate(perms)])
        assert rel_dev(moved.values, f.pred.values[order]) < TOL
        assert rel_dev(moved.std, f.pred.std[order]) < TOL


@pytest.mark.parametrize("case", SYMMETRIC)
def test_symmetric_predictions(fitted, case):
    f = fitted(case)
    n = len(f.pred.values)
    scale = np.abs(f.pred.values).max()
    if f.target.rank == 2:
        t = f.pred.values.reshape(n, 3, 3)
        assert np.abs(t - t.transpose(0, 2, 1)).max() <= 1e-13 * scale
    else:
        t = f.pred.values.reshape(n, 3, 3, 3)
        for p in [(0, 2, 1, 3), (0, 1, 3, 2), (0, 3, 2, 1)]:
            assert np.abs(t - t.transpose(p)).max() <= 1e-13 * scale


@pytest.mark.parametrize("case", TRACELESS)
def test_traceless_predictions(fitted, case):
    f = fitted(case)
    t = f.pred.values.reshape(-1, 3, 3)
    assert np.abs(np.einsum("naa->n", t)).max() <= 1e-13 * np.abs(t).max()
    assert f.target.irreps == "1x2e"


@pytest.mark.parametrize("case", ["scalar-structure", "vector-atom", "sym2-structure"])
def test_prediction_shapes_and_std(fitted, case):
    f = fitted(case)
    n = len(f.test) if f.target.per == "structure" else sum(len(a) for a in f.test)
    assert f.pred.values.shape == f.pred.std.shape == (n, f.target.size)
    assert np.all(np.isfinite(f.pred.std)) and np.all(f.pred.std > 0)
    np.testing.assert_allclose(f.pred.std**2, np.einsum("nkk->nk", f.pred.cov), rtol=1e-10)


@pytest.mark.parametrize("case", ["sym2-structure", "vector-atom"])
def test_model_learns_something(fitted, case):
    """Not a symmetry check, but guards the above against a model that ignores its inputs."""
    f = fitted(case)
    err = np.sqrt(np.mean((f.pred.values - f.labels) ** 2))
    spread = np.sqrt(np.mean((f.labels - f.labels.mean(0)) ** 2))
    assert err < spread


def test_unknown_element_refused(fitted):
    f = fitted("scalar-structure")
    a = f.test[0].copy()
    a.symbols[1] = "N"
    frames = [f.test[1], a]
    with pytest.raises(DataError) as exc:
        f.model.predict(frames)
    msg = str(exc.value)
    assert " N" in msg and "frame 1" in msg, msg


def test_pseudoscalar_target(train_test):
    """A pseudo-scalar (0o) target must fit and predict values that change sign under inversion.
    (lambda-SOAP power spectra have no l=0 odd features, so the learned part may well be zero; the
    model must still fit and predict rather than crash.)"""
    train, test = train_test
    target = Target("chi", parity=-1)
    frames = []
    for a in train:
        b = a.copy()
        r = b.positions - b.positions.mean(0)
        b.info["chi"] = float(np.dot(r[0], np.cross(r[1], r[2])))  # triple product: a pseudo-scalar
        frames.append(b)
    model = SAGPR(target, small_soap(), small_model()).fit(load_dataset(frames, target))
    pred = model.predict(test)
    inv = model.predict(transform_frames(test, -np.eye(3)))
    np.testing.assert_allclose(inv.values, -pred.values, atol=1e-10 * max(np.abs(pred.values).max(), 1.0))
    np.testing.assert_allclose(inv.std, pred.std, rtol=1e-8)
