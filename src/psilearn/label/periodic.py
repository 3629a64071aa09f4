"""Crystals in the PySCF labeler: an all-electron periodic SCF (k-points, Gaussian density fitting)
and the labels defined for it (:data:`PERIODIC_OBSERVABLES`).

* The cell is the frame's lattice with the labeler's basis; primitives more diffuse than
  ``exp_to_discard`` (Bohr^-2) are dropped, the usual step for molecular Gaussian bases in a
  crystal (they make the overlap near-singular).
* k-points: a Gamma-centred Monkhorst-Pack mesh, ``kmesh`` if given, else n_i = ceil(L / |a_i|)
  with L = ``kpoint_length`` (Angstrom): the Born-von Karman supercell is at least L long in each
  direction. The mesh is stored per structure (``info['kmesh']``).
* The SCF is KRKS/KRHF (KUKS/KUHF for open shells) with Gaussian density fitting, which an
  all-electron cell needs; the labeler's SCF retry ladder applies unchanged.
* ``efg``: :func:`psilearn.label.periodic_efg.periodic_efg_tensors` (Ewald split over the
  lattice); C_Q and eta as for molecules. ``energy``: E_tot per cell (Hartree).
"""

from __future__ import annotations

import warnings

import numpy as np
from ase import Atoms

from psilearn.label.base import LabelError
from psilearn.label.validate import build_quietly

#: Observables the labeler computes for crystals.
PERIODIC_OBSERVABLES = ("energy", "efg")
#: Defaults of the periodic options; they enter the method hash only when changed, so they must
#: stay fixed (bump ``LABEL_SCHEMA`` in pyscf_labeler.py if one ever changes).
DEFAULT_KPOINT_LENGTH = 7.0
DEFAULT_EXP_TO_DISCARD = 0.1


def kmesh_for(lattice: np.ndarray, length: float) -> tuple[int, int, int]:
    """Gamma-centred mesh with n_i = ceil(length / |a_i|) (both in the same unit)."""
    return tuple(max(1, int(np.ceil(length / np.linalg.norm(a) - 1e-9))) for a in lattice)  # type: ignore[return-value]


def check_crystal(atoms: Atoms, observables: tuple[str, ...], method: str) -> None:
    """Refuse what the periodic route cannot label, before any calculation (one line each)."""
    if not all(atoms.pbc):
        flags = " ".join("T" if p else "F" for p in atoms.pbc)
        raise LabelError(f"{method} labels crystals periodic in all three directions only (pbc=\"{flags}\"); "
                         "label slabs and wires as molecules or with gfn2", stage="validate")
    other = [o for o in observables if o not in PERIODIC_OBSERVABLES]
    if other:
        raise LabelError(f"{method} computes {', '.join(PERIODIC_OBSERVABLES)} for crystals, not {', '.join(other)}: "
                         "label periodic frames with those observables only", stage="validate")
    if int(atoms.info.get("charge", 0) or 0) != 0:
        raise LabelError(f"periodic labels need a neutral cell (charge={atoms.info.get('charge')})", stage="validate")


def build_cell(labeler, atoms: Atoms, charge: int, spin: int):
    """A built all-electron ``pyscf.pbc.gto.Cell`` of ``atoms`` with the labeler's basis; LabelError
    for an element whose basis is made for an ECP (valence electrons only; crystals take no ECPs here)."""
    from pyscf.pbc import gto

    from psilearn.targets.ao_basis import ecp_table

    with_ecp = sorted(ecp_table(labeler.basis, atoms.get_chemical_symbols()))
    if with_ecp:
        raise LabelError(f"basis {labeler.basis} describes only the valence electrons of {', '.join(with_ecp)} (it goes with an ECP), "
                         "and crystals are labelled all-electron: choose an all-electron basis for these elements", stage="validate")

    cell = gto.Cell()
    cell.atom = [(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)]
    cell.a = np.array(atoms.cell)
    cell.unit = "Angstrom"
    cell.basis = labeler.basis
    cell.charge, cell.spin = charge, spin
    cell.exp_to_discard = labeler.exp_to_discard
    cell.verbose = 0
    cell.max_memory = labeler.max_memory_mb
    build_quietly(cell, labeler.basis, "cell")
    return cell


def cell_kmesh(labeler, cell) -> tuple[int, int, int]:
    """The labeler's k-mesh for ``cell``: its ``kmesh`` or the ``kpoint_length`` rule."""
    if labeler.kmesh is not None:
        return tuple(int(n) for n in labeler.kmesh)  # type: ignore[return-value]
    from pyscf.data.nist import BOHR

    return kmesh_for(cell.lattice_vectors() * BOHR, labeler.kpoint_length)


def make_periodic_scf(labeler, cell):
    """An unconverged k-point SCF object (Gaussian density fitting) configured from ``labeler``."""
    from pyscf.pbc import dft, scf

    kpts = cell.make_kpts(cell_kmesh(labeler, cell))
    open_shell = cell.spin != 0
    if labeler.is_hf:
        mf = scf.KUHF(cell, kpts) if open_shell else scf.KRHF(cell, kpts)
    else:
        mf = dft.KUKS(cell, kpts) if open_shell else dft.KRKS(cell, kpts)
        mf.xc = labeler.xc
    auxbasis = labeler.auxbasis
    if auxbasis is None:  # PySCF's own default, resolved here so its basis-set-exchange hint stays quiet
        from pyscf.df.addons import make_auxbasis

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            auxbasis = make_auxbasis(cell)
    mf = mf.density_fit(auxbasis=auxbasis)
    mf.conv_tol = labeler.conv_tol
    mf.max_cycle = labeler.max_cycle
    mf.verbose = 0
    return mf


def crystal_labels(labeler, mf) -> tuple[dict, dict]:
    """``(info, arrays)`` of the periodic observables of a converged k-point SCF ``mf``."""
    from psilearn.label.magnetic import efg_labels
    from psilearn.label.periodic_efg import periodic_efg_tensors

    cell = mf.cell
    info: dict = {"kmesh": np.array(cell_kmesh(labeler, cell), dtype=int)}
    arrays: dict = {}
    if "energy" in labeler.observables:
        info["total_energy"] = float(mf.e_tot)
    if "efg" in labeler.observables:
        efg = periodic_efg_tensors(cell, mf.kpts, np.asarray(mf.make_rdm1()))
        efg_info, arrays = efg_labels(efg, [cell.atom_symbol(i) for i in range(cell.natm)])
        info.update(efg_info)
    return info, arrays
