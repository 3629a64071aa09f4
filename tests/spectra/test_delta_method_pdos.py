"""`fit-spectrum --per atom --target pdos --baseline-method gfn1`: the baseline of a per-atom (Löwdin-projected)
DOS is the method's orbital energies broadened with its per-atom Löwdin weights on the target's grid; it equals the
GFN1 labeler's own pdos, the model equals a `--baseline KEY` fit on frames pre-labelled with the GFN1 pdos (1e-8),
summed over the atoms it is the total-DOS baseline, and what stays refused is refused in one line."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from tests.spectra._shared import two_level_orbitals

from psilearn.cli.main import main
from psilearn.data.spectra import load_spectrum_dataset, spectrum_target
from psilearn.errors import ConfigError
from psilearn.label import make_labeler
from psilearn.label.orbitals import DOSGrid
from psilearn.models.factory import fit_model
from psilearn.models.fidelity import delta_kind, delta_method_kind
from psilearn.targets import Target

METHOD = "gfn1"
GRID = DOSGrid(-1.0, 0.3, 53, 0.03)  # Hartree
CFG = {"soap": {"cutoff": 4.0, "max_radial": 4, "max_angular": 3}, "model": {"n_sparse": 20}}


@pytest.fixture(scope="module")
def labelled():
    """Perturbed H2O, CH4, NH3: GFN2 orbitals (the target, its pdos on GRID) and GFN1 (the baseline, same grid)."""
    return two_level_orbitals(9, 7, low=METHOD, dos=GRID)


def _bare(frames):
    out = []
    for a in frames:
        b = a.copy()
        b.info = {}
        for k in list(b.arrays):
            if k not in ("numbers", "positions"):
                del b.arrays[k]
        out.append(b)
    return out


def _with_baseline(high, low):
    out = []
    for a, b in zip(high, low):
        c = a.copy()
        c.arrays["pdos_b"] = b.arrays["pdos"]
        c.info["pdos_b_grid"] = GRID.energies
        out.append(c)
    return out


def test_per_atom_baseline_is_the_methods_pdos_and_equals_a_baseline_key_fit(labelled, tmp_path):
    high, low = labelled
    target = spectrum_target(high, "pdos", per="atom", grid_units="Hartree")
    assert target.per == "atom" and np.allclose(target.grid, GRID.energies)
    kind = delta_method_kind(METHOD, "spectrum", db=tmp_path / "b.db", sigma=GRID.sigma)
    assert kind.resolve_method(target).label == "orbital_atom_weights"
    model = fit_model(kind, target, load_spectrum_dataset(high[:6], target), CFG)
    pred = model.predict(_bare(high[6:]))
    ref = np.concatenate([b.arrays["pdos"] for b in low[6:]])
    assert pred.baseline.shape == ref.shape == (sum(len(a) for a in high[6:]), len(GRID.energies))
    assert np.abs(pred.baseline - ref).max() < 1e-10 * ref.max()  # the GFN1 labeler's pdos, rebroadened from its weights
    pre = _with_baseline(high, low)
    key_model = fit_model(delta_kind("pdos_b", "spectrum"), target, load_spectrum_dataset(pre[:6], target), CFG)
    key_pred = key_model.predict(pre[6:])
    assert np.abs(pred.values - key_pred.values).max() < 1e-8 * ref.max()
    dos_target = spectrum_target(high, "dos", grid_units="Hartree")
    total = fit_model(delta_method_kind(METHOD, "spectrum", db=tmp_path / "b.db", sigma=GRID.sigma), dos_target,
                      load_spectrum_dataset(high[:6], dos_target), CFG)
    assert total.last_baseline_summary.done == 0  # the total-DOS baseline reuses the same stored labels
    whole = total.predict(_bare(high[6:])).baseline
    owner = np.repeat(np.arange(3), [len(a) for a in high[6:]])
    summed = np.array([pred.baseline[owner == i].sum(axis=0) for i in range(3)])
    assert np.abs(summed - whole).max() < 1e-10 * whole.max()


def test_cli_per_atom_pdos_baseline_method(labelled, tmp_path, capsys):
    high, low = labelled
    train, test = tmp_path / "train.xyz", tmp_path / "test.xyz"
    ase.io.write(train, high[:6])
    ase.io.write(test, _bare(high[6:]))
    back = ase.io.read(train, ":") + ase.io.read(test, ":")  # the positions the CLI sees (extxyz rounds them)
    g1 = make_labeler(METHOD, "orbitals", dos=GRID)
    pre = _with_baseline(back, [g1.label(a) for a in back])
    ase.io.write(tmp_path / "train_b.xyz", pre[:6])
    ase.io.write(tmp_path / "test_b.xyz", pre[6:])
    cfg = tmp_path / "c.yaml"
    # a fixed regularization: the marginal-likelihood choice moves by percents under the 1e-8 rounding of pdos_b in the file
    cfg.write_text("soap: {cutoff: 4.0, max_radial: 4, max_angular: 3}\nmodel: {n_sparse: 20, regularization: 1.0e-4}\n")
    common = ["--target", "pdos", "--per", "atom", "--grid-units", "Hartree", "--config", str(cfg)]
    assert main(["fit-spectrum", str(train), *common, "--baseline-method", METHOD, "-o", str(tmp_path / "m.model")]) == 0
    assert "Löwdin-projected DOS per atom of the gfn1 orbital energies (sigma 0.03 Hartree" in capsys.readouterr().err
    assert main(["fit-spectrum", str(tmp_path / "train_b.xyz"), *common, "--baseline", "pdos_b", "-o", str(tmp_path / "k.model")]) == 0
    assert main(["predict-spectrum", str(tmp_path / "m.model"), str(test), "-o", str(tmp_path / "pm.xyz")]) == 0
    assert main(["predict-spectrum", str(tmp_path / "k.model"), str(tmp_path / "test_b.xyz"), "-o", str(tmp_path / "pk.xyz")]) == 0
    for m, k, b in zip(ase.io.read(tmp_path / "pm.xyz", ":"), ase.io.read(tmp_path / "pk.xyz", ":"), pre[6:]):
        scale = b.arrays["pdos_b"].max()
        assert np.abs(m.arrays["pdos_baseline"] - b.arrays["pdos_b"]).max() < 1e-8 * scale
        assert np.abs(m.arrays["pdos"] - k.arrays["pdos"]).max() < 1e-8 * scale


@pytest.mark.parametrize("target, message", [
    (Target("dos", grid=tuple(GRID.energies), grid_units="Hartree", absorber="Fe", pool="mean"),  # absorbers: per structure
     "belongs to the Fe absorber \\(an X-ray spectrum\\)"),
    (Target("absorbance", per="atom", grid=tuple(GRID.energies), grid_units="Hartree"), "is not named as a density of states"),
    (Target("pdos", per="atom", grid=tuple(GRID.energies), grid_units="cm^-1"), "has the grid units 'cm\\^-1'"),
])
def test_what_stays_refused_is_one_line(target, message):
    with pytest.raises(ConfigError, match=message) as e:
        delta_method_kind(METHOD, "spectrum", sigma=GRID.sigma).resolve_method(target)
    assert "\n" not in str(e.value)


def test_cli_absorber_spectrum_still_refused(labelled, tmp_path, capsys):
    high, _ = labelled
    train = tmp_path / "train.xyz"
    ase.io.write(train, high[::3])  # the water molecules: each has an O
    assert main(["fit-spectrum", str(train), "--target", "dos", "--grid-units", "Hartree", "--absorber", "O",
                 "--baseline-method", METHOD, "-o", str(tmp_path / "x.model")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "belongs to the O absorber (an X-ray spectrum)" in err[0], err
    assert not (tmp_path / "x.model.baseline.db").exists()
