"""Preview Splats: a true 3DGS render of the visible splats as the camera's background.

The preview shows the selection tinted (core/tint), and it follows the scene: when a
splat object's geometry or selection, or the camera, changes (Beta, Select, Grow,
Delete, Undo, Blender's own tools), the preview of the camera a viewport looks through
is rendered again once things settle, unless that is turned off in the preferences;
then, or when the render fails, the panel says the preview is out of date.
"""

from __future__ import annotations

import hashlib
import time

import bpy
import numpy as np
from bpy.props import StringProperty

from ..client import BackendError, render_views
from ..scene.cameras import apply_camera_resolution, camera_from_object
from ..scene.selection import preview_gaussians, sync_shown_selection, vertex_selection, visible_splats
from ..scene.splat_object import is_splat_object
from .backend_ops import backend_client
from .common import Reported, add_handlers, remove_handlers
from .preferences import get_preferences

PREFIX = "MaskSplat Preview "
SETTLE = 0.3  # seconds without changes before a preview is rendered again
_SHOWN: dict[str, str] = {}  # preview image name -> the scene state it shows (kept outside undo)
_STALE: dict[str, str] = {}  # preview image name -> why it is out of date
_PENDING = {"since": 0.0, "objects": set()}  # last change, splat objects whose geometry changed


def preview_image(cam_obj, rgb: np.ndarray) -> bpy.types.Image:
    """Put an RGB render (top row first, uint8) into the camera's preview image."""
    height, width = rgb.shape[:2]
    name = PREFIX + cam_obj.name
    image = bpy.data.images.get(name)
    if image is None or tuple(image.size) != (width, height):
        if image is not None:
            bpy.data.images.remove(image)
        image = bpy.data.images.new(name, width, height, alpha=False)
    rgba = np.ones((height, width, 4), np.float32)
    rgba[:, :, :3] = rgb[::-1].astype(np.float32) / 255.0
    image.pixels.foreach_set(rgba.ravel())
    image.update()
    return image


def camera_preview(cam_obj) -> bpy.types.Image | None:
    """The camera's preview image, when it shows one."""
    data = cam_obj.data
    return next((bg.image for bg in data.background_images if bg.image and bg.image.name.startswith(PREFIX)), None)


def preview_state(scene, cam_obj) -> str:
    """A fingerprint of what a preview from `cam_obj` shows: the camera, and each visible
    splat's transform, positions and (where shown) selection."""
    digest = hashlib.blake2b(digest_size=16)
    cam = camera_from_object(cam_obj, scene)
    digest.update(np.round(cam.world_to_camera, 9).tobytes() + repr((cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height)).encode())
    for obj in visible_splats(scene):
        mesh = obj.data
        positions = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.attributes["position"].data.foreach_get("vector", positions)
        digest.update(obj.name.encode() + np.array(obj.matrix_world, np.float64).tobytes() + positions.tobytes())
        if obj.masksplat.show_selection:
            digest.update(np.packbits(vertex_selection(obj)).tobytes())
    return digest.hexdigest()


def render_preview(context, cam_obj, backend=None) -> bpy.types.Image:
    """Render the visible splats from `cam_obj` and show the render as its background.
    Raises ValueError or BackendError (nothing changed then)."""
    scene = context.scene
    camera = camera_from_object(cam_obj, scene)
    arrays, sh = preview_gaussians(scene)
    state = preview_state(scene, cam_obj)
    ((rgb, _),) = render_views(backend or backend_client(context), arrays, sh, [camera])
    image = preview_image(cam_obj, rgb)
    data = cam_obj.data
    background = next((bg for bg in data.background_images if bg.image == image), None) or data.background_images.new()
    background.image, background.alpha, background.display_depth = image, 1.0, "FRONT"
    data.show_background_images = True
    _SHOWN[image.name] = state
    _STALE.pop(image.name, None)
    return image


def is_current(scene, cam_obj) -> bool:
    """The camera's preview shows the scene as it is now (its splats, selection and pose)."""
    image = camera_preview(cam_obj)
    return image is not None and _SHOWN.get(image.name) == preview_state(scene, cam_obj)


def stale_reason(cam_obj) -> str | None:
    """Why the camera's preview is out of date (None when it is current or there is none)."""
    image = camera_preview(cam_obj)
    return _STALE.get(image.name) if image is not None else None


def _viewed_cameras(context) -> list:
    """Cameras some 3D viewport looks through that show a preview."""
    found = []
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            space = area.spaces.active if area.type == "VIEW_3D" else None
            if space is None or space.region_3d is None or space.region_3d.view_perspective != "CAMERA":
                continue
            cam = space.camera if space.use_local_camera and space.camera else window.scene.camera
            if cam is not None and cam not in found and camera_preview(cam) is not None:
                found.append(cam)
    return found


def _busy(context) -> bool:
    """A MaskSplat modal operator (painting, computing) is running: the backend and the
    preview are its own until it ends."""
    return any(op.bl_idname.startswith("MASKSPLAT_OT") for window in context.window_manager.windows
               for op in getattr(window, "modal_operators", ()))  # fmt: skip


def refresh_previews(context) -> list[str]:
    """Render again every viewed preview whose scene changed; returns the camera names rendered.
    Previews that cannot be rendered now (turned off, no backend) are marked out of date."""
    prefs = get_preferences(context)
    rendered = []
    for cam in _viewed_cameras(context):
        image = camera_preview(cam)
        if is_current(context.scene, cam):
            _STALE.pop(image.name, None)
            continue
        if prefs is not None and not prefs.preview_auto_refresh:
            _STALE[image.name] = "the scene changed since this preview"
            continue
        try:
            render_preview(context, cam)
            rendered.append(cam.name)
        except (ValueError, BackendError) as err:
            _STALE[image.name] = str(err)
    return rendered


def _settled_refresh():
    """Timer: once no change came for SETTLE seconds and nothing modal runs, refresh."""
    wait = _PENDING["since"] + SETTLE - time.monotonic()
    context = bpy.context
    if wait > 0:
        return wait
    if context.window_manager is None or _busy(context):
        return SETTLE
    for name in _PENDING["objects"]:
        obj = bpy.data.objects.get(name)
        if obj is not None:
            sync_shown_selection(obj)  # after Blender's own selection tools: the tint follows
    _PENDING["objects"].clear()
    refresh_previews(context)
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()
    return None


def request_refresh(changed=()) -> None:
    """Something a preview may show changed (`changed`: names of splat objects whose
    geometry changed): refresh once it settles."""
    _PENDING["since"] = time.monotonic()
    _PENDING["objects"].update(changed)
    if not bpy.app.background and not bpy.app.timers.is_registered(_settled_refresh):
        bpy.app.timers.register(_settled_refresh, first_interval=SETTLE)


@bpy.app.handlers.persistent
def _on_depsgraph_update(scene, depsgraph):
    relevant, changed = False, set()
    for update in depsgraph.updates:
        obj = update.id.original if isinstance(update.id, bpy.types.Object) else None
        if obj is None:
            continue
        if is_splat_object(obj) and update.is_updated_geometry:
            changed.add(obj.name)
        relevant = relevant or is_splat_object(obj) or obj.type == "CAMERA"
    if relevant or depsgraph.id_type_updated("SCENE"):
        request_refresh(changed)


@bpy.app.handlers.persistent
def _on_undo(scene, *args):
    request_refresh()


@bpy.app.handlers.persistent
def _on_load(*args):
    _SHOWN.clear()
    _STALE.clear()
    _PENDING["objects"].clear()


HANDLERS = (("depsgraph_update_post", _on_depsgraph_update), ("undo_post", _on_undo), ("redo_post", _on_undo), ("load_post", _on_load))


class MASKSPLAT_OT_preview_splats(Reported, bpy.types.Operator):
    """Render the visible splats from the camera (SH included, the selection tinted) and show it as the camera's background"""

    bl_idname = "masksplat.preview_splats"
    bl_label = "Preview Splats"
    bl_options = {"REGISTER", "UNDO"}

    camera: StringProperty(name="Camera", description="Camera to preview (default: the active camera object or the scene camera)")

    def run(self, context) -> str:
        scene = context.scene
        active = context.active_object
        cam = bpy.data.objects.get(self.camera) if self.camera else (active if active and active.type == "CAMERA" else scene.camera)
        if cam is None or cam.type != "CAMERA":
            raise ValueError("choose a camera to preview from")
        render_preview(context, cam)
        apply_camera_resolution(scene, cam)
        return f"Preview of {len(visible_splats(scene))} splat object(s) from '{cam.name}'"


CLASSES = (MASKSPLAT_OT_preview_splats,)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    add_handlers(HANDLERS)


def unregister() -> None:
    remove_handlers(HANDLERS)
    if bpy.app.timers.is_registered(_settled_refresh):
        bpy.app.timers.unregister(_settled_refresh)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
