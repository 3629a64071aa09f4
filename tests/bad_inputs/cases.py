"""The corpus of bad inputs: each case is a command line, the fragment its one-line error must
contain, and the exit code (2: bad input). Run by test_corpus.py in a fresh copy of a small world:

* ``good.xyz`` (6 labelled molecules, H C N O: total_energy, dipole_moment, alpha), ``e.model`` (a
  baseline model of total_energy fitted on it), ``labels.db`` (a psilearn label database),
  ``spec.csv`` (a spectrum table), ``afile`` (a plain file);
* every file of ``files/`` (the small bad inputs, readable as they are);
* what a case's ``make(dir)`` builds (binary inputs: DeePMD systems, .npy files, tampered models).

After each command, every file of the world must be unchanged and no file added (no output, no
temporary left behind).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    expect: str
    code: int = 2
    make: Callable[[Path], None] | None = None


def predict(path: str) -> tuple[str, ...]:
    return ("predict", "e.model", path, "-o", "out.xyz")


def active(*extra: str) -> tuple[str, ...]:
    return ("active", "good.xyz", "--target", "total_energy", "--oracle", "total_energy", "--init", "2", "--batch", "1",
            "--budget", "4", "-o", "al.model", *extra)


def fit(path: str, *extra: str) -> tuple[str, ...]:
    return ("fit", path, "--target", "total_energy", "--model", "baseline", "-o", "new.model", *extra)


# ---- builders of binary inputs ---------------------------------------------------------------------
def deepmd(type_raw="0 0", type_map="H", coord=None, extra: dict | None = None, raw_files: dict | None = None):
    """A DeePMD system 'dp/' with two H atoms and two frames unless told otherwise."""

    def make(d: Path) -> None:
        sysdir = d / "dp"
        (sysdir / "set.000").mkdir(parents=True)
        (sysdir / "type.raw").write_text(type_raw)
        if type_map is not None:
            (sysdir / "type_map.raw").write_text(type_map)
        c = np.array([[0, 0, 0, 0, 0, 0.74], [0, 0, 0, 0, 0, 0.75]]) if coord is None else coord
        if not isinstance(c, bytes):
            np.save(sysdir / "set.000" / "coord.npy", c)
        else:
            (sysdir / "set.000" / "coord.npy").write_bytes(c)
        for name, arr in (extra or {}).items():
            np.save(sysdir / "set.000" / f"{name}.npy", arr)
        for name, text in (raw_files or {}).items():
            (sysdir / name).write_text(text)

    return make


def no_sets(d: Path) -> None:
    (d / "dp").mkdir()
    (d / "dp" / "type.raw").write_text("0")
    (d / "dp" / "type_map.raw").write_text("H")


def foreign_sqlite(d: Path) -> None:
    with sqlite3.connect(d / "other.db") as con:
        con.execute("CREATE TABLE customers (name TEXT)")
        con.execute("INSERT INTO customers VALUES ('Ada')")
    con.close()


def edit_model_json(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        meta = json.loads((d / "e.model" / "model.json").read_text())
        change(meta)
        (d / "e.model" / "model.json").write_text(json.dumps(meta))

    return make


def tamper_arrays(d: Path) -> None:
    npz = d / "e.model" / "arrays.npz"
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    key = next(k for k, v in arrays.items() if v.dtype.kind == "f" and v.size)
    arrays[key] = arrays[key] + 1.0
    np.savez(npz, **arrays)


def truncate_arrays(d: Path) -> None:
    npz = d / "e.model" / "arrays.npz"
    npz.write_bytes(npz.read_bytes()[:100])


def foreign_model_dir(d: Path) -> None:
    (d / "notes").mkdir()
    (d / "notes" / "readme.txt").write_text("not a model")


def garbage_model_json(d: Path) -> None:
    (d / "e.model" / "model.json").write_text("{ this is not json")


def some_dir(d: Path) -> None:
    (d / "outdir").mkdir()
    (d / "outdir" / "keep.txt").write_text("keep")


CASES: list[Case] = [
    # ---- extxyz reader: file, frame and line ----
    Case("xyz-unknown-element", predict("unknown_element.xyz"), "unknown_element.xyz, frame 0, line 3: unknown element symbol 'Xx'"),
    Case("xyz-not-a-number", predict("not_a_number.xyz"), "not_a_number.xyz, frame 0, line 4: column 4 (pos2): 'abc' is not a number"),
    Case("xyz-truncated", predict("truncated.xyz"), "truncated.xyz, frame 1, line 5: announces 3 atoms but the file ends after 2"),
    Case("xyz-count-not-integer", predict("count_not_integer.xyz"), "count_not_integer.xyz, frame 0, line 1: expected the number of atoms"),
    Case("xyz-extra-atom-line", predict("extra_atom_line.xyz"), "extra_atom_line.xyz, frame 1, line 5: expected the number of atoms, got 'H 0.0 0.0 1.5'"),
    Case("xyz-blank-between-frames", predict("blank_between_frames.xyz"), "line 5: blank line after frame 0"),
    Case("xyz-missing-column", predict("missing_column.xyz"), "missing_column.xyz, frame 0, line 4: 6 columns, expected 7"),
    Case("xyz-lattice-8-numbers", predict("lattice_8_numbers.xyz"), "lattice_8_numbers.xyz, frame 0, line 2: cannot parse the comment line"),
    Case("xyz-bad-properties", predict("bad_properties.xyz"), "invalid Properties 'species:Q:1:pos:R:3'"),
    Case("xyz-pbc-two-values", predict("pbc_two_values.xyz"), "line 2: pbc must be three T/F values"),
    Case("xyz-not-text", predict("not_text.xyz"), "not_text.xyz, line 1: not a text file"),
    Case("xyz-empty", predict("empty.xyz"), "empty.xyz: the file is empty"),
    Case("xyz-only-blank-lines", predict("only_blank_lines.xyz"), "only_blank_lines.xyz: no structures"),
    Case("xyz-negative-count", predict("negative_count.xyz"), "negative number of atoms"),
    Case("missing-input", predict("nowhere.xyz"), "nowhere.xyz: not found"),
    Case("unknown-format", predict("unknown_format.foo"), "unknown_format.foo: cannot read structures (unknown file format"),
    # ---- elements ----
    Case("element-dummy-X", predict("dummy_atom_X.xyz"), "dummy_atom_X.xyz, frame 0: atom 0 has atomic number 0, not a chemical element"),
    Case("element-unseen-in-training", predict("unseen_element.xyz"), "element(s) Si never seen in training"),
    Case("element-flag-unknown", ("fit-spectrum", "good.xyz", "--target", "alpha", "--elements", "C,Xx", "-o", "s.model"),
         "--elements: 'Xx' is not an element symbol"),
    # ---- magres ----
    Case("magres-bad-lattice", predict("bad_lattice.magres"), "bad_lattice.magres, line 4: lattice must be 9 numbers"),
    Case("magres-not-magres", predict("not_magres.magres"), "not_magres.magres, line 1: not a magres file"),
    Case("magres-unknown-element", predict("unknown_element.magres"), "unknown_element.magres, line 4: unknown element symbol 'Qq'"),
    Case("magres-tensor-for-missing-atom", predict("tensor_for_missing_atom.magres"),
         "line 9: ms for atom H 3, which the [atoms] block does not list"),
    # ---- DeePMD systems ----
    Case("deepmd-type-not-integer", predict("dp"), "type.raw: 'a' is not an atom type", make=deepmd(type_raw="0 a")),
    Case("deepmd-unknown-element", predict("dp"), "type_map.raw: 'Qq' is not an element symbol", make=deepmd(type_map="Qq")),
    Case("deepmd-type-out-of-range", predict("dp"), "type.raw: type 3 is not in type_map.raw", make=deepmd(type_raw="0 3")),
    Case("deepmd-negative-type", predict("dp"), "type.raw: '-1' is not an atom type", make=deepmd(type_raw="0 -1")),
    Case("deepmd-missing-type-map", predict("dp"), "type_map.raw is missing", make=deepmd(type_map=None)),
    Case("deepmd-coord-width", predict("dp"), "coord.npy: 5 numbers per frame, expected 6", make=deepmd(coord=np.zeros((2, 5)))),
    Case("deepmd-coord-not-npy", predict("dp"), "coord.npy: not a readable .npy array", make=deepmd(coord=b"0 0 0 0 0 0.74\n")),
    Case("deepmd-label-frames", predict("dp"), "energy.npy: 3 frames, expected 2", make=deepmd(extra={"energy": np.zeros(3)})),
    Case("deepmd-label-strings", predict("dp"), "name.npy: holds <U1 values, expected numbers", make=deepmd(extra={"name": np.array(["a", "b"])})),
    Case("deepmd-box-width", predict("dp"), "box.npy: 4 numbers per frame, expected 9", make=deepmd(extra={"box": np.ones((2, 4))})),
    Case("deepmd-no-sets", predict("dp"), "no set.* folders", make=no_sets),
    Case("deepmd-nan-coordinate", predict("dp"), "frame 1: atom 1 (H) has a non-finite position",
         make=deepmd(coord=np.array([[0, 0, 0, 0, 0, 0.74], [0, 0, 0, 0, 0, np.nan]]))),
    Case("deepmd-selection-out-of-range", predict("dp@5"), "dp: no frame 5: the file has 2 frames", make=deepmd()),
    # ---- ASE / label databases ----
    Case("db-input-not-sqlite", predict("not_sqlite.db"), "not_sqlite.db: cannot read structures"),
    Case("db-status-not-sqlite", ("db", "status", "not_sqlite.db"), "not_sqlite.db: not an SQLite database"),
    Case("db-export-not-sqlite", ("db", "export", "not_sqlite.db", "-o", "out.xyz"), "not_sqlite.db: not an SQLite database"),
    Case("label-db-not-sqlite", ("label", "good.xyz", "--method", "gfn2", "--db", "not_sqlite.db"),
         "--db not_sqlite.db: exists and is not an SQLite database"),
    Case("db-status-missing", ("db", "status", "nowhere.db"), "nowhere.db: label database not found"),
    Case("db-status-foreign-sqlite", ("db", "status", "other.db"), "other.db: an SQLite database but not an ASE label database",
         make=foreign_sqlite),
    Case("db-status-not-db-suffix", ("db", "status", "good.xyz"), "must be an SQLite file ending in .db"),
    # ---- frame selections ----
    Case("slice-dash", predict("good.xyz@0-5"), "did you mean '@0:5'?"),
    Case("slice-empty", predict("good.xyz@30:40"), "good.xyz: the selection '@30:40' is empty: the file has 6 frames"),
    Case("slice-out-of-range", predict("good.xyz@25"), "good.xyz: no frame 25: the file has 6 frames"),
    Case("slice-zero-step", predict("good.xyz@::0"), "the step cannot be 0"),
    Case("slice-words", predict("good.xyz@first"), "invalid frame selection '@first'"),
    # ---- cells and coordinates ----
    Case("cell-coplanar", predict("coplanar_cell.xyz"), "coplanar_cell.xyz, frame 0: periodic (pbc=\"T T T\") but the cell is degenerate: "
         "the lattice vectors are coplanar"),
    Case("cell-zero-vector", predict("zero_lattice_vector.xyz"), "lattice vector c is zero"),
    Case("cell-nan", predict("nan_lattice.xyz"), "nan_lattice.xyz, frame 0: periodic (pbc=\"T T T\") but the cell is degenerate: the lattice has "
         "non-finite entries"),
    Case("coord-absurd", predict("absurd_coordinate.xyz"), "atom 1 (H) is at 1e+30 Angstrom from the origin"),
    Case("coord-nan", predict("nan_coordinate.xyz"), "atom 1 (H) has a non-finite position"),
    Case("coord-inf", predict("inf_coordinate.xyz"), "atom 1 (H) has a non-finite position"),
    # ---- labels ----
    Case("label-nan", fit("nan_label.xyz", "--target", "energy"), "nan_label.xyz, frame 0: label 'energy' contains NaN or infinite values"),
    Case("label-inf-per-atom", fit("inf_per_atom_label.xyz", "--target", "q", "--per", "atom"), "label 'q' contains NaN or infinite values"),
    Case("label-missing", fit("good.xyz", "--target", "homo"), "no label 'homo'"),
    Case("label-not-numeric", fit("label_not_numeric.xyz", "--target", "energy"), "label 'energy' is not numeric"),
    Case("label-wrong-size", fit("good.xyz", "--target", "alpha", "--tensor", "i"), "label 'alpha' has 9 numbers, expected 3"),
    Case("label-asymmetric", fit("asymmetric_tensor.xyz", "--target", "alpha", "--tensor", "ij=ji"), "is declared 'ij=ji' but is not symmetric"),
    Case("spectrum-nan", ("compare", "spectrum_nan.csv", "spec.csv"), "spectrum_nan.csv: contains NaN or infinite values"),
    Case("spectrum-grid-order", ("compare", "spectrum_grid_not_increasing.csv", "spec.csv"), "must be strictly increasing"),
    # ---- targets: tensor formulas ----
    Case("tensor-repeated-index", fit("good.xyz", "--tensor", "ij=jj"), "invalid tensor formula 'ij=jj'"),
    Case("tensor-upper-case", fit("good.xyz", "--tensor", "IJ"), "invalid tensor formula 'IJ'"),
    Case("tensor-rank-5", fit("good.xyz", "--tensor", "ijklm"), "ranks above 4 are not supported"),
    Case("tensor-not-permutation", fit("good.xyz", "--tensor", "ij=jk"), "invalid tensor formula 'ij=jk'"),
    Case("tensor-traceless-general", fit("good.xyz", "--target", "alpha", "--tensor", "ijk", "--traceless"), "traceless is supported"),
    # ---- options files and flags ----
    Case("config-not-a-number", fit("good.xyz", "--model", "sagpr", "--config", "cutoff_not_number.yaml"),
         "cutoff_not_number.yaml: soap.cutoff: expected a number"),
    Case("config-invalid-yaml", fit("good.xyz", "--config", "invalid.yaml"), "invalid.yaml: invalid YAML (line 2, column 1"),
    Case("config-tab-indent", fit("good.xyz", "--config", "tab_indent.yaml"), "tab_indent.yaml: invalid YAML (line 3, column 1"),
    Case("config-unknown-section", fit("good.xyz", "--config", "unknown_section.yaml"), "unknown section 'soup'"),
    Case("config-option-typo", fit("good.xyz", "--model", "sagpr", "--config", "option_typo.yaml"), "did you mean 'cutoff'?"),
    Case("magmoms-missing", fit("good.xyz", "--model", "sagpr", "--config", "magnetic_moments.yaml"),
         "good.xyz, frame 0: no per-atom 'initial_magmoms' (the model takes collinear magnetic moments as inputs)"),
    Case("config-not-a-mapping", fit("good.xyz", "--config", "not_a_mapping.yaml"), "not_a_mapping.yaml: expected a mapping"),
    Case("config-not-text", fit("good.xyz", "--config", "not_text.yaml"), "not_text.yaml: not a text (UTF-8) file"),
    Case("config-missing", fit("good.xyz", "--config", "nowhere.yaml"), "config file nowhere.yaml not found"),
    Case("config-other-kind", fit("good.xyz", "--model", "sagpr", "--config", "section_of_other_kind.yaml"),
         "section 'nn' is not used by model kind 'sagpr'"),
    Case("model-kind-unknown", fit("good.xyz", "--model", "forest"), "unknown model 'forest'"),
    Case("flag-n-components", ("pca", "spec.csv", "--n-components", "abc"), "--n-components: expected a number of components"),
    Case("flag-sizes", ("learning-curve", "good.xyz", "good.xyz", "--target", "total_energy", "--model", "baseline", "--sizes", "a,b"), "--sizes"),
    Case("flag-grid", ("compare", "spec.csv", "spec.csv", "--grid", "0:a:5"), "cannot read a grid from '0:a:5'"),
    # ---- outputs: nothing lost ----
    Case("out-is-input", ("predict", "e.model", "good.xyz", "-o", "good.xyz"), "-o good.xyz: the output is also an input"),
    Case("out-is-input-spec", ("predict", "e.model", "good.xyz@:3", "-o", "./good.xyz"), "the output is also an input"),
    Case("out-is-the-model", ("evaluate", "e.model", "good.xyz", "--plot", "e.model"), "--plot e.model: the output is also an input"),
    Case("out-db-export-onto-db", ("db", "export", "labels.db", "-o", "labels.db"), "-o labels.db: the output is also an input"),
    Case("out-file-over-database", ("predict", "e.model", "good.xyz", "-o", "labels.db"), "-o labels.db: is an SQLite database"),
    Case("out-label-input-is-db", ("label", "labels.db", "--method", "gfn2", "--db", "labels.db"), "--db labels.db: the output is also an input"),
    Case("out-label-o-is-db", ("label", "good.xyz", "--method", "gfn2", "--db", "labels.db", "-o", "labels.db"),
         "-o labels.db: the same path as --db"),
    Case("out-model-exists", fit("good.xyz", "-o", "e.model"), "-o e.model: a model already exists there; pass --overwrite"),
    Case("out-model-over-file", fit("good.xyz", "-o", "afile"), "-o afile: exists and is not a psilearn model"),
    Case("out-parent-is-file", ("predict", "e.model", "good.xyz", "-o", "afile/out.xyz"), "afile is a file, not a directory"),
    Case("out-is-directory", ("predict", "e.model", "good.xyz", "-o", "outdir"), "-o outdir: is a directory", make=some_dir),
    Case("out-inside-input-dir", ("predict", "e.model", "dp", "-o", "dp/pred.xyz"), "the output is inside the input directory",
         make=deepmd()),
    Case("out-two-outputs-same", ("compare", "spec.csv", "spec.csv", "--csv", "x.png", "--plot", "x.png"), "the same path as --csv"),
    Case("out-spectrum-onto-trajectory", ("spectrum", "ir", "good.xyz", "--key", "dipole_moment", "-o", "good.xyz"),
         "-o good.xyz: the output is also an input"),
    Case("out-md-onto-start", ("md", "good.xyz", "--steps", "2", "-o", "good.xyz"), "the output is also an input"),
    Case("out-sample-onto-input", ("sample", "good.xyz", "--mode", "rattle", "-o", "good.xyz"), "the output is also an input"),
    Case("out-learning-curve-plot", ("learning-curve", "good.xyz", "spec.csv", "--target", "e", "--plot", "spec.csv"),
         "--plot spec.csv: the output is also an input"),
    Case("out-demo-into-file", ("demo", "--out", "afile"), "--out afile: exists and is not a directory"),
    # ---- model files: tampered, truncated, foreign ----
    Case("model-tampered-array", predict("good.xyz"), "does not match its checksum", make=tamper_arrays),
    Case("model-truncated-arrays", predict("good.xyz"), "arrays.npz: unreadable", make=truncate_arrays),
    Case("model-edited-metadata", predict("good.xyz"), "metadata does not match its checksum",
         make=edit_model_json(lambda m: m["target"].update(units="eV"))),
    Case("model-future-version", predict("good.xyz"), "model format version 99 is not supported",
         make=edit_model_json(lambda m: m.update(format_version=99))),
    Case("model-corrupt-json", predict("good.xyz"), "corrupt metadata", make=garbage_model_json),
    Case("model-foreign-dir", ("predict", "notes", "good.xyz", "-o", "out.xyz"), "notes: not a psilearn model", make=foreign_model_dir),
    Case("model-missing", ("predict", "nowhere.model", "good.xyz", "-o", "out.xyz"), "nowhere.model: no such model"),
    Case("model-is-a-file", ("predict", "afile", "good.xyz", "-o", "out.xyz"), "afile: not a psilearn model"),
    # ---- psilearn density ----
    Case("density-no-labels", ("density", "labels", "good.xyz", "-o", "out.xyz"), "frame 0: no 'density_coefficients'"),
    Case("density-not-a-density-model", ("density", "e.model", "good.xyz", "-o", "out.xyz"),
         "the model predicts 'total_energy', not density-fitting coefficients"),
    Case("density-out-is-input", ("density", "labels", "good.xyz", "-o", "good.xyz"), "-o good.xyz: the output is also an input"),
    Case("density-esp-grid-without-cube", ("density", "labels", "good.xyz", "-o", "out.xyz", "--esp-grid"),
         "--esp-grid writes ESP cube files: give --cube DIR"),
    Case("density-cube-over-file", ("density", "labels", "good.xyz", "-o", "out.xyz", "--cube", "afile"),
         "--cube afile: exists and is not a directory"),
    # ---- fit --tune and --label-mask ----
    Case("tune-untunable-kind", fit("good.xyz", "--tune", "5"), "--tune: model kind 'baseline' cannot be tuned yet"),
    Case("tune-with-val-fraction", fit("good.xyz", "--model", "sagpr", "--tune", "5", "--val-fraction", "0.2"),
         "--tune cannot be combined with --val-fraction"),
    Case("tune-negative-budget", fit("good.xyz", "--model", "sagpr", "--tune", "-5"), "--tune: the budget must be a positive number"),
    Case("label-mask-structure-target", fit("good.xyz", "--label-mask", "has_tensor"), "applies to per-atom targets only"),
    # ---- active learning ----
    Case("active-budget-below-init", active("--init", "4", "--budget", "3"), "--budget 3 is smaller than the initial set --init 4"),
    Case("active-init-zero", active("--init", "0"), "--init must be >= 1"),
    Case("active-batch-zero", active("--batch", "0"), "--batch must be >= 1"),
    Case("active-pool-below-budget", active("--budget", "10"), "good.xyz holds 6 structures, fewer than --budget 10"),
    Case("active-oracle-missing", ("active", "good.xyz", "--target", "homo", "--oracle", "homo", "--init", "2", "--batch", "1",
                                   "--budget", "4", "-o", "al.model"), "good.xyz: frame 0 has no label 'homo'"),
    Case("active-unknown-kind", active("--model", "gpr2"), "unknown model 'gpr2'"),
    Case("active-no-source", ("active", "good.xyz", "--target", "total_energy", "--init", "2", "--batch", "1", "--budget", "4",
                              "-o", "al.model"), "either --oracle KEY"),
    Case("active-model-exists", active("-o", "e.model"), "-o e.model: a model already exists there"),
]
