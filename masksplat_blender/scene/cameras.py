"""Blender cameras <-> the OpenCV camera model, exactly, both ways.

Blender's view plane (BKE_camera_params_compute_viewplane) in pixels: with sensor fit
resolved to horizontal or vertical, `viewfac` = W or ycor * H (ycor = pixel aspect y/x),
focal f = lens * viewfac / sensor, and the shift moves the plane by shift * viewfac.
In OpenCV terms fx = f, fy = f / ycor, cx = W/2 - shift_x * viewfac,
cy = H/2 + shift_y * viewfac / ycor.

Blender keeps lens, shift, pixel aspect and matrix_world in single precision. So that an
imported camera comes back bit for bit, its OpenCV values are also kept in double precision
(an ID property) and used whenever the Blender camera still agrees with them to single
precision; a camera the user has since moved, or whose lens or shift was changed, is read
from Blender's own values. Nothing here registers anything: the `Object.masksplat` property
group is used when the add-on has registered it, ID properties alone otherwise.
"""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from ..core.cameras import Camera, by_stem, image_stem
from ..core.views import BLENDER_TO_OPENCV, camera_from_view

CAMERA_COLLECTION_SUFFIX = " Cameras"
SENSOR_WIDTH = 36.0
EXACT_KEY = "masksplat_camera"  # ID property: the OpenCV camera in double precision
INTRINSIC_KEYS = ("fx", "fy", "cx", "cy")
# Agreement between single-precision Blender values and the stored doubles.
INTRINSICS_RTOL = 1e-5  # of the focal length, and of the image size for cx, cy
POSE_TOL = 1e-5  # rotation entries; translation relative to max(1, its size)


def _pixel_aspect(fx: float, fy: float) -> tuple[float, float]:
    """Blender pixel aspect (both >= 1) giving ycor = aspect_y / aspect_x = fx / fy."""
    return (1.0, fx / fy) if fx >= fy else (fy / fx, 1.0)


def _group(obj):
    """The registered `Object.masksplat` property group, or None without the add-on."""
    return getattr(obj, "masksplat", None)


def store_intrinsics(obj: bpy.types.Object, cam: Camera) -> None:
    """Remember on `obj` the camera it was made from: image name, size and intrinsics (and the exact pose)."""
    obj[EXACT_KEY] = {
        "image_name": cam.image_name,
        "width": int(cam.width),
        "height": int(cam.height),
        **{key: float(getattr(cam, key)) for key in INTRINSIC_KEYS},
        "world_to_camera": [float(v) for v in np.asarray(cam.world_to_camera, dtype=np.float64).ravel()],
    }
    props = _group(obj)
    if props is not None:
        props.is_camera = True
        props.image_name = cam.image_name
        props.width, props.height = cam.width, cam.height
        props.fx, props.fy, props.cx, props.cy = cam.fx, cam.fy, cam.cx, cam.cy


def _exact(obj) -> dict | None:
    value = obj.get(EXACT_KEY) if hasattr(obj, "get") else None
    return value.to_dict() if hasattr(value, "to_dict") else value


def stored_intrinsics(obj: bpy.types.Object) -> dict | None:
    """{image_name, width, height, fx, fy, cx, cy} this camera remembers, or None for a plain Blender camera.

    The property group (what the UI shows and edits) wins; its single-precision values are
    replaced by the stored doubles where they agree, so an untouched camera reads back exactly.
    """
    exact = _exact(obj)
    props = _group(obj)
    if props is not None and props.is_camera:
        values = {"image_name": props.image_name, "width": props.width, "height": props.height}
        values.update({key: float(getattr(props, key)) for key in INTRINSIC_KEYS})
        if exact and (exact.get("width"), exact.get("height")) == (values["width"], values["height"]):
            scale = {"fx": values["fx"], "fy": values["fy"], "cx": values["width"], "cy": values["height"]}
            for key in INTRINSIC_KEYS:
                if abs(exact[key] - values[key]) <= INTRINSICS_RTOL * scale[key]:
                    values[key] = float(exact[key])
        return values
    if exact and all(key in exact for key in ("image_name", "width", "height", *INTRINSIC_KEYS)):
        return {key: exact[key] for key in ("image_name", "width", "height", *INTRINSIC_KEYS)}
    return None


def camera_object_from_camera(cam: Camera, collection: bpy.types.Collection, name: str | None = None) -> bpy.types.Object:
    """A Blender camera that sees exactly what `cam` sees, remembering its own intrinsics.

    Horizontal sensor fit, a 36 mm sensor, the lens from fx, shift for the principal point;
    fx != fy needs the scene's pixel aspect, which `apply_camera_resolution` sets.
    """
    data = bpy.data.cameras.new(name or cam.name)
    data.type = "PERSP"
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = SENSOR_WIDTH
    data.lens = cam.fx * SENSOR_WIDTH / cam.width
    ycor = cam.fx / cam.fy
    data.shift_x = (cam.width / 2.0 - cam.cx) / cam.width
    data.shift_y = (cam.cy - cam.height / 2.0) * ycor / cam.width
    center = cam.center()
    depth = float(np.linalg.norm(center)) if np.isfinite(center).all() else 100.0
    data.clip_start = 0.01
    data.clip_end = max(1000.0, 10.0 * depth)
    data.display_size = 0.2
    obj = bpy.data.objects.new(name or cam.name, data)
    c2w = cam.camera_to_world() @ BLENDER_TO_OPENCV
    obj.matrix_world = Matrix(c2w.tolist())
    store_intrinsics(obj, cam)
    collection.objects.link(obj)
    return obj


def _scene_resolution(scene: bpy.types.Scene) -> tuple[int, int]:
    """The render size in pixels, as Blender computes it (integer percentage scaling)."""
    render = scene.render
    return (
        max(1, render.resolution_x * render.resolution_percentage // 100),
        max(1, render.resolution_y * render.resolution_percentage // 100),
    )


def camera_resolution(obj: bpy.types.Object, scene: bpy.types.Scene) -> tuple[int, int, float, float]:
    """Width, height and pixel aspect (x, y) this camera renders with."""
    stored = stored_intrinsics(obj)
    if stored is not None:
        return int(stored["width"]), int(stored["height"]), *_pixel_aspect(stored["fx"], stored["fy"])
    width, height = _scene_resolution(scene)
    return width, height, scene.render.pixel_aspect_x, scene.render.pixel_aspect_y


def apply_camera_resolution(scene: bpy.types.Scene, obj: bpy.types.Object) -> None:
    """Make the scene render at this camera's own resolution and pixel aspect."""
    width, height, aspect_x, aspect_y = camera_resolution(obj, scene)
    render = scene.render
    render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
    render.pixel_aspect_x, render.pixel_aspect_y = aspect_x, aspect_y


def _blender_intrinsics(data, width: int, height: int, aspect_x: float, aspect_y: float) -> tuple[float, ...]:
    """fx, fy, cx, cy of a perspective camera rendering `width` x `height` at this pixel aspect."""
    ycor = aspect_y / aspect_x
    fit = data.sensor_fit
    if fit == "AUTO":
        fit = "HORIZONTAL" if width * aspect_x >= height * aspect_y else "VERTICAL"
        sensor = data.sensor_width
    else:
        sensor = data.sensor_width if fit == "HORIZONTAL" else data.sensor_height
    viewfac = width if fit == "HORIZONTAL" else ycor * height
    focal = data.lens * viewfac / sensor
    return (
        focal,
        focal / ycor,
        width / 2.0 - data.shift_x * viewfac,
        height / 2.0 + data.shift_y * viewfac / ycor,
    )


def camera_stem(obj: bpy.types.Object) -> str:
    """The file stem a Blender camera's masks, label maps and renders go by (core.cameras.image_stem):
    its image's, for an imported camera; its object name, for a camera placed in Blender."""
    stored = stored_intrinsics(obj)
    image_name = stored["image_name"] if stored is not None else ""
    return image_stem(image_name) or obj.name


def cameras_by_stem(objects) -> dict[str, bpy.types.Object]:
    """{file stem: camera object}; two cameras with one stem are refused, naming both."""
    return by_stem(objects, camera_stem, lambda obj: obj.name)


def camera_from_object(obj: bpy.types.Object, scene: bpy.types.Scene | None = None) -> Camera:
    """The OpenCV model of any perspective Blender camera, imported or placed by the user.

    Size and pixel aspect are the camera's own when it remembers them (imported cameras),
    else the scene's render settings. Object scale is ignored.
    """
    if obj is None or obj.type != "CAMERA":
        raise ValueError(f"'{getattr(obj, 'name', None)}' is not a camera")
    data = obj.data
    if data.type != "PERSP":
        raise ValueError(f"camera '{obj.name}' is {data.type.lower()}; MaskSplat needs a perspective camera")
    scene = scene or bpy.context.scene
    stored = stored_intrinsics(obj)
    width, height, aspect_x, aspect_y = camera_resolution(obj, scene)
    if stored is None and (scene.render.resolution_x, scene.render.resolution_y) != (width, height):
        # Blender's view plane uses the full resolution's shape; map it onto the rendered pixels.
        full_w, full_h = scene.render.resolution_x, scene.render.resolution_y
        fx, fy, cx, cy = _blender_intrinsics(data, full_w, full_h, aspect_x, aspect_y)
        sx, sy = width / full_w, height / full_h
        intrinsics = [fx * sx, fy * sy, cx * sx, cy * sy]
    else:
        intrinsics = list(_blender_intrinsics(data, width, height, aspect_x, aspect_y))
    if stored is not None:  # snap to the remembered doubles where Blender's floats still agree
        scale = (stored["fx"], stored["fy"], width, height)
        for i, key in enumerate(INTRINSIC_KEYS):
            if abs(intrinsics[i] - stored[key]) <= INTRINSICS_RTOL * scale[i]:
                intrinsics[i] = float(stored[key])

    world = np.array(obj.matrix_world, dtype=np.float64)
    rotation = world[:3, :3] / np.linalg.norm(world[:3, :3], axis=0)
    c2w = np.eye(4)
    c2w[:3, :3], c2w[:3, 3] = rotation, world[:3, 3]
    w2c = np.linalg.inv(c2w @ BLENDER_TO_OPENCV)
    exact = _exact(obj)
    if stored is not None and exact and len(exact.get("world_to_camera", ())) == 16:
        remembered = np.array(exact["world_to_camera"], dtype=np.float64).reshape(4, 4)
        t_scale = max(1.0, float(np.abs(remembered[:3, 3]).max()))
        if (
            np.abs(remembered[:3, :3] - w2c[:3, :3]).max() <= POSE_TOL
            and np.abs(remembered[:3, 3] - w2c[:3, 3]).max() <= POSE_TOL * t_scale
        ):
            w2c = remembered

    return Camera(
        name=camera_stem(obj),
        image_name=stored["image_name"] if stored is not None and stored["image_name"] else obj.name,
        world_to_camera=w2c,
        fx=intrinsics[0],
        fy=intrinsics[1],
        cx=intrinsics[2],
        cy=intrinsics[3],
        width=width,
        height=height,
    )


def named_collection(scene: bpy.types.Scene, name: str) -> bpy.types.Collection:
    """The collection called `name`, made and linked under the scene's own when missing."""
    collection = bpy.data.collections.get(name)
    if collection is None:
        collection = bpy.data.collections.new(name)
        scene.collection.children.link(collection)
    return collection


def ensure_camera_collection(obj: bpy.types.Object, scene: bpy.types.Scene) -> bpy.types.Collection:
    """The splat object's camera collection, made when it has none ("<object> Cameras").

    Without one every scene camera counted as the object's; the cameras that already carry
    a mask join the new collection, so Compute Selection keeps using them.
    """
    collection = obj.masksplat.camera_collection
    if collection is not None:
        return collection
    collection = named_collection(scene, obj.name + CAMERA_COLLECTION_SUFFIX)
    for cam in scene.objects:
        if cam.type == "CAMERA" and cam.masksplat.mask is not None and cam.name not in collection.all_objects:
            collection.objects.link(cam)
    obj.masksplat.camera_collection = collection
    return collection


def next_view_name(obj: bpy.types.Object) -> str:
    """`<object>_view_<n>`: the first number no object uses yet."""
    n = 1
    while f"{obj.name}_view_{n:03d}" in bpy.data.objects or f"{obj.name}_view_{n:03d}" in bpy.data.cameras:
        n += 1
    return f"{obj.name}_view_{n:03d}"


def add_camera_for(obj: bpy.types.Object, scene: bpy.types.Scene, cam: Camera) -> bpy.types.Object:
    """A real Blender camera seeing what `cam` sees, named after the splat object and a
    number, in its camera collection (made if missing)."""
    collection = ensure_camera_collection(obj, scene)
    name = next_view_name(obj)
    cam = Camera(name=name, image_name=f"{name}.png", world_to_camera=cam.world_to_camera,
                 fx=cam.fx, fy=cam.fy, cx=cam.cx, cy=cam.cy, width=cam.width, height=cam.height)  # fmt: skip
    return camera_object_from_camera(cam, collection, name)


def add_view_camera(obj, scene, view_matrix, projection, width: int, height: int, max_size: int = 0) -> bpy.types.Object:
    """A camera of a viewport view (Blender's view and perspective projection matrices of a
    `width` x `height` region, scaled to at most `max_size` pixels) for splat object `obj`."""
    return add_camera_for(obj, scene, camera_from_view("view", view_matrix, projection, width, height, max_size))
