"""HamiltonianTarget: the block and irreps layout, exact round trips, hermiticity, bad inputs."""

import numpy as np
import pytest

from psilearn.errors import DataError
from psilearn.targets import HamiltonianTarget
from psilearn.targets.hamiltonian import coupling


def test_coupling_is_an_orthogonal_change_of_basis():
    for la in range(4):
        for lb in range(4):
            q = np.concatenate([coupling(la, lb, L).reshape((2 * la + 1) * (2 * lb + 1), -1)
                                for L in range(abs(la - lb), la + lb + 1)], axis=1)
            assert np.abs(q.T @ q - np.eye(q.shape[1])).max() < 1e-13


def test_layout_counts_every_independent_number(target, water_hf):
    syms = water_hf.get_chemical_symbols()
    assert target.shells == (("H", (0, 0, 1)), ("O", (0, 0, 0, 1, 1, 2)))
    assert target.n_ao(syms) == 24
    assert target.pairs(syms) == [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    for el in target.elements:  # on-site: the n(n+1)/2 numbers of a symmetric block
        n = target.atom_size(el)
        layout = target.pair_layout(el, el, onsite=True)
        assert layout[-1].start + layout[-1].dim == n * (n + 1) // 2
    off = target.pair_layout("O", "H")
    assert off[-1].start + off[-1].dim == 14 * 5
    assert target.irreps_of_pair("H", "H", onsite=True) == "1x0e+1x0e+1x1o+1x0e+1x1o+1x0e+1x2e"
    pp = [b.name for b in target.pair_layout("O", "H") if b.la == 1 and b.lb == 1]
    assert pp == ["0e", "1e", "2e"] * 2  # two O p shells with the H p shell: parity (-1)^(1+1)


def test_round_trip_is_exact(target, water_hf):
    """flat H -> blocks -> irreps -> blocks -> H, exact to 1e-12 (measured ~1e-15)."""
    h = water_hf.info["hamiltonian"]
    syms = water_hf.get_chemical_symbols()
    blocks = target.blocks(syms, h)
    assert np.array_equal(target.from_blocks(syms, blocks).ravel(), h)
    irreps = target.to_irreps(water_hf, h)
    back = target.from_irreps(water_hf, irreps)
    assert np.abs(back.ravel() - h).max() < 1e-12
    for (i, j), vec in irreps.items():  # pair by pair too
        b = target.uncouple(syms[i], syms[j], vec, onsite=i == j)
        assert np.abs(b - blocks[i, j]).max() < 1e-12


def test_hermitian_by_construction(target, water_hf):
    syms = water_hf.get_chemical_symbols()
    rng = np.random.default_rng(0)
    irreps = {p: rng.normal(size=v.shape) for p, v in target.to_irreps(syms, water_hf.info["hamiltonian"]).items()}
    h = target.from_irreps(syms, irreps)
    assert np.array_equal(h, h.T)
    assert np.abs(target.from_irreps(syms, target.to_irreps(syms, h)) - h).max() < 1e-12  # any irreps are a valid H


def test_serialisation(target):
    assert HamiltonianTarget.from_dict(target.to_dict()) == target
    from psilearn.targets import Target

    assert Target.from_dict(target.to_dict()) == target  # model files restore targets through Target.from_dict
    assert "def2-svp" in target.describe()


def test_from_basis_matches_the_labels(target):
    assert HamiltonianTarget.from_basis("DEF2-SVP", ["O", "H", "H"]) == target


@pytest.mark.parametrize("call, fragment", [
    (lambda: HamiltonianTarget.from_basis("def2-nonsense", ["O"]), "unknown basis 'def2-nonsense'"),
    (lambda: HamiltonianTarget.from_basis("6-31g", ["U"]), "element U has no functions in basis '6-31g'"),
    (lambda: HamiltonianTarget("sto-3g", ()), "needs the shells"),
    (lambda: HamiltonianTarget.from_basis("sto-3g", ["H"]).blocks(["H", "H"], np.zeros(5)),
     "5 hamiltonian entries, expected 2x2 = 4"),
    (lambda: HamiltonianTarget.from_basis("sto-3g", ["H"]).n_ao(["O"]), "element O is not in this hamiltonian target"),
])
def test_bad_inputs_one_line(call, fragment):
    with pytest.raises(DataError) as err:
        call()
    assert fragment in str(err.value) and "\n" not in str(err.value)
