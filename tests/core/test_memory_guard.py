"""The memory guard (psilearn.data.memory): estimates before large allocations, one-line refusals,
and SA-GPR prediction in batches that give the same numbers as one batch."""

import tracemalloc

import ase.io
import numpy as np
import pytest

from psilearn.cli.main import main
from psilearn.data import load_dataset
from psilearn.data.memory import ENV_VAR, MemoryBudgetError, available_bytes, check_allocation, parse_size
from psilearn.features import LambdaSoap, SoapConfig
from psilearn.models import SAGPR
from psilearn.models.sagpr import model as sagpr_module
from psilearn.targets import Target

from ._synth import SMALL_SOAP, label_frames, molecules, small_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("mem")
    frames = label_frames(molecules(5, 10), "alpha", "sym2", "structure")
    ase.io.write(d / "train.xyz", frames, format="extxyz")
    soap = ", ".join(f"{k}: {v}" for k, v in SMALL_SOAP.items())
    (d / "small.yaml").write_text(f"soap: {{{soap}}}\nmodel: {{n_sparse: 10}}\n")
    return d


def _fit_args(files, out):
    return ["fit", str(files / "train.xyz"), "--target", "alpha", "--tensor", "ij=ji",
            "--config", str(files / "small.yaml"), "-o", str(out)]


def test_tiny_limit_stops_fit_with_one_line(files, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV_VAR, "1M")
    out = tmp_path / "m.model"
    assert main(_fit_args(files, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    line = err[-1]
    assert "Traceback" not in "\n".join(err) and line.startswith("psilearn fit: error: SA-GPR fit of")
    assert "needs about" in line and f"{ENV_VAR}=1M" in line and "soap.max_radial" in line
    assert not out.exists()


def test_real_limit_fits(files, tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    out = tmp_path / "m.model"
    assert main(_fit_args(files, out)) == 0 and (out / "model.json").is_file()


def test_sizes_and_limits(monkeypatch):
    assert parse_size("8G") == 8 * 2**30 and parse_size("512M") == 512 * 2**20 and parse_size("1000") == 1000
    assert parse_size("1.5GiB") == int(1.5 * 2**30)
    with pytest.raises(ValueError, match=ENV_VAR):
        parse_size("lots")
    monkeypatch.delenv(ENV_VAR, raising=False)
    real = available_bytes()
    assert real is None or real > 0
    monkeypatch.setenv(ENV_VAR, "2G")
    assert available_bytes() == 2 * 2**30
    check_allocation(0.8 * 2 * 2**30, "x", "y")  # within the safety factor
    with pytest.raises(MemoryBudgetError, match=r"^step needs about 2\.15 GB .* reduce the knob$"):
        check_allocation(2 * 2**30, "step", "the knob")


def test_feature_estimate_matches_the_arrays():
    frames = molecules(3, 6)
    soap = LambdaSoap(SoapConfig(**{**SMALL_SOAP, "cutoff": [3.0, 4.0]}), [1, 6, 8])
    channels = [(0, 1), (1, 1), (2, 1)]
    feats = soap.compute(frames, channels, keep_coefficients=True)
    actual = sum(x.nbytes for per_z in feats.blocks.values() for x in per_z.values())
    actual += sum(x.nbytes for x in feats.coefficients.values())
    numbers = feats.numbers
    assert soap.estimate_bytes({z: int(np.sum(numbers == z)) for z in soap.species}, channels, True) == actual


def test_fit_estimate_within_a_factor_two_of_the_measured_peak(monkeypatch):
    """The guard's estimate of a whole SA-GPR fit against the peak of numpy allocations (tracemalloc)."""
    target = Target("alpha", tensor="ij=ji")
    data = load_dataset(label_frames(molecules(7, 12), "alpha", "sym2", "structure"), target)
    seen = []
    monkeypatch.setattr(sagpr_module, "check_allocation", lambda nbytes, what, hint: seen.append(nbytes))
    model = SAGPR(target, soap=SoapConfig(**SMALL_SOAP), config=small_model(n_sparse=15))
    model.fit(data)  # first: one-time caches (Wigner symbols, imports) are not part of a fit's peak
    tracemalloc.start()
    try:
        model.fit(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    estimate = seen[-1]
    assert 0.5 < estimate / peak < 2.0, (estimate, peak)


@pytest.mark.parametrize("per", ["structure", "atom"])
def test_batched_prediction_equals_one_batch(per):
    if per == "structure":
        target, frames = Target("alpha", tensor="ij=ji"), label_frames(molecules(11, 14), "alpha", "sym2", "structure")
    else:
        target, frames = Target("q", per="atom"), label_frames(molecules(11, 14), "q", "scalar", "atom")
    model = SAGPR(target, soap=SoapConfig(**SMALL_SOAP), config=small_model()).fit(load_dataset(frames[:10], target))
    new = molecules(12, 7)
    model.soap.batch_size = 1000
    one = model.predict(new, return_cov=True)
    model.soap.batch_size = 3
    batched = model.predict(new, return_cov=True)
    for a, b in zip((one.values, one.std, one.irreps, one.irreps_std, one.cov),
                    (batched.values, batched.std, batched.irreps, batched.irreps_std, batched.cov)):
        assert a.shape == b.shape and np.allclose(a, b, rtol=0, atol=1e-12)
    mean_only = model.predict(new, return_std=False)  # the contracted fast path, batched too
    assert np.allclose(mean_only.values, one.values, rtol=0, atol=1e-10)
