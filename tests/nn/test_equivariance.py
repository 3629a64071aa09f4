"""The nn model is exactly O(3)-equivariant (rotations, reflections, improper rotations), and
translation- and permutation-invariant, for every Target kind, per structure and per atom (float64,
max relative error < 1e-10), for molecules and for periodic cells."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from core._synth import cartesian_operator, label_frames, molecules, random_rotation, rel_dev, transform_frames
from psilearn.targets import Target

from .conftest import fit_tiny

TOL = 1e-10
F64 = dict(dtype="float64", epochs=1)

# name -> (label kind, tensor formula, parity, traceless, per)
CASES = {
    f"{kind}-{per}": (kind, formula, 1, False, per)
    for kind, formula in [("scalar", ""), ("vector", "i"), ("sym2", "ij=ji"), ("gen2", "ij"), ("gen3", "ijk"),
                          ("sym3", "ijk=jik=ikj")]
    for per in ("structure", "atom")
}
CASES["sym2_traceless-atom"] = ("sym2_traceless", "ij=ji", 1, True, "atom")
CASES["axial-structure"] = ("axial", "i", -1, False, "structure")

_rng = np.random.default_rng(7)
OPS = {"rotation": random_rotation(_rng), "reflection": np.diag([1.0, -1.0, 1.0]), "improper": -random_rotation(_rng)}
SHIFT = np.array([0.7, -2.3, 1.1])

_cache: dict = {}


def fitted(case: str):
    if case not in _cache:
        kind, formula, parity, traceless, per = CASES[case]
        target = Target("y", per=per, tensor=formula, parity=parity, traceless=traceless, pool="sum")
        frames = label_frames(molecules(3, 6), "y", kind, per)
        model = fit_tiny(frames, target, train=F64)
        _cache[case] = (model, molecules(11, 3))
    return _cache[case]


@pytest.mark.parametrize("case", list(CASES))
def test_equivariance_and_invariances(case):
    model, test = fitted(case)
    t = model.target
    ref = model.predict(test)
    assert ref.values.shape == ((len(test) if t.per == "structure" else sum(map(len, test))), t.size)
    assert np.abs(ref.values).max() > 1e-6  # not trivially zero
    for name, q in OPS.items():
        m = cartesian_operator(q, t.rank, t.parity)
        out = model.predict(transform_frames(test, q))
        assert rel_dev(out.values, ref.values @ m.T) < TOL, name
        assert rel_dev(out.std, ref.std) < TOL, f"{name}: std is not invariant"
    moved = model.predict(transform_frames(test, np.eye(3), SHIFT))
    assert rel_dev(moved.values, ref.values) < TOL
    perms = [np.random.default_rng(i).permutation(len(a)) for i, a in enumerate(test)]
    shuffled = model.predict([a[p] for a, p in zip(test, perms)])
    if t.per == "structure":
        assert rel_dev(shuffled.values, ref.values) < TOL
    else:
        offsets = np.concatenate([[0], np.cumsum([len(a) for a in test])])
        idx = np.concatenate([o + p for o, p in zip(offsets, perms)])
        assert rel_dev(shuffled.values, ref.values[idx]) < TOL


def test_declared_index_symmetry():
    model, test = fitted("sym3-structure")
    v = model.predict(test).values.reshape(-1, 3, 3, 3)
    assert np.abs(v - v.transpose(0, 2, 1, 3)).max() < 1e-12 * np.abs(v).max()
    model, test = fitted("sym2_traceless-atom")
    v = model.predict(test).values.reshape(-1, 3, 3)
    assert np.abs(np.einsum("nii->n", v)).max() < 1e-12 * np.abs(v).max()


def _water_box(seed: int, n: int = 8, box: float = 5.0) -> Atoms:
    rng = np.random.default_rng(seed)
    mols = []
    for i in range(n):
        o = rng.uniform(0, box, 3)
        mols += [("O", o), ("H", o + [0.96, 0, 0]), ("H", o + [-0.24, 0.93, 0])]
    a = Atoms([s for s, _ in mols], positions=[p for _, p in mols], cell=np.diag([box, box * 1.1, box * 0.9]), pbc=True)
    a.wrap()
    return a


def test_periodic_cells_equivariant_and_extensive():
    frames = [_water_box(s) for s in range(5)]
    for a in frames:
        r = a.get_positions() - a.get_center_of_mass()
        a.info["y"] = np.einsum("i,ia,ib->ab", np.where(a.numbers == 8, 1.0, 0.3), r, r).ravel() / 100
    target = Target("y", tensor="ij=ji")
    model = fit_tiny(frames, target, train=F64)
    test = [_water_box(s) for s in (20, 21)]
    ref = model.predict(test)
    q = OPS["improper"]
    m = np.kron(q, q)
    assert rel_dev(model.predict(transform_frames(test, q)).values, ref.values @ m.T) < TOL
    shifted = [a.copy() for a in test]
    for a in shifted:
        a.positions += SHIFT
        a.wrap()  # images change, the periodic structure does not
    assert rel_dev(model.predict(shifted).values, ref.values) < TOL
    big = model.predict([a.repeat((2, 1, 1)) for a in test])  # sum pooling: extensive
    assert rel_dev(big.values, 2 * ref.values) < TOL
