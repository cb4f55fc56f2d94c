"""Scenario set-up inside the real Blender window: install the extension zip, point the
backend at the checkout's .venv Python, clear the startup scene, dismiss the splash."""

from __future__ import annotations

import bpy

ADDON = "bl_ext.user_default.masksplat"


def install_addon(ui) -> None:
    args = ui.args

    def install():
        result = bpy.ops.extensions.package_install_files(filepath=args["zip"], repo="user_default", enable_on_install=True)
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
    import numpy as np

    frame = np.asarray(frame, dtype=np.float64)
    left, right = frame[:, 0].min(), frame[:, 0].max()
    bottom, top = frame[:, 1].min(), frame[:, 1].max()
    uv = np.atleast_2d(np.asarray(uv, dtype=np.float64))
    return np.stack([left + uv[:, 0] / width * (right - left), top - uv[:, 1] / height * (top - bottom)], axis=1)


def running(idname: str) -> bool:
    """(Main thread, e.g. in a ui.wait predicate) an operator runs modally in the window now."""
    return idname in [op.bl_idname for op in bpy.context.window_manager.windows[0].modal_operators]


def view3d():
    """(Main thread) the 3D viewport's WINDOW region and its region_3d."""
    area = next(a for a in bpy.context.window_manager.windows[0].screen.areas if a.type == "VIEW_3D")
    return next(r for r in area.regions if r.type == "WINDOW"), area.spaces.active.region_3d
