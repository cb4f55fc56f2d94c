"""Add-on preferences: which Python runs the backend, on which device, and how views and previews behave."""

from __future__ import annotations

import math

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..scene.settings import ADDON_PACKAGE, addon_preferences


class MaskSplatPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    backend_python: StringProperty(
        name="Backend Python",
        subtype="FILE_PATH",
        description="A Python with torch (and gsplat for CUDA) that runs MaskSplat's backend. "
        "Empty: MaskSplat's own backend environment, else Blender's Python if it has torch",
    )
    device: EnumProperty(
        name="Device",
        items=(
            ("auto", "Automatic", "gsplat on CUDA when it is available, else the CPU rasterizer"),
            ("cpu", "CPU", "MaskSplat's own CPU rasterizer"),
            ("cuda", "CUDA", "gsplat on an NVIDIA GPU"),
        ),
        default="auto",
    )
    view_camera_size: IntProperty(
        name="View Camera Size",
        default=1024,
        min=0,
        max=8192,
        subtype="PIXEL",
        description="Longest side, in pixels, of the camera Paint Mask makes from a viewport view "
        "(0: the viewport's own size). Smaller views paint, preview and compute faster",
    )
    preview_auto_refresh: BoolProperty(
        name="Refresh Previews",
        default=True,
        description="Render the viewed camera's preview again when the splats or their selection change "
        "(off: the panel says the preview is out of date)",
    )
    resort_angle: FloatProperty(
        name="Re-sort Angle",
        subtype="ANGLE",
        default=math.radians(2.0),
        min=math.radians(0.1),
        max=math.radians(45.0),
        description="How far a view turns before the splat display sorts the Gaussians again (back to front). "
        "Smaller blends more exactly while you orbit; larger does less work on big splats",
    )

    feature_model: StringProperty(
        name="Feature Model",
        default="facebook/dinov2-small",
        description="DINOv2 weights for Transfer Labels: a local folder (config.json + model.safetensors) or a model id "
        "such as facebook/dinov2-small found in the Model Cache. Nothing is downloaded unless you press Download Model",
    )
    feature_cache: StringProperty(
        name="Model Cache",
        subtype="DIR_PATH",
        description="A Hugging Face cache folder to look model ids up in (empty: the default cache)",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "backend_python")
        layout.prop(self, "device")
        row = layout.row()
        row.operator("masksplat.install_backend", text="Install Backend (CPU)").flavour = "cpu"
        row.operator("masksplat.install_backend", text="Install Backend (CUDA)").flavour = "cuda"
        row.operator("masksplat.check_backend")
        row = layout.row()
        row.prop(self, "view_camera_size")
        row.prop(self, "preview_auto_refresh")
        layout.prop(self, "resort_angle")
        box = layout.box()
        box.label(text="Label transfer (DINOv2)")
        box.prop(self, "feature_model")
        box.prop(self, "feature_cache")
        box.operator("masksplat.download_model", icon="IMPORT")


CLASSES = (MaskSplatPreferences,)


def get_preferences(context=None) -> MaskSplatPreferences | None:
    return addon_preferences(context)
