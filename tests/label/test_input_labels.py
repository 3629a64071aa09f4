"""`psilearn label` keeps the labels its input already had: a label the labeling replaces is written
as KEY_input, with one warning line naming the keys. Before, the output silently carried the new
values only (a reference DFT `alpha` replaced by GFN2's, so the output mixed sources)."""

import ase.io
import numpy as np

from psilearn.cli.main import main as cli_main

from .conftest import water


def test_label_keeps_replaced_input_labels_as_key_input(tmp_path, capsys):
    ref = water()
    ref.info["alpha"] = np.diag([9.9, 9.1, 9.5]).ravel()  # a reference (DFT) polarizability
    ref.info["total_energy"] = -76.4
    ref.info["note"] = "reference set"
    ref.arrays["hirshfeld_charges"] = np.array([-0.3, 0.15, 0.15])  # not computed here: stays as it is
    inp = tmp_path / "in.xyz"
    ase.io.write(inp, [ref], format="extxyz")
    out = tmp_path / "out.xyz"
    argv = ["label", str(inp), "--method", "gfn2", "--observables", "energy,polarizability", "--db", str(tmp_path / "l.db"),
            "--workers", "0", "--no-progress", "-o", str(out)]
    assert cli_main(argv) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "alpha" in warning[0] and "total_energy" in warning[0] and "alpha_input" in warning[0]
    (a,) = ase.io.read(out, ":")
    np.testing.assert_allclose(a.info["alpha_input"], ref.info["alpha"])
    assert a.info["total_energy_input"] == -76.4
    assert a.info["total_energy"] != -76.4 and not np.allclose(a.info["alpha"], ref.info["alpha"])  # GFN2's own
    assert a.info["note"] == "reference set" and "note_input" not in a.info
    np.testing.assert_allclose(a.arrays["hirshfeld_charges"], ref.arrays["hirshfeld_charges"])
    assert "hirshfeld_charges_input" not in a.arrays
    # labeling the output again with the same method replaces nothing: no warning, no new keys
    again = tmp_path / "again.xyz"
    assert cli_main([*argv[:1], str(out), *argv[2:-1], str(again)]) == 0
    assert "warning" not in capsys.readouterr().err
    (b,) = ase.io.read(again, ":")
    assert "alpha_input_input" not in b.info
    np.testing.assert_allclose(b.info["alpha_input"], ref.info["alpha"])
    # the same structure from another input, already in the database: its reference is kept too
    other = water()
    other.info["alpha"] = np.diag([1.0, 2.0, 3.0]).ravel()
    ase.io.write(inp, [other], format="extxyz")
    assert cli_main(argv) == 0
    assert "alpha_input" in capsys.readouterr().err
    (c,) = ase.io.read(out, ":")
    np.testing.assert_allclose(c.info["alpha_input"], other.info["alpha"])
