"""The matrix-free (conjugate-gradient) solve of the density model against the direct one.

The 24 HF/STO-3G molecules of conftest.py; fits on 8-10 of them (~1300 weights) take seconds."""

import os

import numpy as np
import pytest

from psilearn.models.density.cg import StructureOperator, cg_bytes
from psilearn.models.density.cg_store import DiskStore, MemoryStore
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


def _operators(model, sub, part_of, store):
    """Operators (one per part) of ``sub``'s structures, accumulated into stores made by ``store()``."""
    from psilearn.features import LambdaSoap

    widths = {key: model.basis.width(*key) for key in model.basis.projectors}
    layout = WeightLayout.of(model.target, model.species, widths)
    ops = [StructureOperator.empty(layout, store()) for _ in range(max(part_of) + 1)]
    accumulate(model, LambdaSoap(model.soap, model.species), sub, layout, ops, np.asarray(part_of))
    return layout, widths, ops


@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_operator_products_are_the_dense_normal_equations(pair, data, storage):
    """A w, diag(A), b, yy and ref of the structure-by-structure operator equal the dense normal
    equations' (both from one pass over the same 6 structures), also after merging two parts; the
    disk store in chunks of about two structures."""
    from psilearn.features import LambdaSoap

    model = pair[1]
    sub = data.subset(range(6))
    store = MemoryStore if storage == "memory" else (lambda: DiskStore(chunk_bytes=60_000))
    layout, widths, (whole,) = _operators(model, sub, [0] * 6, store)
    _, _, (first, second) = _operators(model, sub, [1, 0, 0, 1, 0, 1], store)
    dense = NormalEquations.zeros(layout.size)
    accumulate(model, LambdaSoap(model.soap, model.species), sub, layout, [dense], np.zeros(6, int))
    first.merge(second)
    w = np.random.default_rng(0).normal(size=layout.size)
    ref = dense.a @ w
    for op in (whole, first):
        assert np.abs(op.matvec(w) - ref).max() <= 1e-11 * np.abs(ref).max()
        assert np.allclose(op.diagonal(), np.diag(dense.a), rtol=1e-12, atol=0)
        assert np.allclose(op.b, dense.b, rtol=1e-12, atol=1e-14 * np.abs(dense.b).max())
        assert op.n == 6 and np.isclose(op.yy, dense.yy, rtol=1e-12) and np.isclose(op.ref, dense.ref, rtol=1e-12)
        assert np.isclose(op.loss(w), dense.loss(w), rtol=1e-10)
    atoms = {z: int(sum(np.sum(a.numbers == z) for a in sub.frames)) for z in model.species}
    ram, disk = cg_bytes(layout, widths, atoms, [model.target.size(a) for a in sub.frames], model.target, storage)
    (store0,) = whole.stores
    if storage == "disk":
        assert len(list(store0._groups())) >= 3  # several chunks
        assert disk == store0.disk_bytes == sum(os.path.getsize(os.path.join(store0.path, f)) for f in os.listdir(store0.path))
        path = store0.path
        whole.close()
        assert not os.path.exists(path)  # the files are deleted
    else:
        held = store0.nbytes() + 2 * sum(b.nbytes for b in whole.blocks.values())  # blocks + their factors
        assert disk == 0 and held <= ram <= 2 * held + 20 * 8 * (layout.size + whole.n_coef)  # the guard bounds what is held


def test_disk_store_fit_equals_memory_and_its_ram_does_not_grow(pair, data, tmp_path):
    """The CG fit with the disk store equals the in-memory one to 1e-10; the RAM the operator holds and
    the peak of one product A w (numpy allocations, tracemalloc) do not grow from 4 to 16 structures
    with the disk store, while the memory store's grow with the data."""
    import tracemalloc

    mem = _fit(data, 10, regularization=1e-2, solver="cg", cg_storage="memory", **TIGHT)
    disk = _fit(data, 10, regularization=1e-2, solver="cg", cg_storage="disk", cg_scratch=str(tmp_path / "scratch"), **TIGHT)
    assert disk.metadata["cg"]["storage"] == "disk" and os.listdir(tmp_path / "scratch") == []  # deleted after the fit
    for key, w in mem.weights.items():
        assert np.abs(disk.weights[key] - w).max() <= 1e-10 * np.abs(w).max(), key
    model, measured = pair[1], {}
    for storage, store in (("memory", MemoryStore), ("disk", lambda: DiskStore(chunk_bytes=60_000))):
        for n in (4, 16):
            tracemalloc.start()
            layout, _, (op,) = _operators(model, data.subset(range(n)), [0] * n, store)
            w = np.ones(layout.size)
            op.matvec(w)  # the memory store concatenates once here
            tracemalloc.reset_peak()
            now = tracemalloc.get_traced_memory()[0]
            op.matvec(w)
            peak = tracemalloc.get_traced_memory()[1] - now
            op.close()
            del op
            held = now - tracemalloc.get_traced_memory()[0]  # what the operator held (caches elsewhere excluded)
            tracemalloc.stop()
            measured[storage, n] = (held, peak)
    grow_mem = measured["memory", 16][0] - measured["memory", 4][0]
    grow_disk = measured["disk", 16][0] - measured["disk", 4][0]
    assert grow_mem > 1e6 and grow_disk < 0.02 * grow_mem, measured  # held: the data in RAM vs ~100 B per structure
    assert measured["disk", 16][1] < 1.5 * measured["disk", 4][1] + 1e5, measured  # one product: one chunk at a time
    assert measured["memory", 16][1] > 2 * measured["memory", 4][1], measured


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
    monkeypatch.setattr(fit_module, "cg_bytes", lambda *a: (10**15, 0))
    with pytest.raises(MemoryBudgetError, match=r"^density-model CG solve \(\d+ weights, features and metrics of 6 structures on disk\) needs about"):
        _fit(data, 6, solver="cg")
    monkeypatch.setattr(fit_module, "cg_bytes", lambda *a: (0, 10**18))
    with pytest.raises(MemoryBudgetError, match=r"^density-model CG store needs about .* on disk but .* free; set density.cg_scratch"):
        _fit(data, 6, solver="cg")
