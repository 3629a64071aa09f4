"""The bundled demo data and `psilearn demo` (what `make demo` runs)."""

import json

import numpy as np

from psilearn import Target, load_dataset
from psilearn.cli.demo_cmd import DEMO_TARGETS, demo_data_path
from psilearn.cli.main import main


def test_bundled_demo_data_is_complete_and_valid():
    for key, formula, _, _ in DEMO_TARGETS:
        ds = load_dataset(demo_data_path(), Target(key, tensor=formula))  # raises on missing/NaN/asymmetric
        assert len(ds) == 300
        assert sorted(ds.species) == [1, 6, 7, 8]
    frames = load_dataset(demo_data_path(), Target("alpha", tensor="ij=ji")).frames
    assert "atomic units" in str(frames[0].info.get("label_units", "")) or "Bohr" in str(frames[0].info.get("label_units", ""))
    # four molecules, 75 frames each
    formulas = [a.get_chemical_formula() for a in frames]
    assert sorted(set(formulas.count(f) for f in set(formulas))) == [75]


def test_demo_command_fits_accurate_models(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    for name in ("dipole", "polarizability"):
        assert (tmp_path / f"{name}.model" / "model.json").exists()
        assert (tmp_path / f"{name}_parity.png").stat().st_size > 10_000
        # held-out error well below the spread of the labels, and error bars that mean something
        assert summary[name]["metrics"]["cartesian"]["pct_rmse"] < 5.0
        assert 0.8 < summary[name]["calibration"]["within_2sigma"] <= 1.0
    assert np.isfinite(summary["polarizability"]["fit_seconds"])


def test_bundled_md_set_has_every_promised_label():
    path = demo_data_path("md_molecules.xyz")
    for target in [Target("total_energy"), Target("dipole_moment", tensor="i"), Target("alpha", tensor="ij=ji"),
                   Target("shielding", per="atom", tensor="ij"), Target("hirshfeld_charges", per="atom")]:
        ds = load_dataset(path, target)
        assert len(ds) >= 500
    frames = ds.frames
    assert len({a.info["smiles"] for a in frames}) >= 3
    assert all("orbital_energies" in a.info and "gap" in a.info for a in frames)
    # Hirshfeld charges of neutral molecules sum to ~0
    assert max(abs(a.arrays["hirshfeld_charges"].sum()) for a in frames) < 1e-2
