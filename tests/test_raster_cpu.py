"""The CPU rasterizer's votes are the autograd gradients of a masked render (real splat)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from reference_compositor import autograd_votes, brute_force_votes

from masksplat_blender.backend.raster_cpu import CpuRasterizer
from masksplat_blender.backend.rasterizer import Gaussians, View
from masksplat_blender.core.cameras import orbit_cameras
from masksplat_blender.core.splat_io import read_splats

SAMPLE = Path(__file__).parent / "data" / "fruit_drops" / "fruit_drops_minimal.ply"


def scene_and_views(size=40, n_views=2, subset=None, seed=0):
    data = read_splats(SAMPLE)
    g = Gaussians(data.means(), data.quats_wxyz(), data.log_scales(), data.opacity_logits(), data.sh())
    if subset:
        idx = np.sort(np.random.default_rng(seed).choice(g.count, subset, replace=False))
        g = Gaussians(g.means[idx], g.quats[idx], g.log_scales[idx], g.opacity_logits[idx], g.sh[idx])
    lo, hi = np.percentile(g.means, [2, 98], axis=0)
    radius = 1.1 * np.linalg.norm(hi - lo)
    cams = orbit_cameras((lo + hi) / 2, radius, n_views, size, size, fov_deg=45, up=(0, -1, 0), elevation_deg=(-20, 30))
    views = [View(c.world_to_camera.astype(np.float32), c.K().astype(np.float32), size, size) for c in cams]
    return g, views


def mask_weights(size, seed, k=2, ignore=False):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    m = ((xx - size * rng.uniform(0.3, 0.7)) ** 2 + (yy - size * 0.5) ** 2 < (size * 0.3) ** 2).astype(np.float32)
    if k == 2:
        w = np.stack([m, 1 - m], -1)
    else:
        w = rng.uniform(size=(size, size, k)).astype(np.float32)
    if ignore:
        w[: size // 4] = 0
    return w


def test_votes_equal_autograd_gradients_on_a_real_splat():
    g, views = scene_and_views()
    raster = CpuRasterizer()
    for i, view in enumerate(views):
        w = mask_weights(view.width, i)
        ours = np.zeros((g.count, 2))
        raster.votes(g, view, w, ours)
        reference = autograd_votes(g, view, w)
        scale = np.abs(reference).max()
        assert scale > 1.0  # the view sees the object
        np.testing.assert_allclose(ours / scale, reference / scale, atol=2e-4)
        assert np.abs(ours - reference).sum() / np.abs(reference).sum() < 1e-3


def test_votes_equal_brute_force_per_pixel_compositing():
    g, views = scene_and_views(size=24, n_views=1, subset=600)
    w = mask_weights(24, 3, ignore=True)
    ours = np.zeros((g.count, 2))
    CpuRasterizer().votes(g, views[0], w, ours)
    reference = brute_force_votes(g, views[0], w)
    scale = np.abs(reference).max()
    assert scale > 0.1
    np.testing.assert_allclose(ours / scale, reference / scale, atol=2e-4)


def test_many_channels_at_once_equal_separate_runs():
    g, views = scene_and_views(size=32, n_views=1)
    w = mask_weights(32, 1, k=5)
    raster = CpuRasterizer()
    together = np.zeros((g.count, 5))
    raster.votes(g, views[0], w, together)
    for k in range(5):
        alone = np.zeros((g.count, 1))
        raster.votes(g, views[0], w[:, :, k : k + 1], alone)
        np.testing.assert_allclose(together[:, k], alone[:, 0], rtol=1e-5, atol=1e-7)


def test_all_ones_mask_votes_sum_to_covered_alpha_and_zero_mask_gives_nothing():
    g, views = scene_and_views(size=32, n_views=1)
    raster = CpuRasterizer()
    ones = np.zeros((g.count, 1))
    raster.votes(g, views[0], np.ones((32, 32, 1), np.float32), ones)
    _, alpha = raster.render(g, views[0])
    # sum_i w_i(p) = 1 - T_final(p) for every pixel
    assert ones.sum() == pytest.approx(float(alpha.sum()), rel=1e-4)
    zero = np.zeros((g.count, 1))
    raster.votes(g, views[0], np.zeros((32, 32, 1), np.float32), zero)
    assert not zero.any()


def test_render_is_the_composite_of_sh_colours():
    g, views = scene_and_views(size=32, n_views=1)
    image, alpha = CpuRasterizer().render(g, views[0], background=np.array([0.0, 0.0, 1.0]))
    assert image.shape == (32, 32, 3) and alpha.shape == (32, 32)
    assert 0.05 < alpha.mean() < 1.0
    # where nothing covers a pixel, the background shows
    empty = alpha < 1e-6
    if empty.any():
        np.testing.assert_allclose(image[empty], [[0.0, 0.0, 1.0]] * int(empty.sum()), atol=1e-6)


def test_weights_must_match_the_view():
    g, views = scene_and_views(size=32, n_views=1)
    with pytest.raises(ValueError, match="weights are"):
        CpuRasterizer().votes(g, views[0], np.ones((16, 16, 2), np.float32), np.zeros((g.count, 2)))
