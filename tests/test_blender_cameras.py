"""Blender cameras and the OpenCV model agree pixel for pixel (real bpy)."""

from __future__ import annotations

import numpy as np
import pytest
from test_cameras import sample_cameras

from masksplat_blender.core.cameras import Camera, look_at, save_cameras_json


def _blender_pixels(bpy, scene, cam_obj, points):
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    width = scene.render.resolution_x * scene.render.resolution_percentage / 100
    height = scene.render.resolution_y * scene.render.resolution_percentage / 100
    out = []
    for p in points:
        ndc = world_to_camera_view(scene, cam_obj, Vector(p))
        out.append((ndc.x * width, (1 - ndc.y) * height))
    return np.array(out)


def _points_in_front(cam: Camera, rng, n=20):
    uv = rng.uniform([0, 0], [cam.width, cam.height], size=(n, 2))
    depth = rng.uniform(1.0, 10.0, size=n)
    cam_pts = np.stack([(uv[:, 0] - cam.cx) / cam.fx * depth, (uv[:, 1] - cam.cy) / cam.fy * depth, depth], 1)
    c2w = cam.camera_to_world()
    return cam_pts @ c2w[:3, :3].T + c2w[:3, 3]


@pytest.mark.parametrize(
    "fx, fy, cx, cy, w, h",
    [
        (500.0, 500.0, 320.0, 240.0, 640, 480),
        (700.0, 520.0, 300.0, 260.0, 640, 480),  # non-square pixels, off-centre
        (400.0, 650.0, 200.0, 330.0, 480, 640),  # portrait, fy > fx
        (900.0, 900.0, 100.0, 50.0, 256, 256),  # far off-centre
    ],
)
def test_opencv_camera_and_blender_project_to_the_same_pixel(blend, installed_addon, fx, fy, cx, cy, w, h):
    scene_cameras = installed_addon.scene.cameras
    rng = np.random.default_rng(int(fx))
    w2c = look_at(rng.normal(size=3) * 4, rng.normal(size=3) * 0.2)
    cam = Camera("c", "c.jpg", w2c, fx, fy, cx, cy, w, h)
    scene = blend.context.scene
    cam_obj = scene_cameras.camera_object_from_camera(cam, scene.collection)
    scene_cameras.apply_camera_resolution(scene, cam_obj)
    scene.camera = cam_obj
    points = _points_in_front(cam, rng)
    ours, _ = cam.project(points)
    theirs = _blender_pixels(blend, scene, cam_obj, points)
    assert np.abs(ours - theirs).max() <= 1e-4 * max(w, h)
    back = scene_cameras.camera_from_object(cam_obj, scene)
    np.testing.assert_allclose([back.fx, back.fy, back.cx, back.cy], [fx, fy, cx, cy], rtol=1e-5)
    np.testing.assert_allclose(back.world_to_camera, w2c, atol=1e-5)


@pytest.mark.parametrize("fit", ["AUTO", "HORIZONTAL", "VERTICAL"])
def test_user_placed_blender_camera_converts_exactly(blend, installed_addon, fit):
    from mathutils import Euler

    scene = blend.context.scene
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 400, 300, 50
    scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = 1.0, 1.3
    data = blend.data.cameras.new("user")
    data.lens, data.sensor_width, data.sensor_height, data.sensor_fit = 42.0, 32.0, 20.0, fit
    data.shift_x, data.shift_y = 0.07, -0.12
    obj = blend.data.objects.new("user", data)
    scene.collection.objects.link(obj)
    obj.location = (3.0, -4.0, 2.0)
    obj.rotation_euler = Euler((1.1, 0.1, 0.6))
    obj.scale = (2.0, 2.0, 2.0)  # object scale must not leak into the projection
    blend.context.view_layer.update()
    cam = installed_addon.scene.cameras.camera_from_object(obj, scene)
    assert (cam.width, cam.height) == (200, 150)
    rng = np.random.default_rng(1)
    points = _points_in_front(cam, rng)
    ours, depth = cam.project(points)
    assert (depth > 0).all()
    theirs = _blender_pixels(blend, scene, obj, points)
    assert np.abs(ours - theirs).max() <= 1e-4 * 200


def test_orthographic_camera_is_refused(blend, installed_addon):
    data = blend.data.cameras.new("ortho")
    data.type = "ORTHO"
    obj = blend.data.objects.new("ortho", data)
    with pytest.raises(ValueError, match="perspective"):
        installed_addon.scene.cameras.camera_from_object(obj, blend.context.scene)


def test_import_cameras_operator_assigns_collection(blend, tmp_path):
    from conftest import data_file

    blend.ops.masksplat.import_splats(filepath=str(data_file("gshairlod_donut/fused.ply")))
    splat = blend.context.active_object
    cams = sample_cameras()
    save_cameras_json(tmp_path / "cameras.json", cams)
    assert blend.ops.masksplat.import_cameras(filepath=str(tmp_path / "cameras.json")) == {"FINISHED"}
    collection = splat.masksplat.camera_collection
    assert collection is not None and len(collection.objects) == len(cams)
    obj = collection.objects[cams[2].name]
    assert obj.masksplat.is_camera and obj.masksplat.width == 640
    assert obj.masksplat.image_name == cams[2].name
