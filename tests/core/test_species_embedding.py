"""Element compression of lambda-SOAP (``soap.species_embedding``): features grow linearly with the
number of elements, the model stays exactly equivariant, files round-trip, the embedding is stable."""

from __future__ import annotations

import numpy as np
import pytest

from psilearn.config import ConfigError
from psilearn.data import load_dataset
from psilearn.features import LambdaSoap, SoapConfig
from psilearn.features.species_embedding import element_embedding
from psilearn.models import SAGPR, load
from psilearn.targets import Target

from ._synth import SMALL_SOAP, cartesian_operator, label_frames, molecules, random_rotation, small_model

TARGET = Target("alpha", tensor="ij=ji")


def test_width_grows_linearly_with_the_number_of_elements():
    many = list(range(1, 74))  # 73 elements, as in the elasticity set
    full, packed = LambdaSoap(SoapConfig(), many), LambdaSoap(SoapConfig(species_embedding=8), many)
    assert full.width(0, 1) == len(full.pairs(0, 1)) * (73 * 6) ** 2
    assert packed.width(0, 1) == len(packed.pairs(0, 1)) * (8 * 6) ** 2 == LambdaSoap(SoapConfig(species_embedding=8), [1, 8]).width(0, 1)
    counts = {z: 10 for z in many}
    assert packed.estimate_bytes(counts, [(0, 1), (2, 1), (4, 1)]) < full.estimate_bytes(counts, [(0, 1), (2, 1), (4, 1)]) / 50


def test_off_by_default_and_d_channels_when_on():
    from ase.build import molecule

    frames = [molecule("CH3OH"), molecule("H2O")]
    for d in (0, 2):
        feats = LambdaSoap(SoapConfig(cutoff=4.0, max_radial=4, max_angular=3, species_embedding=d), [1, 6, 8]).compute(frames, [(1, 1)])
        for ch in ((0, 1), (1, 1)):
            for z, block in feats.blocks[ch].items():
                assert block.shape[2] == LambdaSoap(SoapConfig(cutoff=4.0, max_radial=4, max_angular=3, species_embedding=d),
                                                    [1, 6, 8]).width(*ch)
                np.testing.assert_allclose(np.linalg.norm(block, axis=(1, 2)), 1.0)  # normalised, never all zero


def test_embedding_is_fixed_per_element():
    a, b = element_embedding([1, 6, 8], 5), element_embedding([8, 26], 5)
    np.testing.assert_array_equal(a[:, 2], b[:, 0])  # oxygen's column does not depend on the other elements
    np.testing.assert_allclose(np.linalg.norm(a, axis=0), 1.0)


@pytest.fixture(scope="module")
def frames():
    return molecules(11, 40)


def test_compressed_model_is_equivariant_accurate_and_round_trips(frames, tmp_path):
    data = load_dataset(label_frames(frames[:30], "alpha", "sym2", "structure"), TARGET)
    test = label_frames(frames[30:], "alpha", "sym2", "structure")
    truth = np.array([a.info["alpha"] for a in test])
    err = {}
    for d in (0, 2):
        model = SAGPR(TARGET, SoapConfig(**SMALL_SOAP, species_embedding=d), small_model(n_sparse=60)).fit(data)
        err[d] = np.sqrt(np.mean((model.predict(test).values - truth) ** 2))
    # two pseudo-elements for three elements: some information is lost, but the model still learns
    assert err[0] < 0.5 * np.std(truth) and err[2] < 1.5 * err[0], err
    _assert_rank2_equivariant(model, test[0], seed=0)
    model.save(tmp_path / "c.model")
    back = load(tmp_path / "c.model")
    assert back.soap.species_embedding == 2
    np.testing.assert_allclose(back.predict(test).values, model.predict(test).values, atol=1e-12)


def _assert_rank2_equivariant(model, a, seed: int) -> None:
    """The model's rank-2 prediction of ``a`` turns as Q alpha Q^T under a random rotation and an improper one."""
    rng = np.random.default_rng(seed)
    for q in (random_rotation(rng), -random_rotation(rng)):
        b = a.copy()
        b.positions = a.positions @ q.T
        np.testing.assert_allclose(model.predict([b]).values[0], cartesian_operator(q, 2) @ model.predict([a]).values[0], atol=1e-9)


def test_option_is_validated():
    with pytest.raises(ConfigError, match="species_embedding"):
        SAGPR.validate_config({"soap": {"species_embedding": -1}})


def test_elemental_embedding_places_similar_elements_close():
    from ase.data import atomic_numbers as zn

    names = ["H", "O", "S", "Zr", "Hf", "La", "Ce", "Pt"]
    u = element_embedding([zn[s] for s in names], 64, "elemental")
    np.testing.assert_allclose(np.linalg.norm(u, axis=0), 1.0)
    cos = dict(zip(names, (u.T @ u).T))
    idx = {s: k for k, s in enumerate(names)}
    assert cos["La"][idx["Ce"]] > 0.9  # two lanthanides: almost the same pseudo-element
    assert cos["Zr"][idx["Hf"]] > cos["Zr"][idx["H"]] + 0.3  # same group vs hydrogen
    assert cos["O"][idx["S"]] > cos["O"][idx["Pt"]] + 0.3
    np.testing.assert_array_equal(element_embedding([zn["Hf"]], 64, "elemental")[:, 0], u[:, idx["Hf"]])  # per element


def test_elemental_embedding_model_is_equivariant_and_round_trips(frames, tmp_path):
    data = load_dataset(label_frames(frames[:30], "alpha", "sym2", "structure"), TARGET)
    test = label_frames(frames[30:], "alpha", "sym2", "structure")
    soap = SoapConfig(**SMALL_SOAP, species_embedding=2, species_embedding_kind="elemental")
    model = SAGPR(TARGET, soap, small_model(n_sparse=60)).fit(data)
    _assert_rank2_equivariant(model, test[0], seed=1)
    other = SAGPR(TARGET, SoapConfig(**SMALL_SOAP, species_embedding=2), small_model(n_sparse=60)).fit(data)
    assert not np.allclose(other.predict(test).values, model.predict(test).values)  # the kind changes the features
    model.save(tmp_path / "e.model")
    back = load(tmp_path / "e.model")
    assert back.soap.species_embedding_kind == "elemental"
    np.testing.assert_allclose(back.predict(test).values, model.predict(test).values, atol=1e-12)


def test_embedding_kind_is_validated():
    with pytest.raises(ConfigError, match="species_embedding_kind"):
        SAGPR.validate_config({"soap": {"species_embedding": 4, "species_embedding_kind": "learned"}})
