"""The MaskSplat sidebar panel in the 3D viewport: a parent panel (import, the object) and
collapsible sub-panels (Masks, Selection, Labels, Prune, Export), as Blender's own are."""

from __future__ import annotations

import json

import bpy

from ..scene.selection import has_votes, selected_count
from ..scene.splat_object import is_splat_object
from .common import ActiveSplat
from .preview_ops import stale_reason
from .selection_ops import draw_selection_tools


class _Sidebar:
    """Where MaskSplat's panels are: the 3D viewport's sidebar, its own tab."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "MaskSplat"


class MASKSPLAT_PT_main(_Sidebar, bpy.types.Panel):
    bl_label = "MaskSplat"
    bl_idname = "MASKSPLAT_PT_main"

    def draw(self, context):
        layout = self.layout
        obj = context.active_object
        col = layout.column(align=True)
        col.operator("masksplat.import_splats", icon="IMPORT")
        col.operator("masksplat.import_cameras", icon="OUTLINER_OB_CAMERA")
        if not is_splat_object(obj):
            layout.label(text="Import a splat to start", icon="INFO")
            return
        box = layout.box()
        box.label(text=obj.name, icon="POINTCLOUD_DATA")
        box.label(text=f"{len(obj.data.vertices):,} Gaussians, SH degree {obj.masksplat.sh_degree}")
        box.prop(obj.masksplat, "camera_collection")


class _SplatSubPanel(_Sidebar, ActiveSplat):
    """A collapsible section of the MaskSplat panel, about the active splat object: it defines
    `draw_splat(layout, context, obj)`."""

    bl_parent_id = MASKSPLAT_PT_main.bl_idname

    def draw(self, context):
        self.draw_splat(self.layout, context, context.active_object)


class MASKSPLAT_PT_display(_SplatSubPanel, bpy.types.Panel):
    """How the splat shows in the viewport: as Gaussians (the splat display) or as points."""

    bl_label = "Display"
    bl_idname = "MASKSPLAT_PT_display"

    def draw(self, context):
        layout = self.layout
        props = context.active_object.masksplat
        layout.prop(props, "show_splats")
        col = layout.column(align=True)
        col.active = props.show_splats
        col.prop(props, "splat_scale", slider=True)
        row = col.row()
        row.active = props.show_splats and props.sh_degree > 0
        row.prop(props, "view_dependent")


class MASKSPLAT_PT_masks(_SplatSubPanel, bpy.types.Panel):
    """Views and their masks: preview, paint (from any view), load, compute."""

    bl_label = "Masks"
    bl_idname = "MASKSPLAT_PT_masks"

    def draw_splat(self, layout, context, obj):
        col = layout.column(align=True)
        col.operator("masksplat.preview_splats", icon="RENDER_STILL")
        cam = context.scene.camera
        reason = stale_reason(cam) if cam is not None else None
        if reason:
            col.label(text=f"Preview out of date: {reason}", icon="ERROR")
        row = col.row(align=True)
        row.operator("masksplat.paint_mask", text="Paint", icon="BRUSH_DATA").tool = "BRUSH"
        row.operator("masksplat.paint_mask", text="Lasso", icon="MOD_CURVE").tool = "LASSO"
        col.operator("masksplat.load_masks", icon="IMAGE_DATA")
        col.operator("masksplat.compute_selection", icon="SELECT_SET")
        col = layout.column(align=True)
        col.prop(obj.masksplat, "edge_band")
        col.prop(obj.masksplat, "fill_unseen")


class MASKSPLAT_PT_selection(_SplatSubPanel, bpy.types.Panel):
    """The selection: how many, the vote sliders, the tools, and what to do with it."""

    bl_label = "Selection"
    bl_idname = "MASKSPLAT_PT_selection"

    def draw_splat(self, layout, context, obj):
        row = layout.row()
        row.label(text=f"{selected_count(obj):,} of {len(obj.data.vertices):,} selected", icon="RESTRICT_SELECT_OFF")
        row.prop(obj.masksplat, "show_selection", text="", icon="HIDE_OFF" if obj.masksplat.show_selection else "HIDE_ON")
        col = layout.column(align=True)
        col.active = has_votes(obj)
        col.prop(obj.masksplat, "beta", slider=True)
        col.prop(obj.masksplat, "background_bias", slider=True)
        row = layout.row(align=True)
        row.operator("masksplat.select_by_votes", text="Select").action = "SELECT"
        row.operator("masksplat.select_by_votes", text="None").action = "DESELECT"
        row.operator("masksplat.select_by_votes", text="Invert").action = "INVERT"
        draw_selection_tools(layout.column(align=True))
        row = layout.row(align=True)
        row.operator("masksplat.delete_selected", text="Delete", icon="TRASH")
        row.operator("masksplat.separate_selected", text="Separate", icon="MOD_EXPLODE")


class MASKSPLAT_UL_labels(bpy.types.UIList):
    """The label set: id, colour and name of each label."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.label(text=str(index))
        row.prop(item, "color", text="")
        row.prop(item, "name", text="", emboss=False)


class MASKSPLAT_PT_labels(_SplatSubPanel, bpy.types.Panel):
    """Several labels: the label set, where label maps come from, and what to do with them."""

    bl_label = "Labels"
    bl_idname = "MASKSPLAT_PT_labels"
    bl_options = {"DEFAULT_CLOSED"}

    def draw_splat(self, layout, context, obj):
        if len(obj.masksplat.labels):
            row = layout.row()
            row.template_list("MASKSPLAT_UL_labels", "", obj.masksplat, "labels", obj.masksplat, "active_label", rows=3)
            col = row.column(align=True)
            col.operator("masksplat.add_label", text="", icon="ADD")
            col.operator("masksplat.remove_label", text="", icon="REMOVE")
        else:
            layout.operator("masksplat.add_label", icon="ADD")
        col = layout.column(align=True)
        row = col.row(align=True)
        for tool, text, icon in (("BRUSH", "Paint Label", "BRUSH_DATA"), ("LASSO", "Lasso", "MOD_CURVE")):
            op = row.operator("masksplat.paint_mask", text=text, icon=icon)
            op.tool, op.target = tool, "LABELS"
        col.operator("masksplat.load_label_maps", icon="IMAGE_DATA")
        col.operator("masksplat.transfer_labels", icon="SHADERFX")
        col.operator("masksplat.compute_labels", icon="GROUP_VERTEX")
        row = layout.row(align=True)
        row.operator("masksplat.select_label", text="Select Label").action = "SET"
        row.operator("masksplat.select_label", text="", icon="ADD").action = "ADD"
        row.operator("masksplat.select_label", text="", icon="REMOVE").action = "REMOVE"
        layout.prop(obj.masksplat, "show_labels")


class MASKSPLAT_PT_prune(_SplatSubPanel, bpy.types.Panel):
    """Prune Splats and its last quality report."""

    bl_label = "Prune"
    bl_idname = "MASKSPLAT_PT_prune"
    bl_options = {"DEFAULT_CLOSED"}

    def draw_splat(self, layout, context, obj):
        layout.operator("masksplat.prune_splats", icon="TRASH")
        if obj.masksplat.prune_report:
            report = json.loads(obj.masksplat.prune_report)
            box = layout.box()
            box.label(text=f"Last prune: {report['removed']:,} removed ({100 * report['fraction_removed']:.1f}%)")
            psnr = report["mean_psnr_used_views"]
            box.label(text=f"Used views: {'identical' if psnr is None else f'{psnr:.1f} dB'}, max diff {report['max_pixel_difference']:.4f}")


class MASKSPLAT_PT_export(_SplatSubPanel, bpy.types.Panel):
    bl_label = "Export"
    bl_idname = "MASKSPLAT_PT_export"
    bl_options = {"DEFAULT_CLOSED"}

    def draw_splat(self, layout, context, obj):
        layout.operator("masksplat.export_splats", icon="EXPORT")
        op = layout.operator("masksplat.export_splats", text="Export Selected", icon="EXPORT")
        op.gaussians = "SELECTED"


CLASSES = (
    MASKSPLAT_UL_labels,
    MASKSPLAT_PT_main,
    MASKSPLAT_PT_display,
    MASKSPLAT_PT_masks,
    MASKSPLAT_PT_selection,
    MASKSPLAT_PT_labels,
    MASKSPLAT_PT_prune,
    MASKSPLAT_PT_export,
)
