"""The matrix-free (conjugate-gradient) solve of the density model against the direct one.

The 24 HF/STO-3G molecules of conftest.py; fits on 8-10 of them (~1300 weights) take seconds."""

import numpy as np
import pytest

from psilearn.models.density.cg import StructureOperator, cg_bytes
from psilearn.models.density.constraint import structure_metric
from psilearn.models.density.fit import accumulate
from psilearn.models.density.normal import NormalEquations, WeightLayout, fit_bytes
from psilearn.models.factory import fit_model

from ._shared import SOAP

#: CG stopping tolerance of the agreement tests (relative residual); measured agreement ~1e-10
TIGHT = {"cg_tol": 1e-12, "cg_maxiter": 5000}


def _fit(data, n: int, **density):
    return fit_model("density", data.target, data.subset(range(n)), {"soap": SOAP, "density": density})


@pytest.fixture(scope="module")
def pair(data):
    """Direct and CG fits of the same 10 structures, fixed relative lambda 1e-2."""
    return (_fit(data, 10, regularization=1e-2, solver="direct"),
            _fit(data, 10, regularization=1e-2, solver="cg", **TIGHT))


def test_cg_agrees_with_direct(pair, data):
    direct, cg = pair
    assert direct.metadata["solver"] == "direct" and cg.metadata["solver"] == "cg"
    (solve,) = cg.metadata["cg"]["solves"]
    assert solve["converged"] and solve["relative_residual"] <= 1e-12
    for key, w in direct.weights.items():
        assert np.abs(cg.weights[key] - w).max() <= 1e-8 * np.abs(w).max(), key
    frames = data.frames[20:]
    for p, q in zip(direct.predict(frames).coefficients, cg.predict(frames).coefficients):
        assert np.abs(p - q).max() <= 1e-9 * np.abs(p).max()
    assert abs(cg.metadata["training_error_percent"] - direct.metadata["training_error_percent"]) <= 1e-8 * direct.metadata["training_error_percent"]


def test_cg_electron_count_is_exact(pair, data):
    _, cg = pair
    frames = data.frames[20:]
    pred = cg.predict(frames)
    for a, c, e in zip(frames, pred.coefficients, pred.electrons):
        _, q = structure_metric(cg.target, a)
        assert abs(q @ c - a.numbers.sum()) < 1e-10 and abs(e - a.numbers.sum()) < 1e-10


def test_operator_products_are_the_dense_normal_equations(pair, data):
    """A w, diag(A), b, yy and ref of the structure-by-structure operator equal the dense normal
    equations' (both from one pass over the same 6 structures), also after merging two parts."""
    from psilearn.features import LambdaSoap

    model = pair[1]
    widths = {key: model.basis.width(*key) for key in model.basis.projectors}
    layout = WeightLayout.of(model.target, model.species, widths)
    sub = data.subset(range(6))
    soap = LambdaSoap(model.soap, model.species)
    dense, whole = NormalEquations.zeros(layout.size), StructureOperator.empty(layout)
    accumulate(model, soap, sub, layout, [dense], np.zeros(6, int))
    accumulate(model, soap, sub, layout, [whole], np.zeros(6, int))
    first, second = StructureOperator.empty(layout), StructureOperator.empty(layout)
    accumulate(model, soap, sub, layout, [first, second], np.array([1, 0, 0, 1, 0, 1]))
    first.merge(second)
    w = np.random.default_rng(0).normal(size=layout.size)
    ref = dense.a @ w
    for op in (whole, first):
        assert np.abs(op.matvec(w) - ref).max() <= 1e-11 * np.abs(ref).max()
        assert np.allclose(op.diagonal(), np.diag(dense.a), rtol=1e-12, atol=0)
        assert np.allclose(op.b, dense.b, rtol=1e-12, atol=1e-14 * np.abs(dense.b).max())
        assert op.n == 6 and np.isclose(op.yy, dense.yy, rtol=1e-12) and np.isclose(op.ref, dense.ref, rtol=1e-12)
        assert np.isclose(op.loss(w), dense.loss(w), rtol=1e-10)
    held = sum(x.nbytes for d in (whole.feats, whole.rows) for v in d.values() for x in v)
    held += sum(s.nbytes for s in whole.metrics) + 2 * sum(b.nbytes for b in whole.blocks.values())  # blocks + their factors
    atoms = {z: int(sum(np.sum(a.numbers == z) for a in sub.frames)) for z in model.species}
    estimate = cg_bytes(layout, widths, atoms, [model.target.size(a) for a in sub.frames], model.target)
    assert held <= estimate <= 2 * held + 20 * 8 * (layout.size + whole.n_coef)  # the guard's estimate bounds what is held


def test_cg_holdout_chooses_the_direct_lambda(data):
    """Hold-out lambda with CG (grid walked downwards, warm starts, patience 1) picks the direct
    solve's lambda, with the same held-out errors where solved."""
    grid = [1e-1, 1e-2, 1e-3, 1e-4]
    direct = _fit(data, 8, reg_grid=grid, solver="direct")
    cg = _fit(data, 8, reg_grid=grid, solver="cg", cg_patience=1, **TIGHT)
    assert cg.metadata["regularization"] == direct.metadata["regularization"]
    solved = [(e, f) for e, f in zip(cg.metadata["validation_errors"], direct.metadata["validation_errors"]) if e is not None]
    assert len(solved) >= 2 and all(abs(e - f) <= 1e-8 * f for e, f in solved)
    solves = cg.metadata["cg"]["solves"]
    assert [s["lambda"] for s in solves[:-1]] == sorted(grid, reverse=True)[: len(solves) - 1]  # largest first
    assert solves[-1]["lambda"] == direct.metadata["regularization"] and all(s["converged"] for s in solves)


def test_auto_chooses_cg_when_the_direct_solve_does_not_fit(data, monkeypatch):
    from psilearn.data.memory import SAFETY

    small = _fit(data, 6, regularization=1e-2)
    assert small.metadata["solver"] == "direct"  # fits: the default picks the direct solve
    direct_bytes = fit_bytes(small.metadata["n_weights"], False)
    monkeypatch.setenv("PSILEARN_MEMORY_LIMIT", str(int(0.9 * direct_bytes / SAFETY)))  # direct just too large
    squeezed = _fit(data, 6, regularization=1e-2, cg_tol=1e-10)
    assert squeezed.metadata["solver"] == "cg" and squeezed.metadata["n_weights"] == small.metadata["n_weights"]
    for key, w in small.weights.items():
        assert np.abs(squeezed.weights[key] - w).max() <= 1e-5 * np.abs(w).max()
    monkeypatch.delenv("PSILEARN_MEMORY_LIMIT")
    assert _fit(data, 6, regularization=1e-2, direct_max_gb=1e-6, cg_maxiter=5).metadata["solver"] == "cg"  # the GB cap


def test_cg_memory_guard_and_unconverged_record(data, monkeypatch, caplog):
    from psilearn.errors import MemoryBudgetError
    from psilearn.models.density import fit as fit_module

    m = _fit(data, 6, regularization=1e-6, solver="cg", cg_maxiter=3)
    (solve,) = m.metadata["cg"]["solves"]
    assert not solve["converged"] and solve["iterations"] == 3 and solve["relative_residual"] > 1e-8
    assert "not converged in 3 iterations" in caplog.text
    monkeypatch.setattr(fit_module, "cg_bytes", lambda *a: 10**15)
    with pytest.raises(MemoryBudgetError, match=r"^density-model CG solve \(\d+ weights, features and metrics of 6 structures\) needs about"):
        _fit(data, 6, solver="cg")
