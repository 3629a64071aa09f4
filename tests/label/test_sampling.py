import numpy as np
import pytest

from psilearn.label import sampling

from .conftest import water


def test_conformers_from_smiles_charge_and_spin():
    confs = sampling.conformers_from_smiles("CCO", n=2, seed=1)
    assert 1 <= len(confs) <= 2 and len(confs[0]) == 9
    assert confs[0].info["charge"] == 0 and confs[0].info["multiplicity"] == 1
    ion = sampling.conformers_from_smiles("[NH4+]")[0]
    assert ion.info["charge"] == 1 and len(ion) == 5
    with pytest.raises(ValueError, match="invalid SMILES"):
        sampling.conformers_from_smiles("C(")


def test_rattle_reproducible_and_respects_min_distance():
    a = sampling.rattle_sample(water(), n=5, stdev=0.1, seed=3)
    b = sampling.rattle_sample(water(), n=5, stdev=0.1, seed=3)
    c = sampling.rattle_sample(water(), n=5, stdev=0.1, seed=4)
    assert np.allclose(a[2].positions, b[2].positions)
    assert not np.allclose(a[2].positions, c[2].positions)
    d = np.array([f.positions - water().positions for f in a]).ravel()
    assert 0.05 < d.std() < 0.15


def test_md_sample_stride_and_motion():
    frames = sampling.md_sample(water(), temperature=500, steps=30, stride=10, seed=0)
    assert [f.info["md_step"] for f in frames] == [10, 20, 30]
    assert not np.allclose(frames[0].positions, frames[-1].positions)
    assert all(sampling._min_distance(f.positions) > 0.6 for f in frames)


def test_normal_mode_sampling_scales_with_temperature():
    cold = sampling.normal_mode_sample(water(), n=20, temperature=50, seed=0)
    hot = sampling.normal_mode_sample(water(), n=20, temperature=800, seed=0)
    ref = sampling.normal_mode_sample(water(), n=1, temperature=1e-6, seed=0)[0].positions

    def rms(frames):
        return np.sqrt(np.mean([(f.positions - ref) ** 2 for f in frames]))

    # amplitude ~ sqrt(T): ratio sqrt(16) = 4 with the same random numbers
    assert rms(hot) / rms(cold) == pytest.approx(4.0, rel=0.02)
    com_shift = np.mean([f.positions.mean(axis=0) - ref.mean(axis=0) for f in hot], axis=0)
    assert np.abs(com_shift).max() < 0.05


def test_md_progress_bar_and_quiet(tmp_path, capsys):
    from psilearn.cli.main import main
    from psilearn.data import write_structures

    write_structures(tmp_path / "w.xyz", [water()])
    args = ["md", str(tmp_path / "w.xyz"), "--steps", "4", "--equilibration", "2", "-o", str(tmp_path / "t.xyz")]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "wrote 4 frames" in out and "MD:" in err and "equilibration:" in err and "step" in err
    assert main([*args, "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "wrote 4 frames" in out and err == ""
