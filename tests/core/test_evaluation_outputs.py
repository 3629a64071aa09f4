"""What `evaluate` and `learning-curve` report beyond the per-channel table: per-element metrics, rank-2
channels in physical terms (isotropic = trace/3), the calibration curve and plot, learning curves with
repeats (mean, spread, error bars) and their complete JSON."""

import json

import numpy as np
import pytest
from matplotlib.image import imread

import psilearn
from psilearn.cli.main import main
from psilearn.data import load_dataset, write_structures
from psilearn.metrics.channels import physical_metrics, physical_parts
from psilearn.metrics.regression import calibration_curve, per_element_metrics, regression_metrics
from psilearn.models.factory import fit_model
from psilearn.targets import Target

from ._synth import SMALL_MODEL, SMALL_SOAP, label_frames, molecules

CONFIG = {"soap": dict(SMALL_SOAP), "model": dict(SMALL_MODEL)}
SHIELD = Target("sigma", per="atom", tensor="ij", units="ppm")


def _png(path, max_px=4000):
    img = imread(str(path))
    h, w = img.shape[:2]
    assert 200 <= h <= max_px and 200 <= w <= max_px, (h, w)
    assert img[..., :3].std() > 0.01  # not blank
    return img


@pytest.fixture(scope="module")
def shielding(tmp_path_factory):
    """A per-atom general rank-2 model (like NMR shielding), test structures and their evaluation."""
    d = tmp_path_factory.mktemp("shield")
    frames = label_frames(molecules(5, 26, elements=("H", "C", "O")), "sigma", "gen2", "atom")
    write_structures(d / "test.xyz", frames[18:])
    model = fit_model("sagpr", SHIELD, load_dataset(frames[:18], SHIELD), CONFIG, seed=0)
    model.save(d / "s.model")
    test = load_dataset(str(d / "test.xyz"), SHIELD)
    return {"dir": d, "model": model, "test": test, "pred": model.predict(test.frames)}


def _rank2(seed, n=40):
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(n, 9)) * [3, 1, 1, 1, 2, 1, 1, 1, 4] + 10 * np.eye(3).ravel()
    return ref, ref + rng.normal(scale=0.3, size=(n, 9))


def test_isotropic_channel_is_trace_over_three():
    t = Target("x", tensor="ij")
    ref, pred = _rank2(0)
    m = physical_metrics(t, t.to_irreps(ref), t.to_irreps(pred))
    tr = lambda a: a.reshape(-1, 3, 3).trace(axis1=1, axis2=2) / 3  # noqa: E731
    e = tr(pred) - tr(ref)
    iso = m["channels"]["0e"]
    assert iso["part"] == "isotropic" and iso["definition"] == "trace/3"
    assert iso["mae"] == pytest.approx(np.mean(np.abs(e))) and iso["rmse"] == pytest.approx(np.sqrt(np.mean(e**2)))
    # the orthonormal 0e channel is trace/sqrt(3): sqrt(3) times larger, same % of std
    ortho = regression_metrics(t, t.to_irreps(ref), t.to_irreps(pred))["channels"]
    assert ortho["0e"]["rmse"] == pytest.approx(np.sqrt(3) * iso["rmse"])
    for k in ("0e", "1e", "2e"):
        assert m["channels"][k]["pct_rmse"] == pytest.approx(ortho[k]["pct_rmse"])
    # antisymmetric and anisotropic parts: Frobenius norms of the error of each part
    d = (pred - ref).reshape(-1, 3, 3)
    anti = np.linalg.norm((d - d.transpose(0, 2, 1)) / 2, axis=(1, 2))
    sym = (d + d.transpose(0, 2, 1)) / 2
    aniso = np.linalg.norm(sym - np.trace(sym, axis1=1, axis2=2)[:, None, None] / 3 * np.eye(3), axis=(1, 2))
    assert m["channels"]["1e"]["rmse"] == pytest.approx(np.sqrt(np.mean(anti**2)))
    assert m["channels"]["2e"]["mae"] == pytest.approx(np.mean(aniso))
    parts = physical_parts(t, t.to_irreps(ref))
    np.testing.assert_allclose(parts["0e"][:, 0], tr(ref))
    assert parts["1e"].shape == (40, 3) and parts["2e"].shape == (40, 6)
    assert physical_metrics(Target("x", tensor="i"), ref[:, :3], pred[:, :3]) is None


def test_per_element_metrics_match_a_hand_computation():
    t = Target("q", per="atom")
    rng = np.random.default_rng(1)
    numbers = rng.choice([1, 6, 8], size=60)
    ref = rng.normal(size=(60, 1)) + numbers[:, None]
    pred = ref + rng.normal(scale=0.1, size=(60, 1))
    m = per_element_metrics(t, ref, pred, numbers)
    assert list(m) == ["H", "C", "O"]
    for z, sym in [(1, "H"), (6, "C"), (8, "O")]:
        sel = numbers == z
        e = (pred - ref)[sel, 0]
        spread = np.sqrt(np.mean((ref[sel, 0] - ref[sel, 0].mean()) ** 2))
        assert m[sym]["n_atoms"] == sel.sum()
        assert m[sym]["cartesian"]["mae"] == pytest.approx(np.mean(np.abs(e)))
        assert m[sym]["cartesian"]["rmse"] == pytest.approx(np.sqrt(np.mean(e**2)))
        assert m[sym]["cartesian"]["pct_rmse"] == pytest.approx(100 * np.sqrt(np.mean(e**2)) / spread)
        assert "physical" not in m[sym]


def test_evaluate_per_element_and_physical(shielding, capsys):
    model, test, pred = shielding["model"], shielding["test"], shielding["pred"]
    m = psilearn.evaluate(model, test)
    numbers = np.concatenate([a.numbers for a in test.frames])
    assert set(m["per_element"]) == {"H", "C", "O"}
    sel = numbers == 6
    ref_c, pred_c = test.values[sel], pred.values[sel]
    assert m["per_element"]["C"]["cartesian"]["rmse"] == pytest.approx(np.sqrt(np.mean((pred_c - ref_c) ** 2)))
    iso = lambda a: a.reshape(-1, 3, 3).trace(axis1=1, axis2=2) / 3  # noqa: E731
    assert m["per_element"]["C"]["physical"]["0e"]["mae"] == pytest.approx(np.mean(np.abs(iso(pred_c) - iso(ref_c))))
    assert m["physical"]["channels"]["0e"]["rmse"] == pytest.approx(np.sqrt(np.mean((iso(pred.values) - iso(test.values)) ** 2)))
    assert "trace/3" in m["physical"]["convention"]
    assert set(m["channels"]) == {"0e", "1e", "2e"}  # the orthonormal-basis keys are still there
    json.dumps(m)
    capsys.readouterr()
    assert main(["evaluate", str(shielding["dir"] / "s.model"), str(shielding["dir"] / "test.xyz")]) == 0
    out = capsys.readouterr().out
    assert "0e isotropic" in out and "2e anisotropic" in out and "1e antisymmetric" in out and "trace/3" in out
    assert "per element" in out and "\nC " in out
    assert main(["evaluate", str(shielding["dir"] / "s.model"), str(shielding["dir"] / "test.xyz"), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["per_element"]["O"]["n_atoms"] == int((numbers == 8).sum()) and "physical" in js


def test_calibration_curve_of_a_calibrated_gaussian_is_diagonal():
    rng = np.random.default_rng(0)
    std = rng.uniform(0.1, 3.0, size=(20000, 3))
    ref = rng.normal(size=std.shape)
    pred = ref + std * rng.normal(size=std.shape)
    c = calibration_curve(ref, pred, std)
    np.testing.assert_allclose(c["observed"], c["expected"], atol=0.01)
    assert c["mean_abs_deviation"] < 0.01
    over = calibration_curve(ref, pred, std / 2)  # std too small: below the diagonal
    assert all(o < e for o, e in zip(over["observed"], over["expected"]))
    assert calibration_curve(ref, pred, np.zeros_like(std)) is None


def test_evaluate_plots_parity_by_element_and_calibration(shielding, capsys):
    png = shielding["dir"] / "parity.png"
    m = psilearn.evaluate(shielding["model"], shielding["test"], plot=png)
    assert m["plots"] == {"parity": str(png), "calibration": str(shielding["dir"] / "parity_calibration.png")}
    parity = _png(png)
    assert parity.shape[1] > 2 * parity.shape[0]  # one row of panels: Cartesian, isotropic, antisymmetric, anisotropic
    _png(shielding["dir"] / "parity_calibration.png", max_px=1000)
    assert len(m["calibration_curve"]["observed"]) == len(m["calibration_curve"]["expected"])
    capsys.readouterr()
    out_png = shielding["dir"] / "cli.png"
    assert main(["evaluate", str(shielding["dir"] / "s.model"), str(shielding["dir"] / "test.xyz"), "--plot", str(out_png)]) == 0
    out = capsys.readouterr().out
    assert "calibration plot: " in out and (shielding["dir"] / "cli_calibration.png").is_file()


def test_evaluate_help_documents_the_calibration_plot(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "calibration" in text and "_calibration.png" in text


@pytest.fixture(scope="module")
def alpha_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("lc")
    frames = label_frames(molecules(7, 24), "alpha", "sym2", "structure")
    write_structures(d / "train.xyz", frames[:16])
    write_structures(d / "test.xyz", frames[16:])
    return d


def test_learning_curve_repeats(alpha_files):
    t = Target("alpha", tensor="ij=ji")
    train, test = str(alpha_files / "train.xyz"), str(alpha_files / "test.xyz")
    rows = []
    lc = psilearn.learning_curve(train, test, t, [4, 8, 16], model="baseline", seed=3, repeats=3, progress=rows.append)
    assert lc["repeats"] == 3 and len(rows) == len(lc["rows"]) == 9
    for k in ("Cartesian", "0e", "2e"):
        assert np.shape(lc["pct_rmse_all"][k]) == (3, 3)
        assert np.shape(lc["pct_rmse"][k]) == np.shape(lc["pct_rmse_std"][k]) == np.shape(lc["rmse_std"][k]) == (3,)
        np.testing.assert_allclose(lc["pct_rmse"][k], np.mean(lc["pct_rmse_all"][k], axis=1))
        np.testing.assert_allclose(lc["pct_rmse_std"][k], np.std(lc["pct_rmse_all"][k], axis=1, ddof=1))
    assert lc["pct_rmse_std"]["0e"][-1] == 0  # every repeat of the full set is the same fit
    assert lc["pct_rmse_std"]["0e"][0] > 0
    # the first repeat is the repeats=1 curve
    one = psilearn.learning_curve(train, test, t, [4, 8, 16], model="baseline", seed=3)
    np.testing.assert_allclose(one["pct_rmse"]["0e"], np.asarray(lc["pct_rmse_all"]["0e"])[:, 0])
    assert one["pct_rmse_std"]["0e"] == [0.0, 0.0, 0.0]
    assert lc["test"] == test and lc["model"] == "baseline"
    json.dumps(lc)
    with pytest.raises(ValueError, match="repeats"):
        psilearn.learning_curve(train, test, t, [4], model="baseline", repeats=0)


def test_learning_curve_cli_repeats_plot_and_json(alpha_files, capsys):
    png = alpha_files / "lc.png"
    capsys.readouterr()
    assert main(["learning-curve", str(alpha_files / "train.xyz"), str(alpha_files / "test.xyz"), "--target", "alpha",
                 "--tensor", "ij=ji", "--model", "baseline", "--sizes", "4,8,16", "--repeats", "2", "--plot", str(png),
                 "--json"]) == 0
    captured = capsys.readouterr()
    lc = json.loads(captured.out)  # stdout is one JSON object; the table went to stderr
    assert {"sizes", "repeats", "pct_rmse", "pct_rmse_std", "pct_rmse_all", "rmse", "fit_seconds", "rows", "n_test",
            "test", "target"} <= set(lc)
    assert lc["repeats"] == 2 and len(lc["rows"]) == 6 and "metrics" in lc["rows"][0]
    assert "+-" in captured.err and "0e isotropic" in captured.err
    _png(png, max_px=1200)
    assert main(["learning-curve", str(alpha_files / "train.xyz"), str(alpha_files / "test.xyz"), "--target", "alpha",
                 "--tensor", "ij=ji", "--model", "baseline", "--sizes", "4", "--repeats", "0"]) == 2


def test_learning_curve_plot_axes(tmp_path):
    """Log-log axes, x ticks at the sizes, error bars and the title as given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from psilearn.evaluation.plots import learning_curve_plot

    captured = {}
    real_savefig = plt.Figure.savefig

    def grab(fig, *a, **kw):
        captured["fig"] = fig
        return real_savefig(fig, *a, **kw)

    plt.Figure.savefig = grab
    try:
        learning_curve_plot([10, 30, 100], {"Cartesian": [20.0, 9.0, 4.0]}, str(tmp_path / "x.png"), title="test on t.xyz",
                            spread={"Cartesian": [2.0, 1.0, 0.5]})
    finally:
        plt.Figure.savefig = real_savefig
    ax = captured["fig"].axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert list(ax.get_xticks()) == [10, 30, 100]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "30", "100"]
    assert ax.get_title() == "test on t.xyz"
    assert ax.containers  # error bars
    _png(tmp_path / "x.png", max_px=1000)
