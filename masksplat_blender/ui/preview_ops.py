"""Preview Splats: a true 3DGS render of the visible splats as the camera's background."""

from __future__ import annotations

import bpy
import numpy as np
from bpy.props import StringProperty

from ..client import BackendError, render_views
from ..scene.cameras import apply_camera_resolution, camera_from_object
from ..scene.selection import stack_gaussians, world_gaussians, world_sh
from ..scene.splat_object import is_splat_object
from .backend_ops import backend_client


def preview_image(cam_obj, rgb: np.ndarray) -> bpy.types.Image:
    """Put an RGB render (top row first, uint8) into the camera's preview image."""
    height, width = rgb.shape[:2]
    name = f"MaskSplat Preview {cam_obj.name}"
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


class MASKSPLAT_OT_preview_splats(bpy.types.Operator):
    """Render the visible splats from the camera (SH included) and show it as the camera's background"""

    bl_idname = "masksplat.preview_splats"
    bl_label = "Preview Splats"
    bl_options = {"REGISTER", "UNDO"}

    camera: StringProperty(name="Camera", description="Camera to preview (default: the active camera object or the scene camera)")

    def execute(self, context):
        scene = context.scene
        active = context.active_object
        cam = bpy.data.objects.get(self.camera) if self.camera else (active if active and active.type == "CAMERA" else scene.camera)
        if cam is None or cam.type != "CAMERA":
            self.report({"ERROR"}, "choose a camera to preview from")
            return {"CANCELLED"}
        splats = [o for o in scene.objects if is_splat_object(o) and o.visible_get()]
        if not splats:
            self.report({"ERROR"}, "no visible splat object to preview")
            return {"CANCELLED"}
        try:
            camera = camera_from_object(cam, scene)
            gaussians = [world_gaussians(o) for o in splats]
            shs = [world_sh(o) for o in splats]
            degree = max(s.shape[1] for s in shs)
            shs = [np.pad(s, ((0, 0), (0, degree - s.shape[1]), (0, 0))) for s in shs]
            arrays = stack_gaussians(gaussians)
            ((rgb, _),) = render_views(backend_client(context), arrays, np.concatenate(shs), [camera])
        except (ValueError, BackendError) as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        image = preview_image(cam, rgb)
        data = cam.data
        background = next((bg for bg in data.background_images if bg.image == image), None) or data.background_images.new()
        background.image, background.alpha, background.display_depth = image, 1.0, "FRONT"
        data.show_background_images = True
        apply_camera_resolution(scene, cam)
        self.report({"INFO"}, f"Preview of {len(splats)} splat object(s) from '{cam.name}'")
        return {"FINISHED"}


CLASSES = (MASKSPLAT_OT_preview_splats,)
