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
        col = layout.column(align=True)
        col.operator("masksplat.preview_splats", icon="RENDER_STILL")
        row = col.row(align=True)
        row.operator("masksplat.paint_mask", text="Paint", icon="BRUSH_DATA").tool = "BRUSH"
        row.operator("masksplat.paint_mask", text="Lasso", icon="MOD_CURVE").tool = "LASSO"
        col.operator("masksplat.load_masks", icon="IMAGE_DATA")
        col.operator("masksplat.compute_selection", icon="SELECT_SET")
        col = layout.column(align=True)
        col.prop(obj.masksplat, "beta", slider=True)
        col.prop(obj.masksplat, "background_bias", slider=True)
        col.prop(obj.masksplat, "edge_band")
        col.prop(obj.masksplat, "fill_unseen")
        row = layout.row(align=True)
        row.operator("masksplat.select_by_votes", text="Select").action = "SELECT"
        row.operator("masksplat.select_by_votes", text="None").action = "DESELECT"
        row.operator("masksplat.select_by_votes", text="Invert").action = "INVERT"
        row = layout.row(align=True)
        row.operator("masksplat.delete_selected", text="Delete", icon="TRASH")
        row.operator("masksplat.separate_selected", text="Separate", icon="MOD_EXPLODE")
        draw_labels(layout, obj)
        layout.operator("masksplat.prune_splats", icon="TRASH")
        if obj.masksplat.prune_report:
            import json

            report = json.loads(obj.masksplat.prune_report)
            box = layout.box()
            box.label(text=f"Last prune: {report['removed']:,} removed ({100 * report['fraction_removed']:.1f}%)")
            psnr = report["mean_psnr_used_views"]
            box.label(text=f"Used views: {'identical' if psnr is None else f'{psnr:.1f} dB'}, max diff {report['max_pixel_difference']:.4f}")
        layout.operator("masksplat.export_splats", icon="EXPORT")


class MASKSPLAT_UL_labels(bpy.types.UIList):
    """The label set: id, colour and name of each label."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.label(text=str(index))
        row.prop(item, "color", text="")
        row.prop(item, "name", text="", emboss=False)


def draw_labels(layout, obj) -> None:
    """Several labels: the label set, where label maps come from, and what to do with them."""
    box = layout.box()
    box.label(text="Labels", icon="COLOR")
    if len(obj.masksplat.labels):
        row = box.row()
        row.template_list("MASKSPLAT_UL_labels", "", obj.masksplat, "labels", obj.masksplat, "active_label", rows=3)
        col = row.column(align=True)
        col.operator("masksplat.add_label", text="", icon="ADD")
        col.operator("masksplat.remove_label", text="", icon="REMOVE")
    else:
        box.operator("masksplat.add_label", icon="ADD")
    col = box.column(align=True)
    row = col.row(align=True)
    for tool, text, icon in (("BRUSH", "Paint Label", "BRUSH_DATA"), ("LASSO", "Lasso", "MOD_CURVE")):
        op = row.operator("masksplat.paint_mask", text=text, icon=icon)
        op.tool, op.target = tool, "LABELS"
    col.operator("masksplat.load_label_maps", icon="IMAGE_DATA")
    col.operator("masksplat.transfer_labels", icon="SHADERFX")
    col.operator("masksplat.compute_labels", icon="GROUP_VERTEX")
    row = box.row(align=True)
    row.operator("masksplat.select_label", text="Select Label").action = "SET"
    row.operator("masksplat.select_label", text="", icon="ADD").action = "ADD"
    row.operator("masksplat.select_label", text="", icon="REMOVE").action = "REMOVE"
    box.prop(obj.masksplat, "show_labels")


CLASSES = (MASKSPLAT_UL_labels, MASKSPLAT_PT_main)
