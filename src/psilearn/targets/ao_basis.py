"""AO-basis helpers: auxiliary (density-fitting) bases from PySCF, and PySCF's real harmonics in e3nn's.

A density-fitting label is one flat vector in PySCF's order for ``pyscf.df.addons.make_auxmol(mol,
aux_basis)``: atom by atom, shell by shell (a general contraction gives one radial function per
contraction, each with its 2l+1 components), and within a radial function PySCF's m order. This
module gives, per element, the degree ``l`` of every radial function in that order (read from PySCF's
own ``make_auxmol``), and the orthogonal matrix per ``l`` taking PySCF's m order to e3nn's.

That matrix is not written down from anyone's convention: :func:`pyscf_to_e3nn` measures it. PySCF's
functions of one shell are evaluated on the unit sphere before and after a rotation, which gives the
representation matrix ``D_pyscf(R)`` by which their coefficients rotate; the unique (Schur) orthogonal
``U`` with ``U D_pyscf(R) = D_e3nn(R) U`` for two generic rotations, ``D_e3nn`` from
``e3nn.o3.Irrep(l, (-1)**l).D_from_matrix``, is the map (its global sign is fixed so that e3nn's
spherical harmonics are ``U`` times PySCF's up to a positive factor). ``tests/density`` checks it
again on coefficients refitted after rotating a molecule, proper and improper.

PySCF and e3nn are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from functools import lru_cache

import numpy as np

from psilearn.errors import DataError

#: The default auxiliary basis of density labels (Weigend's universal JK-fitting basis, H-Rn).
DEFAULT_AUX_BASIS = "def2-universal-jkfit"
METRICS = ("coulomb", "overlap")
_PROBE = ("H", "C", "N", "O", "F", "Li", "Na", "Si", "S", "Cl", "Fe", "Br")


def normalise_aux_basis(name: str) -> str:
    """The aux-basis name as recorded in labels and targets (stripped, lower case)."""
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"the auxiliary basis must be a PySCF basis name, got {name!r}")
    return name.strip().lower()


def check_metric(metric: str) -> str:
    m = str(metric).strip().lower()
    if m not in METRICS:
        raise DataError(f"unknown density-fitting metric {metric!r}; choose from {', '.join(METRICS)}")
    return m


@contextlib.contextmanager
def _quiet():
    """PySCF prints advice to stdout and warns when a basis is missing: keep one clear error."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _has_element(aux_basis: str, symbol: str) -> bool:
    from pyscf import gto
    from pyscf.lib.exceptions import BasisNotFoundError

    try:
        with _quiet():
            return bool(gto.basis.load(aux_basis, symbol))
    except (BasisNotFoundError, KeyError, ValueError, RuntimeError, OSError):
        return False


@lru_cache(maxsize=None)
def check_aux_basis(aux_basis: str) -> str:
    """The normalised name of an auxiliary basis PySCF knows; DataError (one line) for an unknown name."""
    name = normalise_aux_basis(aux_basis)
    if not any(_has_element(name, s) for s in _PROBE):
        raise DataError(
            f"unknown auxiliary basis {aux_basis!r}: PySCF has no basis of that name "
            f"(JK-fitting bases such as {DEFAULT_AUX_BASIS}, cc-pvtz-jkfit; see pyscf.gto.basis)"
        )
    return name


@lru_cache(maxsize=None)
def check_basis(basis: str) -> str:
    """The normalised name of an orbital basis PySCF knows; DataError (one line) for an unknown name."""
    name = normalise_aux_basis(basis)
    if not any(_has_element(name, s) for s in _PROBE):
        raise DataError(f"unknown basis {basis!r}: PySCF has no basis of that name "
                        "(e.g. sto-3g, def2-svp, cc-pvdz; see pyscf.gto.basis)")
    return name


@lru_cache(maxsize=None)
def basis_shells(basis: str, symbol: str) -> tuple[int, ...]:
    """Degree l of each radial function of one atom of ``symbol`` in the orbital basis ``basis``, in
    PySCF's AO order (DataError for an unknown basis or an element without functions in it)."""
    from pyscf import gto

    name = check_basis(basis)
    if not _has_element(name, symbol):
        raise DataError(f"element {symbol} has no functions in basis {name!r}")
    with _quiet():
        mol = gto.M(atom=[[symbol, (0.0, 0.0, 0.0)]], basis=name, spin=gto.charge(symbol) % 2, verbose=0)
    return auxmol_shells(mol)[symbol]


@lru_cache(maxsize=None)
def ecp_core_electrons(basis: str, symbol: str) -> int:
    """Electrons that the effective core potential named like the orbital ``basis`` (PySCF's
    ``mol.ecp = basis``, as the labeler builds its molecules) replaces on one atom of ``symbol``:
    ``mol.atom_nelec_core(0)``; 0 when PySCF has no such ECP for the element (e.g. def2 bases below Rb).
    def2-svp/-tzvp/-qzvpp share Weigend's ECPs (28 core electrons for I, 46 for Cs)."""
    from pyscf import gto

    try:  # PySCF writes "ECP ... not found" to stderr for elements without one
        with _quiet(), contextlib.redirect_stderr(io.StringIO()):
            mol = gto.M(atom=[[symbol, (0.0, 0.0, 0.0)]], basis=normalise_aux_basis(basis), ecp=normalise_aux_basis(basis),
                        spin=gto.charge(symbol) % 2, verbose=0)
    except Exception:  # noqa: BLE001 - no basis for the element: no ECP either
        return 0
    return int(mol.atom_nelec_core(0))


@lru_cache(maxsize=None)
def basis_has_ecps(basis: str) -> bool:
    """Whether PySCF has an ECP named like ``basis`` for any element up to Rn (def2-*: from Rb;
    LANL2DZ: from Na; Pople and Dunning bases: none)."""
    from ase.data import chemical_symbols
    from pyscf.gto.basis import load_ecp

    name = normalise_aux_basis(basis)
    with _quiet(), contextlib.redirect_stderr(io.StringIO()):
        for symbol in chemical_symbols[1:87]:
            try:
                if load_ecp(name, symbol):
                    return True
            except Exception:  # noqa: BLE001 - no ECP file of that name
                return False
    return False


def ecp_table(basis: str, symbols) -> dict[str, str]:
    """``{symbol: basis}`` for the elements among ``symbols`` that have an ECP named ``basis`` (a
    ``mol.ecp`` that loads only existing ECPs, so PySCF prints nothing for the others)."""
    return {s: normalise_aux_basis(basis) for s in sorted(set(symbols)) if ecp_core_electrons(basis, s) > 0}


@lru_cache(maxsize=None)
def wigner3j(l1: int, l2: int, l: int) -> np.ndarray:
    """e3nn's real Wigner 3j symbol (2 l1 + 1, 2 l2 + 1, 2 l + 1), float64: the shipped constant
    (:mod:`psilearn._tables`) when e3nn has the recorded version, else computed with e3nn. Read-only."""
    from psilearn._tables import lookup

    w = lookup(f"wigner3j/{l1}/{l2}/{l}", ("e3nn",))
    if w is None:
        import torch
        from e3nn import o3

        w = o3.wigner_3j(l1, l2, l, dtype=torch.float64).numpy()
    w = np.asarray(w, dtype=np.float64)
    w.setflags(write=False)
    return w


def missing_elements(aux_basis: str, symbols) -> list[str]:
    """Elements of ``symbols`` without functions in ``aux_basis`` (sorted, unique)."""
    name = check_aux_basis(aux_basis)
    return sorted({s for s in symbols if not _has_element(name, s)})


def make_auxmol(mol, aux_basis: str):
    """``pyscf.df.addons.make_auxmol(mol, aux_basis)``, with one clear DataError when the name is
    unknown or an element of ``mol`` has no functions in that basis (PySCF's printed advice is muted)."""
    from pyscf.df import addons

    name = check_aux_basis(aux_basis)
    symbols = [mol.atom_pure_symbol(i) for i in range(mol.natm)]
    missing = missing_elements(name, symbols)
    if missing:
        raise DataError(f"element{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                        f"{'have' if len(missing) > 1 else 'has'} no functions in auxiliary basis {name!r}")
    with _quiet():
        auxmol = addons.make_auxmol(mol, name)
    empty = [symbols[i] for i, (_, _, p0, p1) in enumerate(auxmol.aoslice_by_atom()) if p1 == p0]
    if empty:
        raise DataError(f"element {empty[0]} has no functions in auxiliary basis {name!r}")
    return auxmol


def auxmol_shells(auxmol) -> dict[str, tuple[int, ...]]:
    """Element -> degree l of each radial function of one atom, in PySCF's order, from a built
    auxiliary (or orbital) Mole (every atom of an element has the same functions; checked)."""
    out: dict[str, tuple[int, ...]] = {}
    for i, (b0, b1, _, _) in enumerate(auxmol.aoslice_by_atom()):
        ls = tuple(int(auxmol.bas_angular(b)) for b in range(b0, b1) for _ in range(auxmol.bas_nctr(b)))
        sym = auxmol.atom_pure_symbol(i)
        if out.setdefault(sym, ls) != ls:
            raise DataError(f"atoms of {sym} have different auxiliary functions (a per-atom basis is not supported)")
    return out


@lru_cache(maxsize=None)
def element_shells(aux_basis: str, symbol: str) -> tuple[int, ...]:
    """Degree l of each radial function of ``symbol`` in ``aux_basis``, in ``make_auxmol``'s order."""
    from pyscf import gto

    mol = gto.M(atom=[[symbol, (0.0, 0.0, 0.0)]], basis={symbol: [[0, (1.0, 1.0)]]},
                spin=gto.charge(symbol) % 2, verbose=0)
    return auxmol_shells(make_auxmol(mol, aux_basis))[symbol]


# ---- PySCF's real harmonics <-> e3nn's ------------------------------------------------------------
def _shell_values(l: int, points: np.ndarray) -> np.ndarray:
    """PySCF's 2l+1 functions of one normalised shell of degree l at ``points`` (n, 3), in its order."""
    from pyscf import gto
    from pyscf.dft import numint

    mol = gto.M(atom=[["He", (0.0, 0.0, 0.0)]], basis={"He": [[l, (1.0, 1.0)]]}, verbose=0)
    return numint.eval_ao(mol, np.ascontiguousarray(points))


def pyscf_rotation(l: int, rotation: np.ndarray, points: np.ndarray) -> np.ndarray:
    """D_pyscf(R) (2l+1, 2l+1): the coefficients c of a shell of degree l become D c when the
    function is rotated by R (f'(r) = f(R^T r)), measured from PySCF's own functions at ``points``."""
    y = _shell_values(l, points)
    d, *_ = np.linalg.lstsq(y, _shell_values(l, points @ np.asarray(rotation)), rcond=None)
    return d


@contextlib.contextmanager
def _float64():
    """e3nn builds some constants in torch's default dtype: float64 inside, restored after."""
    import torch

    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(prev)


def e3nn_rotation(l: int, rotation: np.ndarray) -> np.ndarray:
    """e3nn's Wigner D of ``Irrep(l, (-1)**l)`` for a proper or improper 3x3 ``rotation`` (float64)."""
    import torch
    from e3nn import o3

    with _float64():
        r = torch.as_tensor(np.asarray(rotation, dtype=np.float64))
        return o3.Irrep(l, (-1) ** l).D_from_matrix(r).numpy().astype(np.float64)


@lru_cache(maxsize=None)
def pyscf_to_e3nn(l: int) -> np.ndarray:
    """Orthogonal U_l (2l+1, 2l+1) with ``c_e3nn = U_l @ c_pyscf`` for one radial function of
    degree l (measured, see the module docstring). Read-only array."""
    from scipy.spatial.transform import Rotation

    if l == 0:  # both are the constant function: the map is 1
        u = np.ones((1, 1))
        u.setflags(write=False)
        return u
    rng = np.random.default_rng(2024 + l)
    points = rng.normal(size=(6 * (2 * l + 1) + 12, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    dim = 2 * l + 1
    eye = np.eye(dim)
    rows = []
    for seed in (11, 12):
        rot = Rotation.random(random_state=seed).as_matrix()
        dp, de = pyscf_rotation(l, rot, points), e3nn_rotation(l, rot)
        rows.append(np.kron(eye, dp.T) - np.kron(de, eye))  # row-major vec of U dp - de U = 0
    _, s, vt = np.linalg.svd(np.vstack(rows))
    if s[-1] > 1e-10 * s[0] or s[-2] < 1e-6 * s[0]:
        raise RuntimeError(f"PySCF's and e3nn's l={l} representations are not related by one orthogonal map")
    u = vt[-1].reshape(dim, dim) * np.sqrt(dim)
    if np.abs(u @ u.T - eye).max() > 1e-10:
        raise RuntimeError(f"the measured PySCF -> e3nn map at l={l} is not orthogonal")
    u *= _harmonic_sign(l, u, points)
    for exact in (0.0, 1.0, -1.0):  # measurement noise (~1e-15) off exact zeros and ones
        u[np.abs(u - exact) < 1e-12] = exact
    u.setflags(write=False)
    return u


def _harmonic_sign(l: int, u: np.ndarray, points: np.ndarray) -> float:
    """+1 or -1 such that e3nn's spherical harmonics are +const * U times PySCF's functions."""
    import torch
    from e3nn import o3

    with _float64():
        ye = o3.spherical_harmonics(l, torch.as_tensor(points), normalize=True).numpy()
    return 1.0 if np.sum(ye * (_shell_values(l, points) @ u.T)) > 0 else -1.0
