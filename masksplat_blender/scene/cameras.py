"""Blender cameras <-> the OpenCV camera model, exactly, both ways.

Blender's view plane (BKE_camera_params_compute_viewplane) in pixels: with sensor fit
resolved to horizontal or vertical, `viewfac` = W or ycor * H (ycor = pixel aspect y/x),
focal f = lens * viewfac / sensor, and the shift moves the plane by shift * viewfac.
In OpenCV terms fx = f, fy = f / ycor, cx = W/2 - shift_x * viewfac,
cy = H/2 + shift_y * viewfac / ycor.
"""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from ..core.cameras import Camera

BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])  # camera axes: Blender looks down -Z with +Y up
SENSOR_WIDTH = 36.0


def _pixel_aspect(fx: float, fy: float) -> tuple[float, float]:
    """Blender pixel aspect (both >= 1) giving ycor = aspect_y / aspect_x = fx / fy."""
    return (1.0, fx / fy) if fx >= fy else (fy / fx, 1.0)


def camera_object_from_camera(cam: Camera, collection: bpy.types.Collection, name: str | None = None) -> bpy.types.Object:
    """A Blender camera that sees exactly what `cam` sees, remembering its own intrinsics."""
    data = bpy.data.cameras.new(name or cam.name)
    data.type = "PERSP"
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = SENSOR_WIDTH
    data.lens = cam.fx * SENSOR_WIDTH / cam.width
    ycor = cam.fx / cam.fy
    data.shift_x = (cam.width / 2.0 - cam.cx) / cam.width
    data.shift_y = (cam.cy - cam.height / 2.0) * ycor / cam.width
    depth = np.linalg.norm(cam.center()) if np.isfinite(cam.center()).all() else 100.0
    data.clip_start = 0.01
    data.clip_end = max(1000.0, 10.0 * float(depth))
    data.display_size = 0.2
    obj = bpy.data.objects.new(name or cam.name, data)
    c2w = cam.camera_to_world() @ BLENDER_TO_OPENCV
    obj.matrix_world = Matrix(c2w.tolist())
    props = obj.masksplat
    props.is_camera = True
    props.image_name = cam.image_name
    props.width, props.height = cam.width, cam.height
    props.fx, props.fy, props.cx, props.cy = cam.fx, cam.fy, cam.cx, cam.cy
    collection.objects.link(obj)
    return obj


def camera_resolution(obj: bpy.types.Object, scene: bpy.types.Scene) -> tuple[int, int, float, float]:
    """Width, height and pixel aspect (x, y) this camera renders with."""
    props = obj.masksplat
    if props.is_camera:
        return props.width, props.height, *_pixel_aspect(props.fx, props.fy)
    render = scene.render
    scale = render.resolution_percentage / 100.0
    return (
        max(1, round(render.resolution_x * scale)),
        max(1, round(render.resolution_y * scale)),
        render.pixel_aspect_x,
        render.pixel_aspect_y,
    )


def apply_camera_resolution(scene: bpy.types.Scene, obj: bpy.types.Object) -> None:
    """Make the scene render at this camera's own resolution and pixel aspect."""
    width, height, aspect_x, aspect_y = camera_resolution(obj, scene)
    render = scene.render
    render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
    render.pixel_aspect_x, render.pixel_aspect_y = aspect_x, aspect_y


def camera_from_object(obj: bpy.types.Object, scene: bpy.types.Scene | None = None) -> Camera:
    """The OpenCV model of any perspective Blender camera, imported or placed by the user."""
    if obj is None or obj.type != "CAMERA":
        raise ValueError(f"'{getattr(obj, 'name', None)}' is not a camera")
    data = obj.data
    if data.type != "PERSP":
        raise ValueError(f"camera '{obj.name}' is {data.type.lower()}; MaskSplat needs a perspective camera")
    scene = scene or bpy.context.scene
    width, height, aspect_x, aspect_y = camera_resolution(obj, scene)
    ycor = aspect_y / aspect_x
    fit = data.sensor_fit
    if fit == "AUTO":
        fit = "HORIZONTAL" if width * aspect_x >= height * aspect_y else "VERTICAL"
        sensor = data.sensor_width
    else:
        sensor = data.sensor_width if fit == "HORIZONTAL" else data.sensor_height
    viewfac = width if fit == "HORIZONTAL" else ycor * height
    focal = data.lens * viewfac / sensor
    props = obj.masksplat
    world = np.array(obj.matrix_world, dtype=np.float64)
    rotation = world[:3, :3] / np.linalg.norm(world[:3, :3], axis=0)
    c2w = np.eye(4)
    c2w[:3, :3], c2w[:3, 3] = rotation, world[:3, 3]
    c2w = c2w @ BLENDER_TO_OPENCV
    return Camera(
        name=props.image_name.rsplit(".", 1)[0] if props.is_camera and props.image_name else obj.name,
        image_name=props.image_name if props.is_camera and props.image_name else obj.name,
        world_to_camera=np.linalg.inv(c2w),
        fx=focal,
        fy=focal / ycor,
        cx=width / 2.0 - data.shift_x * viewfac,
        cy=height / 2.0 + data.shift_y * viewfac / ycor,
        width=width,
        height=height,
    )
