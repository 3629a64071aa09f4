"""Typed options: one validation for every options class, sections per model kind checked before
any data is read, and one seed rule (explicit --seed over the file's seed over 0)."""

from dataclasses import fields

import ase.io
import pytest

from psilearn.cli.main import main
from psilearn.config import SECTIONS, ConfigError, Options, load_config, resolve_seed
from psilearn.errors import ConfigError as ErrorsConfigError
from psilearn.features.lsoap import SoapConfig
from psilearn.models import load
from psilearn.models._torch.network import NetworkConfig
from psilearn.models._torch.train import TrainConfig
from psilearn.models.nn.model import NNModel
from psilearn.models.qeq.config import QEqConfig, QEqNNConfig
from psilearn.models.registry import MODEL_KINDS, model_class
from psilearn.models.sagpr.config import SAGPRConfig
from psilearn.models.sagpr.model import SAGPR
from psilearn.models.spectrum.config import SpectrumConfig
from psilearn.physics.params import QEqParams

from ._synth import label_frames, molecules

OPTION_CLASSES = [SoapConfig, SAGPRConfig, QEqConfig, QEqNNConfig, SpectrumConfig, NetworkConfig, TrainConfig, QEqParams]
MISSING = "no-such-dir/train.xyz"  # never read: option errors come first


def _yaml(tmp_path, text: str, name: str = "nn.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


# ---- the typed validation ---------------------------------------------------------------------------
def test_config_error_is_one_value_error_class():
    assert ConfigError is ErrorsConfigError and issubclass(ConfigError, ValueError)
    assert all(issubclass(c, Options) for c in OPTION_CLASSES)


def test_unknown_key_is_listed_with_the_known_ones(tmp_path):
    with pytest.raises(ConfigError) as exc:
        SoapConfig.from_dict({"cutof": 5.0, "max_radial": 4}, source="o.yaml")
    msg = str(exc.value)
    assert msg.startswith("o.yaml: soap: unknown option 'cutof' (did you mean 'cutoff'?); known options: cutoff, ")
    assert all(f.name in msg for f in fields(SoapConfig))
    with pytest.raises(ConfigError, match=r"^nn_train: unknown options 'a', 'b'; known options: epochs"):
        TrainConfig.from_dict({"a": 1, "b": 2})


def test_wrong_type_names_file_section_and_key(tmp_path):
    cfg = _yaml(tmp_path, "soap: {cutoff: five}\n")
    with pytest.raises(ConfigError) as exc:
        SAGPR.validate_config(load_config(cfg), source=cfg)
    assert str(exc.value) == f"{cfg}: soap.cutoff: expected a number or a list of numbers, got 'five'"
    with pytest.raises(ConfigError, match=r"^nn\.lmax: expected an integer, got 2\.5$"):
        NetworkConfig.from_dict({"lmax": 2.5})
    with pytest.raises(ConfigError, match=r"^model\.sparse_method: expected a string, got 3$"):
        SAGPRConfig.from_dict({"sparse_method": 3})
    with pytest.raises(ConfigError, match=r"^model\.qeq\.widths: expected a mapping to numbers, got \{'H': 'x'\}$"):
        QEqConfig.from_dict({"qeq": {"widths": {"H": "x"}}})
    with pytest.raises(ConfigError, match=r"^model\.width_scales: expected a list of numbers, got 0\.5$"):
        QEqConfig.from_dict({"width_scales": 0.5})
    with pytest.raises(ConfigError, match=r"^nn: expected a mapping of options, got \[1, 2\]$"):
        NetworkConfig.from_dict([1, 2])


def test_bools_are_not_numbers_and_null_only_where_allowed():
    with pytest.raises(ConfigError, match=r"^model\.zeta: expected a number, got true$"):
        SAGPRConfig.from_dict({"zeta": True})
    with pytest.raises(ConfigError, match=r"^nn_train\.epochs: expected an integer, got false$"):
        TrainConfig.from_dict({"epochs": False})
    with pytest.raises(ConfigError, match=r"^model\.atomic_dipoles: expected true or false, got 1$"):
        QEqConfig.from_dict({"atomic_dipoles": 1})
    with pytest.raises(ConfigError, match=r"^model\.zeta: expected a number, got null$"):
        SAGPRConfig.from_dict({"zeta": None})
    assert SAGPRConfig.from_dict({"n_sparse": None}).n_sparse is None  # null: the data-scaled default
    cfg = SpectrumConfig.from_dict({"max_shift": None, "species": None})
    assert cfg.max_shift is None and cfg.species is None
    assert SoapConfig.from_dict({"radial_scaling": None}).radial_scaling is None


def test_numbers_ints_unions_and_yaml_strings():
    # ints where numbers are expected (stored as floats); YAML 1.1 reads 1e-3 as a string
    assert SoapConfig.from_dict({"cutoff": 5}).cutoff == 5.0 and isinstance(SoapConfig.from_dict({"cutoff": 5}).cutoff, float)
    assert SoapConfig.from_dict({"cutoff": [3, 5.5]}).cutoff == [3.0, 5.5]
    assert TrainConfig.from_dict({"lr": "1e-3"}).lr == 1e-3
    assert NetworkConfig.from_dict({"channels": 8.0}).channels == 8
    # regularization: ml | cv | <number>, everywhere the kernel models accept it
    for cls in (SAGPRConfig, QEqConfig, SpectrumConfig):
        assert cls.from_dict({"regularization": "cv"}).regularization == "cv"
        assert cls.from_dict({"regularization": "ml"}).regularization == "ml"
        assert cls.from_dict({"regularization": 1e-4}).regularization == 1e-4
        with pytest.raises(ConfigError, match=r"^model\.regularization: must be 'ml' .*'cv' .*or a positive number, got 'five'$"):
            cls.from_dict({"regularization": "five"})
        with pytest.raises(ConfigError, match=r"model\.regularization: .*got -1\.0$"):
            cls.from_dict({"regularization": -1})


def test_range_checks_name_section_key_and_file():
    with pytest.raises(ConfigError, match=r"^o\.yaml: soap\.cutoff: must be > 0 .*got -1\.0$"):
        SoapConfig.from_dict({"cutoff": -1}, source="o.yaml")
    with pytest.raises(ConfigError, match=r"^model\.sparse_method: must be 'fps' or 'cur', got 'random'$"):
        SAGPRConfig.from_dict({"sparse_method": "random"})
    with pytest.raises(ConfigError, match=r"^o\.yaml: model\.qeq\.width_scale: must be > 0, got 0\.0$"):
        QEqConfig.from_dict({"qeq": {"width_scale": 0}}, source="o.yaml")
    with pytest.raises(ConfigError, match=r"^model\.qeq: unknown element 'Xx'"):
        QEqNNConfig.from_dict({"qeq": {"hardness": {"Xx": 1.0}}})
    with pytest.raises(ConfigError, match=r"^nn_train\.val_fraction: must be in \(0, 1\), got 1\.0$"):
        TrainConfig.from_dict({"val_fraction": 1})
    with pytest.raises(ConfigError, match=r"^nn\.parity: must be 'auto', 'natural' or 'both', got 'odd'$"):
        NetworkConfig.from_dict({"parity": "odd"})


@pytest.mark.parametrize("cls", OPTION_CLASSES, ids=lambda c: c.__name__)
def test_round_trip(cls):
    default = cls.from_dict(None)
    assert cls.from_dict(default.to_dict()) == default
    assert cls.from_dict({}) == cls()


def test_round_trip_of_non_default_values():
    cases = [
        SoapConfig.from_dict({"cutoff": [3, 6], "radial_scaling": {"exponent": 2, "rate": 1, "scale": 2.5}}),
        SAGPRConfig.from_dict({"regularization": "cv", "seed": 4, "global_state": "charge"}),
        QEqConfig.from_dict({"qeq": {"width_scale": 0.8, "widths": {"H": 0.4}}, "width_scales": [0.5, 1]}),
        QEqNNConfig.from_dict({"learn_hardness": True, "origin": "zero"}),
        SpectrumConfig.from_dict({"loss": "shift", "max_shift": 0.5, "species": [5, 34], "pca": 3}),
        NetworkConfig.from_dict({"cutoff": 4, "global_state": "charge+spin"}),
        TrainConfig.from_dict({"loss_weights": {"0e": 2}, "uncertainty": "ensemble"}),
        QEqParams.from_dict({"widths": {"O": 0.7}, "hardness": {"8": 1.5}}),
    ]
    for cfg in cases:
        assert type(cfg).from_dict(cfg.to_dict()) == cfg


# ---- sections per model kind --------------------------------------------------------------------------
def test_load_config_sections(tmp_path):
    assert load_config(None) == {}
    assert load_config(_yaml(tmp_path, "soap: {cutoff: 4}\nmodel:\n")) == {"soap": {"cutoff": 4}, "model": {}}
    with pytest.raises(ConfigError, match=r"unknown section 'sop' \(did you mean 'soap'\?\); "
                                          r"known sections: soap, model, nn, nn_train, density, hamiltonian, per_element, nn_fidelity$"):
        load_config(_yaml(tmp_path, "sop: {cutoff: 4}\n"))
    with pytest.raises(ConfigError, match=r"o\.yaml: model: expected a mapping of options, got 3$"):
        load_config(_yaml(tmp_path, "model: 3\n", "o.yaml"))
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(_yaml(tmp_path, "soap: {cutoff: [\n"))


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_each_kind_refuses_sections_of_other_kinds(kind):
    cls = model_class(kind)
    assert tuple(cls.config_options) == cls.config_sections
    options, seed = cls.validate_config({s: {} for s in cls.config_sections})
    assert set(options) == set(cls.config_sections) and seed == 0
    for other in set(SECTIONS) - set(cls.config_sections):
        with pytest.raises(ConfigError, match=rf"^o\.yaml: section '{other}' is not used by model kind '{kind}' "
                                              rf"\(it reads: {', '.join(cls.config_sections)}\)(; a separate model per element: psilearn fit --per-element)?$"):
            cls.validate_config({other: {}}, source="o.yaml")


def test_cli_refuses_another_kinds_section_before_reading_data(tmp_path, capsys):
    cfg = _yaml(tmp_path, "soap: {cutoff: 4.0}\nnn: {channels: 8}\n", "opts.yaml")
    args = ["--target", "alpha", "--config", cfg]
    assert main(["fit", MISSING, *args, "--model", "sagpr", "-o", str(tmp_path / "m")]) == 2
    line = _error_line(capsys)
    assert line == f"psilearn fit: error: {cfg}: section 'nn' is not used by model kind 'sagpr' (it reads: soap, model)"
    assert main(["learning-curve", MISSING, MISSING, *args, "--sizes", "2,4"]) == 2
    assert "section 'nn' is not used by model kind 'sagpr'" in _error_line(capsys)
    assert main(["fit-spectrum", MISSING, *args, "-o", str(tmp_path / "s")]) == 2
    assert "section 'nn' is not used by model kind 'spectrum' (it reads: soap, model)" in _error_line(capsys)
    # the kind follows --model and --long-range
    nn_cfg = _yaml(tmp_path, "soap: {cutoff: 4.0}\n", "soap.yaml")
    assert main(["fit", MISSING, "--target", "q", "--per", "atom", "--model", "nn", "--config", nn_cfg, "-o", str(tmp_path / "n")]) == 2
    assert "section 'soap' is not used by model kind 'nn' (it reads: nn, nn_train)" in _error_line(capsys)
    assert main(["fit", MISSING, "--target", "q", "--per", "atom", "--long-range", "qeq", "--model", "nn",
                 "--config", nn_cfg, "-o", str(tmp_path / "n")]) == 2
    assert "section 'soap' is not used by model kind 'qeq-nn' (it reads: model, nn, nn_train)" in _error_line(capsys)


def test_cli_type_error_names_file_section_and_key_before_reading_data(tmp_path, capsys):
    cfg = _yaml(tmp_path, "soap: {cutoff: five}\n")
    assert main(["fit", MISSING, "--target", "alpha", "--config", cfg, "-o", str(tmp_path / "m")]) == 2
    assert _error_line(capsys) == f"psilearn fit: error: {cfg}: soap.cutoff: expected a number or a list of numbers, got 'five'"
    cfg = _yaml(tmp_path, "model: {zeta: true}\n")
    assert main(["fit-spectrum", MISSING, "--target", "dos", "--config", cfg, "-o", str(tmp_path / "s")]) == 2
    assert _error_line(capsys) == f"psilearn fit-spectrum: error: {cfg}: model.zeta: expected a number, got true"
    # with a valid file the data error comes next
    cfg = _yaml(tmp_path, "soap: {cutoff: 4}\n")
    assert main(["fit", MISSING, "--target", "alpha", "--config", cfg, "-o", str(tmp_path / "m")]) == 2
    assert "no-such-dir" in _error_line(capsys)


# ---- seeds ---------------------------------------------------------------------------------------------
def test_seed_rule():
    assert resolve_seed(None, None) == 0
    assert resolve_seed(None, 5) == 5
    assert resolve_seed(7, 5) == 7 and resolve_seed(0, 5) == 0
    with pytest.raises(ConfigError, match="seed must be a non-negative integer, got -1"):
        resolve_seed(-1, None)
    opts, seed = SAGPR.validate_config({"model": {"seed": 5}})
    assert seed == 5 and opts["model"].seed == 5
    opts, seed = SAGPR.validate_config({"model": {"seed": 5}}, seed=2)
    assert seed == 2 and opts["model"].seed == 2
    assert NNModel.validate_config({}) == NNModel.validate_config({"nn": {}, "nn_train": {}}, seed=None)
    assert NNModel.validate_config({}, seed=3)[1] == 3
    with pytest.raises(ConfigError, match=r"^model\.seed: must be >= 0, got -2$"):
        SAGPRConfig.from_dict({"seed": -2})


@pytest.fixture(scope="module")
def small_train(tmp_path_factory):
    d = tmp_path_factory.mktemp("seed")
    ase.io.write(d / "train.xyz", label_frames(molecules(5, 8), "e", "scalar", "structure"), format="extxyz")
    return d


@pytest.mark.parametrize("yaml_seed, cli_seed, expected", [(5, "7", 7), (5, None, 5), (None, None, 0), (None, "3", 3)])
def test_seed_precedence_through_the_cli(small_train, tmp_path, yaml_seed, cli_seed, expected):
    model = {"n_sparse": 8} | ({"seed": yaml_seed} if yaml_seed is not None else {})
    cfg = _yaml(tmp_path, f"soap: {{cutoff: 3.0, max_radial: 3, max_angular: 2}}\nmodel: {model}\n".replace("'", ""))
    out = tmp_path / "m"
    argv = ["fit", str(small_train / "train.xyz"), "--target", "e", "--config", cfg, "-o", str(out)]
    assert main(argv + (["--seed", cli_seed] if cli_seed is not None else [])) == 0
    assert load(out).config.seed == expected
