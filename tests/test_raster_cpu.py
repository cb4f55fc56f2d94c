"""The CPU rasterizer follows gsplat 1.5's rules: its votes are the autograd gradients of
a masked render, agree with a brute-force per-pixel compositor, and its renders match a
PyTorch reference. Hand-made scenes pin the depth order, the early stop and the culling.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import DATA_DIR, data_file
from reference_compositor import autograd_votes, brute_force_votes, project_torch, reference_render
from scenes import mask_weights, scene_and_views, splat_gaussians, views_around

from masksplat_blender.backend.raster_cpu import CpuRasterizer, project
from masksplat_blender.backend.rasterizer import Gaussians
from masksplat_blender.core.cameras import Camera

DONUT = "gshairlod_donut/fused.ply"
GUITAR = "playcanvas_guitar/guitar_inria_sh0.ply"

# Votes: compared relative to the largest vote of the view.
RTOL, ATOL = 1e-4, 1e-5


def donut_scene(size=64, n_views=2, subset=3000):
    """3,000 Gaussians of the shared donut (skips without ../shared/data) and views around it."""
    g = splat_gaussians(data_file(DONUT), subset, seed=1)
    return g, views_around(g, size, n_views, up=(0, 0, 1), elevation=(25, 60), distance=0.9)


def donut_or_bundled_scene(donut_args: tuple, bundled_args: tuple):
    """The donut where ../shared/data has it, else the bundled sample (always present)."""
    return donut_scene(*donut_args) if (DATA_DIR / DONUT).exists() else scene_and_views(*bundled_args)


def assert_votes_close(ours, reference, rtol=RTOL, atol=ATOL):
    scale = np.abs(reference).max()
    assert scale > 0.1, "the view should see the object"
    np.testing.assert_allclose(ours / scale, reference / scale, rtol=rtol, atol=atol)


def votes(g, view, w):
    out = np.zeros((g.count, w.shape[2]))
    CpuRasterizer().votes(g, view, w, out)
    return out


# --- against references ------------------------------------------------------------


def test_projection_matches_a_float64_reference():
    g, views = donut_or_bundled_scene((64, 1), (40, 1))
    view = views[0]
    ours = project(g, view)
    means2d, conics, opacity, depth, radii, valid = (t.numpy() for t in project_torch(
        g.means, g.quats, g.log_scales, g.opacity_logits, view.world_to_camera, view.K(), view.width, view.height))  # fmt: skip
    ref_ids = np.flatnonzero(valid)
    assert len(ref_ids) > 100
    # the same Gaussians survive (a radius sitting exactly on an integer may round either way)
    assert len(np.setxor1d(ours.ids, ref_ids)) <= max(1, len(ref_ids) // 1000)
    ids = np.intersect1d(ours.ids, ref_ids)
    pos = {i: k for k, i in enumerate(ours.ids)}
    k = np.array([pos[i] for i in ids])
    np.testing.assert_allclose(ours.means2d[k], means2d[ids], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(ours.depths[k], depth[ids], rtol=1e-6)
    np.testing.assert_allclose(ours.opacities[k], opacity[ids], rtol=1e-6)
    scale = np.abs(conics[ids]).max(axis=1, keepdims=True)
    np.testing.assert_allclose(ours.conics[k] / scale, conics[ids] / scale, atol=1e-4)
    assert np.mean(np.all(ours.radii[k] == radii[ids], axis=1)) > 0.999
    # front to back
    assert np.all(np.diff(ours.depths) >= 0)


def test_votes_equal_autograd_gradients_on_a_shared_real_splat():
    """3,000 Gaussians of the donut, two 64x64 views: votes = d sum(mask * render) / d colours."""
    g, views = donut_scene()
    for i, view in enumerate(views):
        w = mask_weights(view.width, i)
        ours = votes(g, view, w)
        reference = autograd_votes(g, view, w)
        assert (reference > 0).sum() > 500
        assert_votes_close(ours, reference)


def test_votes_equal_autograd_gradients_on_the_bundled_splat():
    g, views = scene_and_views()
    for i, view in enumerate(views):
        w = mask_weights(view.width, i)
        assert_votes_close(votes(g, view, w), autograd_votes(g, view, w))


def test_votes_equal_brute_force_per_pixel_compositing_without_tiles():
    g, views = donut_or_bundled_scene((40, 1, 1500), (24, 1, 600))
    view = views[0]
    w = mask_weights(view.width, 3, ignore=True)
    assert_votes_close(votes(g, view, w), brute_force_votes(g, view, w))


def test_render_matches_the_torch_reference():
    g, views = scene_and_views(size=48, n_views=2)
    raster = CpuRasterizer()
    bg = np.array([0.1, 0.2, 0.9], np.float32)
    for view in views:
        image, alpha = raster.render(g, view, background=bg)
        ref_image, ref_alpha = reference_render(g, view, background=bg)
        assert image.shape == (48, 48, 3) and image.dtype == np.float32 and alpha.dtype == np.float32
        assert 0.05 < alpha.mean() < 1.0
        np.testing.assert_allclose(alpha, ref_alpha, atol=2e-4)
        np.testing.assert_allclose(image, ref_image, atol=2e-4)


def test_render_evaluates_higher_sh_degrees_per_view():
    """SH degree 3 (random coefficients): view-dependent colour exactly as 3DGS evaluates it."""
    g, views = scene_and_views(size=32, n_views=2, subset=800)
    rng = np.random.default_rng(5)
    sh = np.concatenate([g.sh[:, :1], rng.normal(0, 0.3, (g.count, 15, 3)).astype(np.float32)], axis=1)
    g = Gaussians(g.means, g.quats, g.log_scales, g.opacity_logits, sh)
    images = []
    for view in views:
        image, _ = CpuRasterizer().render(g, view)
        ref_image, _ = reference_render(g, view)
        np.testing.assert_allclose(image, ref_image, atol=2e-4)
        images.append(image)
    assert np.abs(images[0] - images[1]).max() > 0.05


# --- properties ----------------------------------------------------------------------


def test_many_channels_at_once_equal_separate_runs():
    g, views = scene_and_views(size=32, n_views=1)
    w = mask_weights(32, 1, k=5)
    together = votes(g, views[0], w)
    assert together.max() > 0.1
    for k in range(5):
        alone = votes(g, views[0], np.ascontiguousarray(w[:, :, k : k + 1]))
        np.testing.assert_allclose(together[:, k], alone[:, 0], rtol=1e-6, atol=1e-9)


def test_zero_weights_give_zero_votes_and_ones_give_the_total_contribution():
    g, views = scene_and_views(size=32, n_views=1)
    view = views[0]
    zero = votes(g, view, np.zeros((32, 32, 2), np.float32))
    assert not zero.any()
    ones = np.ones((32, 32), np.float32)
    fg_bg = votes(g, view, np.stack([ones, 0 * ones], -1))
    total = votes(g, view, ones[:, :, None])
    assert not fg_bg[:, 1].any()
    np.testing.assert_array_equal(fg_bg[:, 0], total[:, 0])
    _, alpha = CpuRasterizer().render(g, view)
    # sum_i w_i(p) = 1 - T_final(p), summed over pixels
    assert total.sum() == pytest.approx(float(alpha.astype(np.float64).sum()), rel=1e-5)


def test_per_pixel_sum_of_blend_weights_is_one_minus_final_transmittance():
    """One channel per pixel (one-hot weights): the votes of channel p sum to alpha(p)."""
    g, views = scene_and_views(size=24, n_views=1)
    view = views[0]
    onehot = np.eye(24 * 24, dtype=np.float32).reshape(24, 24, 24 * 24)
    per_pixel = votes(g, view, onehot).sum(axis=0).reshape(24, 24)
    _, alpha = CpuRasterizer().render(g, view)
    assert alpha.max() > 0.9
    np.testing.assert_allclose(per_pixel, alpha, atol=2e-6)


def test_views_accumulate_into_out_and_bad_shapes_are_refused():
    g, views = scene_and_views(size=32, n_views=2)
    w = mask_weights(32, 0)
    out = np.zeros((g.count, 2))
    raster = CpuRasterizer()
    for view in views:
        raster.votes(g, view, w, out)
    np.testing.assert_allclose(out, votes(g, views[0], w) + votes(g, views[1], w), rtol=1e-12)
    with pytest.raises(ValueError, match="weights are"):
        raster.votes(g, views[0], np.ones((16, 16, 2), np.float32), out)
    with pytest.raises(ValueError, match="out is"):
        raster.votes(g, views[0], w, np.zeros((g.count, 3)))


# --- hand-made scenes: the exact rules ---------------------------------------------------


def _blobs(positions, opacities, scale=0.05):
    n = len(positions)
    logit = [math.log(o / (1 - o)) if o < 1 else 20.0 for o in opacities]
    return Gaussians(
        np.asarray(positions, np.float32), np.tile(np.float32([1, 0, 0, 0]), (n, 1)),
        np.full((n, 3), math.log(scale), np.float32), np.asarray(logit, np.float32),
        np.zeros((n, 1, 3), np.float32),
    )  # fmt: skip


def _front_view(size=16):
    # camera at the origin looking down +z; pixel (8, 8)'s centre is the ray through (0.03125, 0.03125)
    return Camera("front", "front.png", np.eye(4), 64.0, 64.0, 8.0, 8.0, size, size)


def _centre_pixel_only(size=16):
    w = np.zeros((size, size, 1), np.float32)
    w[8, 8] = 1.0
    return w


def test_equal_depths_blend_in_index_order():
    view = _front_view()
    g = _blobs([[0, 0, 2], [0, 0, 2]], [0.6, 0.3])
    v = votes(g, view, _centre_pixel_only())[:, 0]
    p = project(g, view)
    dx = p.means2d[0] - 8.5
    sigma = 0.5 * (p.conics[0, 0] * dx[0] ** 2 + p.conics[0, 2] * dx[1] ** 2) + p.conics[0, 1] * dx[0] * dx[1]
    a0, a1 = 0.6 * math.exp(-sigma), 0.3 * math.exp(-sigma)
    np.testing.assert_allclose(v, [a0, a1 * (1 - a0)], rtol=1e-5)


def test_a_pixel_stops_before_the_gaussian_that_would_bring_t_to_1e_4():
    view = _front_view()
    # big, nearly opaque: alpha = 0.999 at the centre pixel for each one
    g = _blobs([[0, 0, 2], [0, 0, 3], [0, 0, 4]], [1.0, 1.0, 1.0], scale=0.5)
    v = votes(g, view, _centre_pixel_only())[:, 0]
    # the first leaves T = 1e-3; the second would leave 1e-6 <= 1e-4, so it and all behind are skipped
    np.testing.assert_allclose(v, [0.999, 0.0, 0.0], rtol=1e-6)
    _, alpha = CpuRasterizer().render(g, view)
    assert alpha[8, 8] == pytest.approx(0.999, rel=1e-6)
    # with a weaker front Gaussian the second one still fits: T = 0.5 * 0.001 > 1e-4
    g2 = _blobs([[0, 0, 2], [0, 0, 3], [0, 0, 4]], [0.5, 1.0, 1.0], scale=0.5)
    v2 = votes(g2, view, _centre_pixel_only())[:, 0]
    assert v2[0] == pytest.approx(0.5, rel=2e-3)
    assert v2[1] > 0.49 and v2[2] == 0.0


def test_culling_near_plane_low_opacity_and_outside_the_image():
    view = _front_view()
    g = _blobs([[0, 0, 0.005], [0, 0, 2], [5, 0, 2], [0, 0, -2], [0.01, 0.01, 2]], [0.9, 0.003, 0.9, 0.9, 0.9])
    p = project(g, view)
    assert list(p.ids) == [4]  # behind the near plane, opacity < 1/255, off-screen, behind the camera
    v = votes(g, view, np.ones((16, 16, 1), np.float32))[:, 0]
    assert v[4] > 0 and not v[:4].any()


def test_radius_is_opacity_aware_per_axis():
    view = _front_view(64)
    view.cx = view.cy = 32.0
    g = Gaussians(np.float32([[0, 0, 2], [0, 0, 2]]), np.float32([[1, 0, 0, 0], [1, 0, 0, 0]]),
                  np.log(np.float32([[0.2, 0.05, 0.05], [0.2, 0.05, 0.05]])), np.float32([4.0, -3.0]))  # fmt: skip
    p = project(g, view)
    order = np.argsort(p.ids)
    radii = p.radii[order]
    for i, opacity in enumerate(1 / (1 + np.exp(-np.float32([4.0, -3.0])))):
        extend = min(3.33, math.sqrt(2 * math.log(opacity * 255)))
        sx, sy = 64 * 0.2 / 2, 64 * 0.05 / 2  # pixel sigmas at the image centre
        assert radii[i, 0] == math.ceil(extend * math.sqrt(sx**2 + 0.3))
        assert radii[i, 1] == math.ceil(extend * math.sqrt(sy**2 + 0.3))
    assert radii[1, 0] < radii[0, 0]


def test_guitar_view_votes_are_finite_and_cover_the_mask():
    g = splat_gaussians(data_file(GUITAR))
    view = views_around(g, 64, 1, up=(0, -1, 0), elevation=(0, 0), distance=0.8)[0]
    w = mask_weights(64, 0)
    v = votes(g, view, w)
    _, alpha = CpuRasterizer().render(g, view)
    assert np.isfinite(v).all() and (v >= 0).all()
    np.testing.assert_allclose(v.sum(axis=0), (w * alpha[:, :, None]).sum(axis=(0, 1)), rtol=1e-4)
