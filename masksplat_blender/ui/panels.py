"""The MaskSplat sidebar panel in the 3D viewport."""

from __future__ import annotations

import bpy


class MASKSPLAT_PT_main(bpy.types.Panel):
    bl_label = "MaskSplat"
    bl_idname = "MASKSPLAT_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "MaskSplat"

    def draw(self, context):
        layout = self.layout
        obj = context.active_object
        col = layout.column(align=True)
        col.operator("masksplat.import_splats", icon="IMPORT")
        col.operator("masksplat.import_cameras", icon="OUTLINER_OB_CAMERA")
        if obj is None or not obj.masksplat.is_splat:
            layout.label(text="Import a splat to start", icon="INFO")
            return
        box = layout.box()
        box.label(text=obj.name, icon="POINTCLOUD_DATA")
        box.label(text=f"{len(obj.data.vertices):,} Gaussians, SH degree {obj.masksplat.sh_degree}")
        box.prop(obj.masksplat, "camera_collection")
        layout.operator("masksplat.export_splats", icon="EXPORT")


CLASSES = (MASKSPLAT_PT_main,)
