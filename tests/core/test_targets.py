"""Target: exact Cartesian <-> irreps decomposition, O(3) behaviour, validation, serialisation."""

import json

import numpy as np
import pytest
import torch
from e3nn.o3 import Irreps

from psilearn.targets import Target

from ._synth import cartesian_operator, random_rotation

FORMULAS = ["", "i", "ij", "ij=ji", "ijk", "ijk=jik=ikj", "ijkl", "ijkl=jikl=klij"]
RANK = {f: (len(f.split("=")[0]) if f else 0) for f in FORMULAS}


def _random(rng, n, rank):
    return rng.normal(size=(n, 3**rank))


def _wigner(irreps: Irreps, q: np.ndarray) -> np.ndarray:
    """e3nn's representation matrix of q, computed in float64 (e3nn uses the default dtype)."""
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return irreps.D_from_matrix(torch.tensor(q, dtype=torch.float64)).numpy()
    finally:
        torch.set_default_dtype(prev)


def _flip(irreps: str) -> str:
    return irreps.replace("e", "#").replace("o", "e").replace("#", "o")


@pytest.mark.parametrize("formula", FORMULAS)
def test_round_trip_exact(formula):
    rng = np.random.default_rng(1)
    t = Target("x", tensor=formula)
    rank = RANK[formula]
    assert t.rank == rank and t.size == 3**rank
    cart = t.project(_random(rng, 7, rank))  # a tensor with the declared symmetry
    irr = t.to_irreps(cart)
    assert irr.dtype == np.float64
    assert irr.shape == (7, Irreps(t.irreps).dim)
    np.testing.assert_allclose(t.to_cartesian(irr), cart, rtol=0, atol=1e-12)
    # and the other way: any irreps vector maps to a tensor and back unchanged
    x = rng.normal(size=irr.shape)
    np.testing.assert_allclose(t.to_irreps(t.to_cartesian(x)), x, rtol=0, atol=1e-12)
    # projection is idempotent and preserves the norm of symmetric tensors (orthonormal basis)
    np.testing.assert_allclose(t.project(cart), cart, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(irr, axis=1), np.linalg.norm(cart, axis=1), rtol=1e-12)


@pytest.mark.parametrize("formula", ["", "ij", "ijk", "ijkl"])
def test_general_tensors_project_to_themselves(formula):
    rng = np.random.default_rng(2)
    t = Target("x", tensor=formula)
    cart = _random(rng, 5, t.rank)
    np.testing.assert_allclose(t.project(cart), cart, rtol=0, atol=1e-12)


def test_projection_symmetrizes():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(4, 3, 3))
    p = Target("x", tensor="ij=ji").project(m.reshape(4, 9)).reshape(4, 3, 3)
    np.testing.assert_allclose(p, 0.5 * (m + m.transpose(0, 2, 1)), atol=1e-12)
    t3 = rng.normal(size=(2, 3, 3, 3))
    p3 = Target("x", tensor="ijk=jik=ikj").project(t3.reshape(2, 27)).reshape(2, 3, 3, 3)
    perms = [(0, 1, 2, 3), (0, 1, 3, 2), (0, 2, 1, 3), (0, 2, 3, 1), (0, 3, 1, 2), (0, 3, 2, 1)]
    np.testing.assert_allclose(p3, sum(t3.transpose(p) for p in perms) / 6, atol=1e-12)


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("parity", [1, -1])
def test_irreps_transform_like_e3nn(formula, parity):
    rng = np.random.default_rng(4)
    t = Target("x", tensor=formula, parity=parity)
    cart = t.project(_random(rng, 6, t.rank))
    irreps = Irreps(t.irreps)
    for improper in (False, True):
        q = random_rotation(rng)
        if improper:
            q = -q
        d = _wigner(irreps, q)
        cart_q = cart @ cartesian_operator(q, t.rank, parity).T
        np.testing.assert_allclose(t.to_irreps(cart_q), t.to_irreps(cart) @ d.T, rtol=0, atol=1e-10)


@pytest.mark.parametrize("formula", FORMULAS)
def test_pseudo_tensor_flips_parity_letters(formula):
    polar, axial = Target("x", tensor=formula), Target("x", tensor=formula, parity=-1)
    assert axial.irreps == _flip(polar.irreps)
    assert [b.l for b in axial.blocks] == [b.l for b in polar.blocks]
    assert all(a.p == -p.p for a, p in zip(axial.blocks, polar.blocks))


def test_known_decompositions():
    assert Target("x").irreps == "1x0e"
    assert Target("x", tensor="i").irreps == "1x1o"
    assert Target("x", tensor="ij").irreps == "1x0e+1x1e+1x2e"
    assert Target("x", tensor="ij=ji").irreps == "1x0e+1x2e"
    assert Target("x", tensor="ijk=jik=ikj").irreps == "1x1o+1x3o"
    assert Target("x", tensor="", parity=-1).irreps == "1x0o"
    assert Target("x", tensor="i", parity=-1).irreps == "1x1e"


def test_traceless_rank2():
    rng = np.random.default_rng(5)
    t = Target("efg", tensor="ij=ji", traceless=True)
    assert t.irreps == "1x2e"
    assert [b.l for b in t.blocks] == [2]
    m = rng.normal(size=(5, 3, 3)) + 3.0 * np.eye(3)  # a large trace to remove
    p = t.project(m.reshape(5, 9)).reshape(5, 3, 3)
    np.testing.assert_allclose(np.einsum("naa->n", p), 0.0, atol=1e-12)
    sym = 0.5 * (m + m.transpose(0, 2, 1))
    expect = sym - np.einsum("naa->n", sym)[:, None, None] / 3 * np.eye(3)
    np.testing.assert_allclose(p, expect, atol=1e-12)
    # a general traceless tensor keeps its antisymmetric part
    g = Target("x", tensor="ij", traceless=True)
    assert g.irreps == "1x1e+1x2e"
    pg = g.project(m.reshape(5, 9)).reshape(5, 3, 3)
    np.testing.assert_allclose(pg, m - np.einsum("naa->n", m)[:, None, None] / 3 * np.eye(3), atol=1e-12)


def test_traceless_fully_symmetric_rank3():
    rng = np.random.default_rng(6)
    t = Target("x", tensor="ijk=jik=ikj", traceless=True)
    assert t.irreps == "1x3o"
    p = t.project(rng.normal(size=(3, 27))).reshape(3, 3, 3, 3)
    np.testing.assert_allclose(np.einsum("naab->nb", p), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.einsum("nbaa->nb", p), 0.0, atol=1e-12)


@pytest.mark.parametrize("formula", ["i", "ijk", ""])
def test_traceless_unsupported(formula):
    with pytest.raises(ValueError, match="traceless"):
        Target("x", tensor=formula, traceless=True)


@pytest.mark.parametrize("formula", ["ij=jk", "ab=ca", "iij", "ij=ik", "ijklm", "ijk=jik=ikj=ijk "])
def test_invalid_formula(formula):
    with pytest.raises(ValueError):
        Target("x", tensor=formula)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(per="molecule"), "per"),
        (dict(pool="max"), "pool"),
        (dict(parity=0), "parity"),
        (dict(parity=2), "parity"),
    ],
)
def test_invalid_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Target("x", **kwargs)


def test_empty_key_refused():
    with pytest.raises(ValueError):
        Target("", tensor="i")


@pytest.mark.parametrize(
    "target",
    [
        Target("alpha", tensor="ij=ji", units="a.u."),
        Target("q", per="atom"),
        Target("gap", pool="mean", units="eV"),
        Target("efg", per="atom", tensor="ij=ji", traceless=True),
        Target("m", tensor="i", parity=-1),
    ],
    ids=str,
)
def test_dict_round_trip(target):
    d = target.to_dict()
    assert "_blocks" not in d
    back = Target.from_dict(json.loads(json.dumps(d)))
    assert back == target
    assert back.irreps == target.irreps and back.blocks == target.blocks
    assert json.loads(str(target)) == d


def test_from_dict_unknown_field():
    d = Target("x").to_dict()
    d["colour"] = "red"
    with pytest.raises(ValueError, match="colour"):
        Target.from_dict(d)
