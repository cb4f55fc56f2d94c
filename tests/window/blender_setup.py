"""Scenario set-up inside the real Blender window: install the extension zip, point the
backend at the checkout's .venv Python, clear the startup scene, dismiss the splash."""

from __future__ import annotations

import time

import bpy
import numpy as np

ADDON = "bl_ext.user_default.masksplat"


def install_addon(ui) -> None:
    args = ui.args

    def install():
        result = bpy.ops.extensions.package_install_files(
            filepath=args["zip"], repo="user_default", enable_on_install=True
        )
        prefs = bpy.context.preferences.addons[ADDON].preferences
        prefs.backend_python = args["backend_python"]
        prefs.device = "cpu"
        for obj in list(bpy.data.objects):
            bpy.data.objects.remove(obj)
        return result

    ui.check("extension installs from its zip", ui.main(install) == {"FINISHED"})
    x, y, w, h = ui.region_rect("VIEW_3D")
    ui.move(x + w // 2, y + h // 2)
    ui.key("Escape")  # the splash screen


def import_scene(ui, ply: str, cameras: str | None = None) -> str:
    """Import a splat (and its cameras) the way File > Import does; returns the object's name."""

    def load():
        window = bpy.context.window_manager.windows[0]
        area = next(a for a in window.screen.areas if a.type == "VIEW_3D")
        with bpy.context.temp_override(window=window, area=area):
            bpy.ops.masksplat.import_splats(filepath=ply)
            obj = bpy.context.active_object
            if cameras:
                bpy.ops.masksplat.import_cameras(filepath=cameras, assign_to_active=True)
            bpy.context.view_layer.objects.active = obj
            obj.select_set(True)
        return obj.name

    return ui.main(load)


def look_through(ui, camera: str) -> None:
    """Make `camera` the scene camera and look through it, the frame fitted to the view."""

    def view():
        window = bpy.context.window_manager.windows[0]
        area = next(a for a in window.screen.areas if a.type == "VIEW_3D")
        region = next(r for r in area.regions if r.type == "WINDOW")
        scene = bpy.context.scene
        scene.camera = bpy.data.objects[camera]
        with bpy.context.temp_override(window=window, area=area, region=region):
            area.spaces.active.region_3d.view_perspective = "CAMERA"
            bpy.ops.view3d.view_center_camera()

    ui.main(view)
    ui.idle(5)


def camera_frame(ui) -> list[tuple[float, float]]:
    """The scene camera's frame corners in region pixels, as the paint tool computes them."""

    def frame():
        from bpy_extras.view3d_utils import location_3d_to_region_2d

        window = bpy.context.window_manager.windows[0]
        area = next(a for a in window.screen.areas if a.type == "VIEW_3D")
        region = next(r for r in area.regions if r.type == "WINDOW")
        scene = bpy.context.scene
        cam = scene.camera
        corners = [cam.matrix_world @ v for v in cam.data.view_frame(scene=scene)]
        return [tuple(location_3d_to_region_2d(region, area.spaces.active.region_3d, c)) for c in corners]

    return ui.main(frame)


def set_preferences(ui, **values) -> None:
    """Set MaskSplat's add-on preferences (as the Preferences window would)."""

    def apply():
        prefs = bpy.context.preferences.addons[ADDON].preferences
        for key, value in values.items():
            setattr(prefs, key, value)

    ui.main(apply)


def camera_to_region(frame, uv, width: int, height: int):
    """Camera pixels [N, 2] (x right, y down) to region pixels (y up), through the camera
    frame's corners in the region (what the paint tool maps back the other way)."""
    frame = np.asarray(frame, dtype=np.float64)
    left, right = frame[:, 0].min(), frame[:, 0].max()
    bottom, top = frame[:, 1].min(), frame[:, 1].max()
    uv = np.atleast_2d(np.asarray(uv, dtype=np.float64))
    return np.stack(
        [left + uv[:, 0] / width * (right - left), top - uv[:, 1] / height * (top - bottom)], axis=1
    )


def running(idname: str) -> bool:
    """(Main thread, e.g. in a ui.wait predicate) an operator runs modally in the window now."""
    return idname in [op.bl_idname for op in bpy.context.window_manager.windows[0].modal_operators]


def view3d():
    """(Main thread) the 3D viewport's WINDOW region and its region_3d."""
    area = next(a for a in bpy.context.window_manager.windows[0].screen.areas if a.type == "VIEW_3D")
    return next(r for r in area.regions if r.type == "WINDOW"), area.spaces.active.region_3d


def quiet_overlays() -> None:
    """(Main thread) no grid, axes, cursor, origins, outlines, text or side regions over the
    splats: what the comparison sees is the splat display and the viewport's own background."""
    _, r3d = view3d()
    area = next(a for a in bpy.context.window_manager.windows[0].screen.areas if a.type == "VIEW_3D")
    overlay = area.spaces.active.overlay
    for name in ("show_floor", "show_axis_x", "show_axis_y", "show_axis_z", "show_cursor", "show_object_origins",
                 "show_outline_selected", "show_text", "show_stats", "show_extras", "show_relationship_lines"):  # fmt: skip
        if hasattr(overlay, name):
            setattr(overlay, name, False)
    space = area.spaces.active
    space.show_gizmo = False
    # The header, tool settings, toolbar and sidebar lie over the view (region overlap), and
    # the camera frame reaches under them.
    for name in ("show_region_header", "show_region_tool_header", "show_region_toolbar", "show_region_ui"):
        setattr(space, name, False)


def shading(kind: str) -> None:
    area = next(a for a in bpy.context.window_manager.windows[0].screen.areas if a.type == "VIEW_3D")
    area.spaces.active.shading.type = kind


def settled_grab(ui, timeout: float = 300.0):
    """The screen once two grabs in a row are the same (Material Preview compiles shaders
    for a while on a software GPU)."""
    deadline = time.monotonic() + timeout
    last = ui.grab()
    while True:
        ui.idle(3)
        now = ui.grab()
        if (now == last).all():
            return now
        if time.monotonic() > deadline:
            raise TimeoutError(f"the viewport did not settle within {timeout:g} s")
        last = now


def frame_crop(ui, width: int, height: int, samples: int = 3) -> np.ndarray:
    """The viewport inside the camera frame, resampled to the camera's pixels: uint8
    [height, width, 3], each camera pixel the mean of samples x samples bilinear taps."""
    screen = settled_grab(ui).astype(np.float64)
    x0, y0, _, _ = ui.region_rect("VIEW_3D")
    frame = np.asarray(camera_frame(ui))
    left, right = frame[:, 0].min() + x0, frame[:, 0].max() + x0
    bottom, top = frame[:, 1].min() + y0, frame[:, 1].max() + y0
    win_h = ui.main(lambda: bpy.context.window_manager.windows[0].height)
    offsets = (np.arange(samples) + 0.5) / samples
    u = (np.arange(width)[:, None] + offsets[None, :]).ravel() / width
    v = (np.arange(height)[:, None] + offsets[None, :]).ravel() / height
    xs = left + u * (right - left) - 0.5  # pixel centres sit at +0.5
    rows = win_h - (top - v * (top - bottom)) - 0.5  # window y (up) to screen rows (down)
    x, y = np.meshgrid(xs, rows)
    x0i, y0i = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0i)[..., None], (y - y0i)[..., None]
    h, w = screen.shape[:2]

    def at(yy, xx):
        return screen[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]

    value = ((1 - fx) * (1 - fy) * at(y0i, x0i) + fx * (1 - fy) * at(y0i, x0i + 1)
             + (1 - fx) * fy * at(y0i + 1, x0i) + fx * fy * at(y0i + 1, x0i + 1))  # fmt: skip
    value = value.reshape(height, samples, width, samples, 3).mean(axis=(1, 3))
    return np.clip(np.round(value), 0, 255).astype(np.uint8)


def camera_matrices(cam_name: str, width: int, height: int):
    """(Main thread) Blender's view and projection matrices of a camera at its resolution."""
    cam = bpy.data.objects[cam_name]
    depsgraph = bpy.context.evaluated_depsgraph_get()
    projection = cam.calc_matrix_camera(depsgraph, x=width, y=height, scale_x=1.0, scale_y=1.0)
    return cam.matrix_world.inverted(), projection
