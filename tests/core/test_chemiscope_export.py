"""`psilearn chemiscope MODEL DATA -o map.json.gz`: the file opens in chemiscope's own reader
(chemiscope.show_input, chemiscope 1.1.0 has no read_input) with the structures, the predicted and
reference properties, their uncertainties and the 2-D map."""

import json

import numpy as np
import pytest

from psilearn.cli.main import main
from psilearn.data import read_structures, write_structures
from psilearn.models import load
from psilearn.observe.chemiscope_export import tensor_summaries
from psilearn.targets import Target

from ._synth import SMALL_MODEL, SMALL_SOAP, label_frames, molecules

chemiscope = pytest.importorskip("chemiscope")


def _read(path) -> dict:
    """chemiscope's reader: the widget it builds holds the validated input as JSON."""
    return json.loads(chemiscope.show_input(str(path)).value)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("chemiscope")
    frames = label_frames(label_frames(molecules(41, 22), "alpha", "sym2", "structure"), "q", "scalar", "atom")
    write_structures(d / "train.xyz", frames[:16])
    write_structures(d / "test.xyz", frames[16:])
    bare = [a.copy() for a in frames[16:]]
    for a in bare:
        a.info.pop("alpha")
        del a.arrays["q"]
    write_structures(d / "new.xyz", bare)
    soap = ", ".join(f"{k}: {v}" for k, v in SMALL_SOAP.items())
    (d / "small.yaml").write_text(f"soap: {{{soap}}}\nmodel: {{n_sparse: {SMALL_MODEL['n_sparse']}}}\n")
    common = ["--config", str(d / "small.yaml")]
    assert main(["fit", str(d / "train.xyz"), "--target", "alpha", "--tensor", "ij=ji", "--units", "au", *common, "-o", str(d / "alpha.model")]) == 0
    assert main(["fit", str(d / "train.xyz"), "--target", "q", "--per", "atom", "--units", "e", *common, "-o", str(d / "q.model")]) == 0
    return d


def test_structure_tensor_target(files, capsys):
    out = files / "maps" / "alpha.json.gz"  # a missing directory is created
    assert main(["chemiscope", str(files / "alpha.model"), str(files / "test.xyz"), "-o", str(out)]) == 0
    assert "6 structures" in capsys.readouterr().out
    data = _read(out)
    assert len(data["structures"]) == 6
    props = data["properties"]
    for name in ["alpha_iso", "alpha_iso_std", "alpha_aniso", "alpha_aniso_std", "alpha_xx", "alpha_xy_std",
                 "alpha_reference_iso", "alpha_error_rms", "PCA[1]", "PCA[2]"]:
        assert name in props and len(props[name]["values"]) == 6 and props[name]["target"] == "structure", name
    assert "alpha_yx" not in props  # a symmetric tensor: the upper triangle only
    assert props["alpha_iso"]["units"] == "au"
    assert data["settings"]["map"]["x"]["property"] == "PCA[1]" and data["settings"]["map"]["y"]["property"] == "PCA[2]"
    assert data["settings"]["map"]["color"]["property"] == "alpha_iso"
    assert np.std(props["PCA[1]"]["values"]) > 0
    # the numbers are the model's predictions and the file's labels
    frames = read_structures(str(files / "test.xyz"))
    pred = load(files / "alpha.model").predict(frames)
    t = pred.values.reshape(-1, 3, 3)
    assert np.allclose(props["alpha_iso"]["values"], np.trace(t, axis1=1, axis2=2) / 3)
    assert np.allclose(props["alpha_xy"]["values"], t[:, 0, 1]) and np.allclose(props["alpha_zz_std"]["values"], pred.std[:, 8])
    ref = np.array([a.info["alpha"] for a in frames]).reshape(-1, 3, 3)
    assert np.allclose(props["alpha_reference_iso"]["values"], np.trace(ref, axis1=1, axis2=2) / 3)
    assert "sagpr model's own SOAP settings" in props["PCA[1]"]["description"]


def test_per_atom_target_and_unlabelled_data(files, capsys):
    out = files / "q.json"
    assert main(["chemiscope", str(files / "q.model"), str(files / "new.xyz"), "-o", str(out)]) == 0
    assert "no reference labels" in capsys.readouterr().out
    data = _read(out)
    n_atoms = sum(s["size"] for s in data["structures"])
    assert len(data["environments"]) == n_atoms
    props = data["properties"]
    assert {"q", "q_std", "PCA[1]", "PCA[2]"} <= set(props)
    assert not any("reference" in k or "error" in k for k in props)
    assert all(p["target"] == "atom" and len(p["values"]) == n_atoms for p in props.values())
    assert data["settings"]["target"] == "atom"
    assert "no reference labels" in data["meta"]["description"]


def test_model_without_soap_uses_default_descriptor(files):
    from psilearn.data import load_dataset
    from psilearn.models.baseline import BaselineModel
    from psilearn.observe.chemiscope_export import export_chemiscope

    target = Target("alpha", tensor="ij=ji")
    model = BaselineModel.build(target).fit(load_dataset(str(files / "train.xyz"), target))
    s = export_chemiscope(model, str(files / "test.xyz"), files / "base.json")
    assert "default SOAP settings" in s["map"] and "its own features are not used" in s["map"]
    assert s["reference"] and {"PCA[1]", "alpha_iso"} <= set(_read(files / "base.json")["properties"])


def test_bad_output_is_one_line_error(files, capsys):
    assert main(["chemiscope", str(files / "alpha.model"), str(files / "test.xyz"), "-o", str(files / "map.xyz")]) == 2
    assert "must end in .json or .json.gz" in capsys.readouterr().err
    before = (files / "test.xyz").read_bytes()
    assert main(["chemiscope", str(files / "alpha.model"), str(files / "test.xyz"), "-o", str(files / "test.xyz")]) == 2
    assert (files / "test.xyz").read_bytes() == before


def test_spectrum_model_writes_curves(tmp_path):
    from tests.spectra._synthetic import GRID, SOAP, labelled

    from psilearn.data.spectra import load_spectrum_dataset
    from psilearn.models.spectrum import SpectrumConfig, SpectrumModel
    from psilearn.observe.chemiscope_export import export_chemiscope

    frames = labelled(26, seed=3)
    target = Target("dos", grid=GRID, grid_units="eV")
    model = SpectrumModel(target, SOAP, SpectrumConfig(n_sparse=40)).fit(load_spectrum_dataset(frames[:20], target))
    export_chemiscope(model, frames[20:], tmp_path / "dos.json.gz")
    data = _read(tmp_path / "dos.json.gz")
    props = data["properties"]
    assert props["dos"]["parameters"] == ["dos_grid"] and np.shape(props["dos"]["values"]) == (6, len(GRID))
    assert np.allclose(data["parameters"]["dos_grid"]["values"], GRID)
    assert {"dos_reference", "dos_integral", "dos_peak", "dos_std_rms", "dos_error_rms", "PCA[1]"} <= set(props)


def test_tensor_summaries_of_vectors_and_rank3():
    rng = np.random.default_rng(0)
    vec = Target("mu", tensor="i")
    x, s = rng.normal(size=(5, 3)), rng.uniform(0.1, 0.2, size=(5, 3))
    out = tensor_summaries(vec, x, s)
    cart = vec.to_cartesian(x)
    assert np.allclose(out["_norm"][0], np.linalg.norm(cart, axis=1))
    assert np.allclose(out["_x"][0], cart[:, 0]) and "_x_std" in out and "_norm_std" in out
    # first-order propagation: for equal component std the norm's std is that std
    assert np.allclose(tensor_summaries(vec, x, np.full((5, 3), 0.3))["_norm_std"][0], 0.3)
    beta = Target("beta", tensor="ijk=jik=ikj")
    xb = rng.normal(size=(4, sum(b.dim for b in beta.blocks)))
    out = tensor_summaries(beta, xb)
    assert set(out) == {"_|1o|", "_|3o|"}  # rank 3: the norm of each irreducible part
    assert np.allclose(np.hypot(out["_|1o|"][0], out["_|3o|"][0]), np.linalg.norm(beta.to_cartesian(xb), axis=1))


@pytest.mark.parametrize("model, per", [("alpha.model", "structure"), ("q.model", "atom")])
def test_partially_labelled_data(files, model, per):
    """Labels on some structures only: their references and errors are exported, the others are
    missing (NaN), never dropped for every structure nor filled with made-up values."""
    from psilearn.observe.chemiscope_export import export_chemiscope

    frames = read_structures(str(files / "test.xyz"))
    for i in (1, 4):
        frames[i].info.pop("alpha")
        del frames[i].arrays["q"]
    out = files / f"partial_{per}.json"
    s = export_chemiscope(str(files / model), frames, out)
    assert s["reference"] and s["n_reference"] == 4
    data = _read(out)
    assert "for the 4 of 6 structures that carry them" in data["meta"]["description"]
    key = "alpha_reference_iso" if per == "structure" else "q_reference"
    ref = np.asarray(data["properties"][key]["values"], float)
    sizes = [1] * 6 if per == "structure" else [len(a) for a in frames]
    owner = np.repeat(np.arange(6), sizes)
    assert np.all(np.isnan(ref[np.isin(owner, (1, 4))])) and np.all(np.isfinite(ref[~np.isin(owner, (1, 4))]))
    full = read_structures(str(files / "test.xyz"))
    expect = (np.array([np.trace(np.reshape(a.info["alpha"], (3, 3))) / 3 for a in full]) if per == "structure"
              else np.concatenate([a.arrays["q"] for a in full]))
    keep = ~np.isin(owner, (1, 4))
    np.testing.assert_allclose(ref[keep], expect[keep])
