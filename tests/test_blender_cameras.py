"""Blender cameras and the OpenCV model agree pixel for pixel (real bpy)."""

from __future__ import annotations

import numpy as np
import pytest
from camera_writers import save_cameras_json
from scenes import sample_cameras

from masksplat_blender.core.cameras import Camera, look_at

INTRINSICS_RTOL = 1e-9  # round trip Camera -> Blender object -> Camera
POSE_ATOL = 1e-6
PIXEL_TOL = 1e-4  # of the image size: Camera.project against world_to_camera_view


def _blender_pixels(bpy, scene, cam_obj, points):
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    # the size Blender renders at (integer percentage scaling)
    width = scene.render.resolution_x * scene.render.resolution_percentage // 100
    height = scene.render.resolution_y * scene.render.resolution_percentage // 100
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
    np.testing.assert_allclose([back.fx, back.fy, back.cx, back.cy], [fx, fy, cx, cy], rtol=INTRINSICS_RTOL)
    np.testing.assert_allclose(back.world_to_camera, w2c, atol=POSE_ATOL)


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


def _random_camera(rng, name="cam") -> Camera:
    width, height = (int(v) for v in rng.integers(16, 2500, size=2))
    fx = float(rng.uniform(0.3, 3.0) * width)
    fy = fx * float(rng.choice([1.0, rng.uniform(0.5, 2.0)]))  # square and non-square pixels
    cx = float(rng.uniform(-0.3, 1.3) * width)  # off-centre, even outside the image
    cy = float(rng.uniform(-0.3, 1.3) * height)
    w2c = look_at(rng.normal(size=3) * rng.uniform(0.5, 50), rng.normal(size=3), up=rng.normal(size=3))
    return Camera(name, f"{name}.jpg", w2c, fx, fy, cx, cy, width, height)


def _assert_projects_like_blender(blend, scene, cam, cam_obj, rng):
    points = _points_in_front(cam, rng)
    ours, depth = cam.project(points)
    assert (depth > 0).all()
    theirs = _blender_pixels(blend, scene, cam_obj, points)
    error = np.abs(ours - theirs).max() / max(cam.width, cam.height)
    assert error <= PIXEL_TOL, error
    return error


def test_random_cameras_round_trip_exactly_and_project_like_blender(blend, installed_addon):
    scene_cameras = installed_addon.scene.cameras
    scene = blend.context.scene
    rng = np.random.default_rng(7)
    worst = 0.0
    for i in range(40):
        cam = _random_camera(rng, f"r{i:02d}")
        cam_obj = scene_cameras.camera_object_from_camera(cam, scene.collection)
        scene_cameras.apply_camera_resolution(scene, cam_obj)
        assert (scene.render.resolution_x, scene.render.resolution_y) == (cam.width, cam.height)
        worst = max(worst, _assert_projects_like_blender(blend, scene, cam, cam_obj, rng))
        back = scene_cameras.camera_from_object(cam_obj, scene)
        assert (back.name, back.image_name, back.width, back.height) == (cam.name, cam.image_name, cam.width, cam.height)
        np.testing.assert_allclose([back.fx, back.fy, back.cx, back.cy], [cam.fx, cam.fy, cam.cx, cam.cy], rtol=INTRINSICS_RTOL)
        np.testing.assert_allclose(back.world_to_camera, cam.world_to_camera, rtol=0, atol=POSE_ATOL)
        # from Blender's single-precision values alone (no remembered doubles) it is still close
        del cam_obj[scene_cameras.EXACT_KEY]
        approx = scene_cameras.camera_from_object(cam_obj, scene)
        np.testing.assert_allclose([approx.fx, approx.fy], [cam.fx, cam.fy], rtol=1e-5)
        np.testing.assert_allclose([approx.cx, approx.cy], [cam.cx, cam.cy], atol=1e-5 * max(cam.width, cam.height))
        np.testing.assert_allclose(approx.world_to_camera, cam.world_to_camera, atol=1e-5 * max(1, np.abs(cam.center()).max()))
    assert worst < PIXEL_TOL


def test_an_edited_imported_camera_follows_blender(blend, installed_addon):
    """Lens, shift or placement changed by the user after import: Blender's values win."""
    scene_cameras = installed_addon.scene.cameras
    scene = blend.context.scene
    rng = np.random.default_rng(3)
    cam = _random_camera(rng)
    cam_obj = scene_cameras.camera_object_from_camera(cam, scene.collection)
    cam_obj.data.lens *= 1.25
    cam_obj.data.shift_x += 0.05
    cam_obj.location.x += 0.5
    blend.context.view_layer.update()
    scene_cameras.apply_camera_resolution(scene, cam_obj)
    edited = scene_cameras.camera_from_object(cam_obj, scene)
    assert edited.fx == pytest.approx(cam.fx * 1.25, rel=1e-6) and edited.fy == pytest.approx(cam.fy * 1.25, rel=1e-6)
    assert edited.cx == pytest.approx(cam.cx - 0.05 * cam.width, abs=1e-4 * cam.width)
    assert edited.cy == cam.cy and (edited.width, edited.height) == (cam.width, cam.height)
    np.testing.assert_allclose(edited.center(), cam.center() + [0.5, 0, 0], atol=1e-5 * max(1, np.abs(cam.center()).max()))
    _assert_projects_like_blender(blend, scene, edited, cam_obj, rng)


@pytest.mark.parametrize("seed", range(12))
def test_random_user_cameras_convert_and_come_back(blend, installed_addon, seed):
    """Any hand-made camera: lens, sensor, fit, shift, resolution (odd percentages too), pixel aspect."""
    from mathutils import Euler

    scene_cameras = installed_addon.scene.cameras
    scene = blend.context.scene
    rng = np.random.default_rng(100 + seed)
    render = scene.render
    render.resolution_x, render.resolution_y = (int(v) for v in rng.integers(50, 3000, size=2))
    render.resolution_percentage = int(rng.choice([100, 50, 37, 133]))
    render.pixel_aspect_x, render.pixel_aspect_y = (float(v) for v in rng.choice([1.0, 1.0, 1.7], size=2))
    data = blend.data.cameras.new("user")
    data.lens, data.sensor_width, data.sensor_height = rng.uniform(10, 200), rng.uniform(5, 50), rng.uniform(5, 50)
    data.sensor_fit = str(rng.choice(["AUTO", "HORIZONTAL", "VERTICAL"]))
    data.shift_x, data.shift_y = rng.uniform(-0.6, 0.6, size=2)
    obj = blend.data.objects.new("user", data)
    scene.collection.objects.link(obj)
    obj.location = rng.normal(size=3) * 5
    obj.rotation_euler = Euler(rng.uniform(-np.pi, np.pi, size=3))
    obj.scale = rng.uniform(0.2, 3.0, size=3)  # scale, even non-uniform, must not leak into the projection
    blend.context.view_layer.update()
    cam = scene_cameras.camera_from_object(obj, scene)
    assert cam.name == "user" and (cam.width, cam.height) == (
        render.resolution_x * render.resolution_percentage // 100,
        render.resolution_y * render.resolution_percentage // 100,
    )
    _assert_projects_like_blender(blend, scene, cam, obj, rng)
    # and back into a MaskSplat camera of its own, which sees the same
    copy = scene_cameras.camera_object_from_camera(cam, scene.collection, name="copy")
    scene_cameras.apply_camera_resolution(scene, copy)
    _assert_projects_like_blender(blend, scene, cam, copy, rng)
    again = scene_cameras.camera_from_object(copy, scene)
    np.testing.assert_allclose([again.fx, again.fy, again.cx, again.cy], [cam.fx, cam.fy, cam.cx, cam.cy], rtol=INTRINSICS_RTOL)
    np.testing.assert_allclose(again.world_to_camera, cam.world_to_camera, atol=POSE_ATOL)


def test_checkout_module_works_without_registering_anything():
    """scene.cameras from the checkout registers nothing and keeps its data in ID properties."""
    import bpy

    from masksplat_blender.scene import cameras as scene_cameras

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    rng = np.random.default_rng(11)
    cam = _random_camera(rng, "plain")
    obj = scene_cameras.camera_object_from_camera(cam, scene.collection)
    props = getattr(obj, "masksplat", None)
    if props is not None:  # the installed add-on registered its properties in this process: forget them
        props.is_camera = False
    stored = scene_cameras.stored_intrinsics(obj)
    assert stored == {"image_name": "plain.jpg", "width": cam.width, "height": cam.height,
                      "fx": cam.fx, "fy": cam.fy, "cx": cam.cx, "cy": cam.cy}  # fmt: skip
    scene_cameras.apply_camera_resolution(scene, obj)
    back = scene_cameras.camera_from_object(obj, scene)
    np.testing.assert_allclose([back.fx, back.fy, back.cx, back.cy], [cam.fx, cam.fy, cam.cx, cam.cy], rtol=INTRINSICS_RTOL)
    np.testing.assert_allclose(back.world_to_camera, cam.world_to_camera, atol=POSE_ATOL)
    _assert_projects_like_blender(bpy, scene, cam, obj, rng)
    plain = bpy.data.objects.new("plain_cam", bpy.data.cameras.new("plain_cam"))
    assert scene_cameras.stored_intrinsics(plain) is None
    with pytest.raises(ValueError, match="not a camera"):
        scene_cameras.camera_from_object(bpy.data.objects.new("empty", None), scene)
    bpy.ops.wm.read_homefile(use_empty=True)
