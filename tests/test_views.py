"""Cameras from viewport views (core/views): Blender's view and projection matrices to the
OpenCV camera, and picking a splat under the mouse."""

from __future__ import annotations

import numpy as np
import pytest

from masksplat_blender.core.cameras import look_at
from masksplat_blender.core.views import (
    BLENDER_TO_OPENCV,
    camera_from_view,
    fit_size,
    intrinsics_from_projection,
    perspective_view,
    pick_splat,
    viewport_projection,
)


def _region_pixels(points, view, projection, width, height):
    """Where a viewport draws world points: OpenGL clip space to region pixels, flipped to y down."""
    clip = np.c_[points, np.ones(len(points))] @ (projection @ view).T
    ndc = clip[:, :3] / clip[:, 3:]
    return np.stack([(ndc[:, 0] + 1) * width / 2, (1 - ndc[:, 1]) * height / 2], axis=1)


@pytest.mark.parametrize(("width", "height", "lens"), [(1100, 740, 50.0), (600, 900, 35.0)])
def test_camera_of_a_view_projects_like_the_viewport(width, height, lens):
    view = BLENDER_TO_OPENCV @ look_at((2.0, -3.0, 1.5), (0.1, 0.2, 0.0))  # Blender's world-to-view
    projection = viewport_projection(lens, width, height, 0.1, 100.0)
    projection[0, 2], projection[1, 2] = 0.05, -0.03  # an off-centre view (camera shift, region overlap)
    points = np.random.default_rng(0).uniform(-0.5, 0.5, (50, 3))
    cam = camera_from_view("view", view, projection, width, height)
    uv, depth = cam.project(points)
    assert (depth > 0).all()
    np.testing.assert_allclose(uv, _region_pixels(points, view, projection, width, height), atol=1e-9)
    assert (cam.width, cam.height, cam.image_name) == (width, height, "view.png")
    small = camera_from_view("view", view, projection, width, height, max_size=256)
    assert max(small.width, small.height) == 256
    uv_small, _ = small.project(points)
    np.testing.assert_allclose(uv_small / [small.width, small.height], uv / [width, height], atol=2e-3)


def test_viewport_lens_is_over_a_72mm_sensor_on_the_longer_side():
    fx, fy, cx, cy = intrinsics_from_projection(viewport_projection(50.0, 1000, 500), 1000, 500)
    assert fx == pytest.approx(1000 * 50 / 72) and fy == pytest.approx(fx) and (cx, cy) == (500, 250)
    fx, fy, _, _ = intrinsics_from_projection(viewport_projection(50.0, 400, 800), 400, 800)
    assert fy == pytest.approx(800 * 50 / 72) and fx == pytest.approx(fy)


def test_an_orthographic_view_becomes_its_perspective_twin():
    """Blender's orthographic view matrix has the eye at the pivot; the perspective eye is the
    view distance behind it, and an orthographic view of width dist x 72 / lens shows the pivot's
    neighbourhood at the same scale as the perspective camera does."""
    pivot, distance, lens = np.array([0.1, 0.2, 0.0]), 0.5, 50.0
    ortho_view = BLENDER_TO_OPENCV @ look_at(pivot - [0, 1e-9, 0], pivot + [0, 1, 0])  # eye at the pivot, looking +y
    cam = camera_from_view("v", perspective_view(ortho_view, distance), viewport_projection(lens, 800, 600), 800, 600)
    np.testing.assert_allclose(cam.center(), pivot - [0, distance, 0], atol=1e-6)
    ortho_width = distance * 72.0 / lens
    uv, _ = cam.project(np.array([pivot, pivot + [ortho_width / 2, 0, 0]]))
    assert uv[1, 0] - uv[0, 0] == pytest.approx(400.0)  # half the ortho width spans half the image


def test_orthographic_projections_and_bad_input_are_refused():
    ortho = np.diag([0.5, 0.5, -0.02, 1.0])
    with pytest.raises(ValueError, match="not a perspective projection"):
        intrinsics_from_projection(ortho, 100, 100)
    with pytest.raises(ValueError, match="finite 4x4"):
        camera_from_view("v", np.full((4, 4), np.nan), viewport_projection(50, 10, 10), 10, 10)
    with pytest.raises(ValueError, match="positive lens"):
        viewport_projection(0.0, 10, 10)
    assert fit_size(1920, 1080, 1024) == (1024, 576) and fit_size(800, 600, 1024) == (800, 600) and fit_size(800, 600, 0) == (800, 600)


def test_pick_splat_takes_the_nearest_opaque_splat_under_the_mouse():
    view = BLENDER_TO_OPENCV @ look_at((0.0, -5.0, 0.0), (0.0, 0.0, 0.0))
    projection = viewport_projection(50.0, 400, 300)
    means = np.array([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0], [0.0, -2.0, 0.0], [1.0, 0.0, 0.0]])  # three on the line of sight
    mouse = _region_pixels(means[:1], view, projection, 400, 300)[0] * [1, -1] + [0, 300]  # region y is up
    vp = projection @ view
    assert pick_splat(means, vp, 400, 300, mouse) == 2  # the nearest to the eye
    assert pick_splat(means, vp, 400, 300, mouse, opacities=np.array([0.9, 0.9, 0.01, 0.9])) == 1  # faint ones only as a last resort
    assert pick_splat(means, vp, 400, 300, (5.0, 5.0)) == -1
