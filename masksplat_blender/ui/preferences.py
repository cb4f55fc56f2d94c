"""Add-on preferences: which Python runs the backend, and on which device."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty

# The extension's package name (bl_ext.<repo>.masksplat) is what Blender keys preferences by.
ADDON_PACKAGE = __package__.rsplit(".", 1)[0]


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

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "backend_python")
        layout.prop(self, "device")
        row = layout.row()
        row.operator("masksplat.install_backend", text="Install Backend (CPU)").flavour = "cpu"
        row.operator("masksplat.install_backend", text="Install Backend (CUDA)").flavour = "cuda"
        row.operator("masksplat.check_backend")


CLASSES = (MaskSplatPreferences,)


def get_preferences(context=None) -> MaskSplatPreferences | None:
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon else None
