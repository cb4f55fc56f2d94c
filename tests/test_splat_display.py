"""The Gaussian display's numpy side (core/splat_display): covariances, the EWA projection its
shader does (against the backend's CPU rasterizer), the depth order, the re-sort rule, sizes."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import make_splat_data

from masksplat_blender.backend.raster_cpu import project
from masksplat_blender.backend.rasterizer import Gaussians
from masksplat_blender.core import splat_display as sd
from masksplat_blender.core.orbit import orbit_cameras
from masksplat_blender.core.sh_rotation import sh_basis
from masksplat_blender.core.transform import quat_to_matrix
from masksplat_blender.core.views import BLENDER_TO_OPENCV


def _blender_matrices(cam, near=0.01, far=100.0):
    """Blender's view and projection matrices of an OpenCV camera (core/views' formulas, inverted)."""
    view = BLENDER_TO_OPENCV @ cam.world_to_camera
    p = np.zeros((4, 4))
    p[0, 0], p[1, 1] = 2 * cam.fx / cam.width, 2 * cam.fy / cam.height
    p[0, 2], p[1, 2] = 1 - 2 * cam.cx / cam.width, 2 * cam.cy / cam.height - 1
    p[2, 2], p[2, 3], p[3, 2] = -(far + near) / (far - near), -2 * far * near / (far - near), -1.0
    return view, p


def test_covariance_is_r_s_squared_r_transposed():
    data = make_splat_data(50, seed=3)
    quats, log_scales = data.quats_wxyz(), data.log_scales()
    covs = sd.covariances(quats, log_scales, scale=1.7)
    for i in range(50):
        r = quat_to_matrix(quats[i : i + 1].astype(np.float64))[0]
        full = r @ np.diag((1.7 * np.exp(log_scales[i].astype(np.float64))) ** 2) @ r.T
        expected = full[[0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]]
        np.testing.assert_allclose(covs[i], expected, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("shift", [(0.0, 0.0), (37.0, -21.0)])
def test_projection_matches_the_backend_rasterizer(shift):
    data = make_splat_data(2000, seed=4)
    means, quats, log_scales, logits = data.means(), data.quats_wxyz(), data.log_scales(), data.opacity_logits()
    cam = orbit_cameras((0, 0, 0), 2.0, 3, 320, 240, 55.0)[1]
    cam.cx += shift[0]
    cam.cy += shift[1]
    view, projection = _blender_matrices(cam)
    centres, cov2d, extent, visible = sd.project_ewa(
        means, sd.covariances(quats, log_scales), sd.opacities(logits), view, projection, cam.width, cam.height
    )
    ref = project(Gaussians(means, quats, log_scales, logits), cam)
    ids = ref.ids
    assert visible[ids].all()
    # Window pixels (y up) against OpenCV pixels (y down): y flips, so does the covariance's b.
    np.testing.assert_allclose(centres[ids, 0], ref.means2d[:, 0], atol=2e-3)
    np.testing.assert_allclose(cam.height - centres[ids, 1], ref.means2d[:, 1], atol=2e-3)
    a, b, c = cov2d[ids].T
    det = a * c - b * b
    conics = np.stack([c / det, b / det, a / det], axis=1)  # (a, b, c) of the inverse, y flipped back
    np.testing.assert_allclose(conics, ref.conics, rtol=2e-3, atol=1e-6)
    # The quad reaches where alpha falls to 1/255: within gsplat's box of ceil(3.33-capped extent * sigma).
    sigma_x = np.sqrt(a)
    assert (extent[ids] * sigma_x <= ref.radii[:, 0] + 1e-3).all()


def test_orthographic_projection_is_the_far_perspective_limit():
    data = make_splat_data(300, seed=5)
    covs = sd.covariances(data.quats_wxyz(), data.log_scales())
    op = sd.opacities(data.opacity_logits())
    view = np.eye(4)
    view[2, 3] = -3.0
    ortho = np.diag([2 / 2.0, 2 / 1.5, -2 / 100.0, 1.0])
    far_view = view.copy()
    far_view[2, 3] = -3000.0
    persp = np.zeros((4, 4))
    persp[0, 0], persp[1, 1] = 2 * 3000.0 / 2.0, 2 * 3000.0 / 1.5
    persp[2, 2], persp[2, 3], persp[3, 2] = -1.0, -0.2, -1.0
    got = sd.project_ewa(data.means(), covs, op, view, ortho, 400, 300)
    limit = sd.project_ewa(data.means(), covs, op, far_view, persp, 400, 300)
    np.testing.assert_allclose(got[0], limit[0], rtol=2e-3, atol=0.2)
    np.testing.assert_allclose(got[1], limit[1], rtol=5e-3, atol=1e-3)


def test_back_to_front_orders_by_view_depth():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(100_000, 3)).astype(np.float32)
    axis = sd.view_axis(np.eye(4), np.eye(4)) @ np.eye(3)
    order = sd.back_to_front(means, axis)
    n = len(means)
    assert order.shape == (sd.texture_rows(n) * sd.TEXTURE_WIDTH,)
    assert sorted(order[:n]) == list(range(n))
    z = means[order[:n]] @ axis
    step = (z.max() - z.min()) / (1 << sd.DEPTH_BITS)
    assert (np.diff(z) >= -2 * step).all(), "farthest (most negative view z) first"
    np.testing.assert_array_equal(order[:10], np.argsort(means @ axis, kind="stable")[:10])


def test_back_to_front_keeps_ties_and_handles_flat_and_empty():
    means = np.zeros((5, 3), dtype=np.float32)
    assert list(sd.back_to_front(means, np.array([0.0, 0.0, 1.0]))[:5]) == [0, 1, 2, 3, 4]
    assert sd.back_to_front(np.zeros((0, 3), np.float32), np.array([0.0, 0.0, 1.0])).shape == (sd.TEXTURE_WIDTH,)


def test_view_axis_ignores_where_the_eye_is():
    model = np.diag([2.0, 2.0, 2.0, 1.0])
    view = np.eye(4)
    moved = view.copy()
    moved[:3, 3] = (5.0, -3.0, 40.0)
    np.testing.assert_allclose(sd.view_axis(view, model), sd.view_axis(moved, model))
    np.testing.assert_allclose(sd.view_axis(view, model), [0.0, 0.0, 1.0])


def test_resort_rule():
    axis = np.array([0.0, 0.0, 1.0])
    assert sd.turned(None, axis, 2.0)
    small = np.array([np.sin(np.radians(1.0)), 0.0, np.cos(np.radians(1.0))])
    big = np.array([np.sin(np.radians(3.0)), 0.0, np.cos(np.radians(3.0))])
    assert not sd.turned(axis, small, 2.0)
    assert sd.turned(axis, big, 2.0)
    assert not sd.turned(axis, axis, 0.0)
    centre = np.zeros(3)
    assert sd.moved(None, np.ones(3), centre, 1.0, 2.0)
    assert not sd.moved(np.array([10.0, 0, 0]), np.array([10.0, 0.1, 0]), centre, 1.0, 2.0)
    assert sd.moved(np.array([10.0, 0, 0]), np.array([10.0, 1.0, 0]), centre, 1.0, 2.0)


def test_packing_layout_and_size():
    data = make_splat_data(5000, seed=6)
    colours = sd.base_colours(data.f_dc())
    texels = sd.pack(data.means(), data.quats_wxyz(), data.log_scales(), data.opacity_logits(), colours, scale=0.5)
    assert sd.BYTES_PER_GAUSSIAN <= 80
    assert texels.shape == (sd.TEXELS, sd.TEXTURE_WIDTH * sd.texture_rows(5000), 4)
    assert texels.dtype == np.float32
    np.testing.assert_array_equal(texels[0, :5000, :3], data.means())
    np.testing.assert_allclose(texels[0, :5000, 3], 1 / (1 + np.exp(-data.opacity_logits().astype(np.float64))), rtol=1e-6)
    cov = sd.covariances(data.quats_wxyz(), data.log_scales(), 0.5)
    np.testing.assert_array_equal(texels[1, :5000], cov[:, :4])
    np.testing.assert_array_equal(texels[2, :5000, :2], cov[:, 4:])
    np.testing.assert_array_equal(texels[3, :5000, :3], colours)
    assert (colours >= 0).all()
    assert not texels[:, 5000:].any(), "padding texels are empty (opacity 0: never drawn)"


def test_sh_colours_follow_the_eye():
    data = make_splat_data(400, sh_degree=3, seed=7)
    sh, means = data.sh(), data.means()
    eye = np.array([3.0, -2.0, 1.0])
    got = sd.sh_colours(sh, means, eye)
    dirs = means - eye
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    expected = np.maximum(0.5 + np.einsum("nk,nkc->nc", sh_basis(dirs, 3), sh.astype(np.float64)), 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sd.sh_colours(sh[:, :1], means, eye), sd.base_colours(data.f_dc()), atol=1e-6)
