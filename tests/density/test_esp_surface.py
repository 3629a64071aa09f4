"""Merz-Kollman ESP surface points: geometry, density scaling, and `--esp-surface` equal to `--esp` on the same points."""

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.data import vdw_radii

from psilearn.cli.main import main as cli_main
from psilearn.errors import DataError
from psilearn.observe.density.surface import surface_points, unit_sphere


def test_points_lie_outside_every_scaled_sphere_and_on_their_own():
    atoms = molecule("CH3OH")
    scales = (1.4, 1.6, 1.8, 2.0)
    pts, layer = surface_points(atoms, scales, 1.0)
    r = vdw_radii[atoms.numbers]
    dist = np.linalg.norm(pts[:, None, :] - atoms.positions[None], axis=-1)
    assert np.all(dist >= 1.4 * r[None] - 1e-9)                               # outside every 1.4x sphere
    k = np.asarray(scales)[layer]
    assert np.all(dist >= k[:, None] * r[None] - 1e-9)                         # and outside their own layer's spheres
    assert np.allclose(np.min(np.abs(dist - k[:, None] * r[None]), axis=1), 0, atol=1e-9)   # on one sphere of their layer
    assert sorted(set(layer)) == [0, 1, 2, 3]
    # fused spheres: far fewer points than the spheres' full areas would give
    full = sum(round(4 * np.pi * (s * ri) ** 2) for s in scales for ri in r)
    assert 0.3 * full < len(pts) < 0.9 * full


def test_count_scales_with_density():
    atoms = molecule("H2O")
    n1, n4 = (len(surface_points(atoms, density=d)[0]) for d in (1.0, 4.0))
    assert 3.6 < n4 / n1 < 4.4
    iso = Atoms("Ne")  # one sphere per layer: exactly round(4 pi R^2 density) points
    assert len(surface_points(iso, (2.0,), 3.0)[0]) == round(4 * np.pi * (2 * vdw_radii[10]) ** 2 * 3)
    u = unit_sphere(500)
    assert np.allclose(np.linalg.norm(u, axis=1), 1) and np.linalg.norm(u.mean(axis=0)) < 1e-2


def test_bad_inputs():
    with pytest.raises(DataError, match="positive"):
        surface_points(molecule("H2O"), (0.0,), 1.0)
    with pytest.raises(DataError, match="no van der Waals radius"):
        surface_points(Atoms("X", positions=[[0, 0, 0]]), (1.4,), 1.0)


def test_cli_esp_surface_equals_esp_at_the_same_points(water_pbe, tmp_path, capsys):
    labelled = tmp_path / "in.xyz"
    ase.io.write(labelled, [water_pbe.labelled])
    out = tmp_path / "out.xyz"
    assert cli_main(["density", "labels", str(labelled), "-o", str(out), "--esp-surface", "--surface-density", "2",
                     "--no-multipoles", "-q"]) == 0
    assert "surf pts" in capsys.readouterr().out
    info = ase.io.read(out).info
    pts = info["density_esp_surface_points"].reshape(-1, 3)
    assert len(pts) == len(info["density_esp_surface"]) == len(info["density_esp_surface_layer"]) > 100
    assert np.allclose(pts, surface_points(water_pbe.labelled, density=2.0)[0], atol=1e-12)
    ase.io.write(tmp_path / "pts.xyz", Atoms("X" * len(pts), positions=pts))
    assert cli_main(["density", "labels", str(labelled), "-o", str(tmp_path / "via_points.xyz"), "--esp", str(tmp_path / "pts.xyz"),
                     "--no-multipoles", "-q"]) == 0
    via = ase.io.read(tmp_path / "via_points.xyz").info["density_esp"]
    assert np.allclose(via, info["density_esp_surface"], rtol=0, atol=1e-8)   # through the files' printed precision
    # in memory the two routes are the same numbers, bit for bit
    from psilearn.observe.density.derive import DeriveOptions, derive_structure

    a = water_pbe.labelled
    c, basis = a.info["density_coefficients"], a.info["density_aux_basis"]
    surf, _ = derive_structure(0, a, c, basis, DeriveOptions(multipoles=False, esp_surface=True))
    exact = surf.info["density_esp_surface_points"].reshape(-1, 3)
    at_points, _ = derive_structure(0, a, c, basis, DeriveOptions(multipoles=False), points=exact)
    assert np.array_equal(at_points.info["density_esp"], surf.info["density_esp_surface"])
    # the MK surface sees a polar molecule: negative near O, positive near the H atoms
    v, layer = info["density_esp_surface"], info["density_esp_surface_layer"]
    assert v.min() < -0.01 < 0.01 < v.max() and np.all(layer >= 0)
