"""File operators: import and export splats, import cameras (also in File > Import/Export)."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..core.splat_io import IMPORT_GLOB, SPLAT_FORMATS, format_of_name
from ..scene import io as scene_io
from .common import Reported

AXES_ITEMS = (
    ("FILE", "As in File", "Keep the file's coordinates"),
    ("NEG_Y_UP", "-Y Up to Z Up", "COLMAP / OpenCV captures (y points down): turn so -Y becomes Blender's up"),
    ("Y_UP", "Y Up to Z Up", "OpenGL / nerfstudio captures: turn so +Y becomes Blender's up"),
)
WRITABLE = [fmt for fmt in SPLAT_FORMATS if fmt.writable]
EXPORT_FORMAT_ITEMS = tuple((fmt.key.upper(), fmt.label, f"Write {fmt.suffixes[0]}") for fmt in WRITABLE)


class MASKSPLAT_OT_import_splats(Reported, bpy.types.Operator, ImportHelper):
    """Import a trained Gaussian splat file as a point object: INRIA or compressed .ply, .spz, .sog (or a SOG folder's meta.json), .splat"""

    bl_idname = "masksplat.import_splats"
    bl_label = "Import Splats"
    bl_options = {"REGISTER", "UNDO", "PRESET"}

    filename_ext = ".ply"
    filter_glob: StringProperty(default=IMPORT_GLOB, options={"HIDDEN"})
    drop_invalid: BoolProperty(
        name="Drop Invalid Gaussians",
        description="Drop Gaussians with NaN or Inf values instead of refusing the file",
        default=False,
    )
    axes: EnumProperty(name="Up Axis", items=AXES_ITEMS, default="FILE")

    def run(self, context) -> scene_io.FileReport:
        return scene_io.import_splats(context, self.filepath, drop_invalid=self.drop_invalid, axes=self.axes)[1]


class MASKSPLAT_OT_export_splats(Reported, bpy.types.Operator, ExportHelper):
    """Export the active splat object's Gaussians; the file name's extension picks the format: .ply (the layout it was read with), .compressed.ply or .spz"""

    bl_idname = "masksplat.export_splats"
    bl_label = "Export Splats"
    bl_options = {"REGISTER"}

    filename_ext = ".ply"
    filter_glob: StringProperty(default=";".join(f"*{fmt.suffixes[0]}" for fmt in WRITABLE), options={"HIDDEN"})
    file_format: EnumProperty(
        name="Format",
        items=EXPORT_FORMAT_ITEMS,
        default="PLY",
        description="Extension given to a file name that has none (a typed extension decides the format)",
        options={"HIDDEN"},
    )
    gaussians: EnumProperty(
        name="Gaussians",
        items=(
            ("ALL", "All", "Every Gaussian of the object"),
            ("SELECTED", "Selected", "Only the selected Gaussians"),
            ("UNSELECTED", "Unselected", "Only the Gaussians that are not selected"),
        ),
        default="ALL",
    )
    apply_transform: BoolProperty(
        name="Apply Transform",
        description="Bake moves, rotations and scales made in Blender into positions, rotations, scales and SH",
        default=True,
    )
    label_property: BoolProperty(
        name="Write Labels",
        description="Append each Gaussian's label (after Compute Labels or Transfer Labels) as an int32 ms_label property",
        default=False,
    )

    @classmethod
    def poll(cls, context):
        return scene_io.splat_object_for_export(context) is not None

    def invoke(self, context, event):
        if not self.filepath:
            base = bpy.path.abspath("//")[:-1] if bpy.data.filepath else ""
            stem = Path(bpy.data.filepath).stem if bpy.data.filepath else scene_io.splat_object_for_export(context).name
            self.filepath = export_file_name(str(Path(base) / stem) if base else stem, self.file_format)
        return super().invoke(context, event)

    def check(self, _context):
        name = export_file_name(self.filepath, self.file_format)
        changed = name != self.filepath
        self.filepath = name
        return changed

    def run(self, context) -> scene_io.FileReport:
        obj = scene_io.splat_object_for_export(context)
        return scene_io.export_splats(
            obj, self.filepath, apply_transform=self.apply_transform, which=self.gaussians, label_property=self.label_property
        )


def export_file_name(filepath: str, file_format: str) -> str:
    """`filepath` if its extension names a format we write, else with `file_format`'s extension added."""
    fmt = format_of_name(filepath)
    if fmt is not None and fmt.writable:
        return filepath
    chosen = next(f for f in WRITABLE if f.key.upper() == file_format)
    return filepath + chosen.suffixes[0]


class MASKSPLAT_OT_import_cameras(Reported, bpy.types.Operator, ImportHelper):
    """Import training cameras (3DGS cameras.json, COLMAP sparse model, transforms.json)"""

    bl_idname = "masksplat.import_cameras"
    bl_label = "Import Splat Cameras"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json;*.txt;*.bin", options={"HIDDEN"})
    axes: EnumProperty(name="Up Axis", items=AXES_ITEMS, default="FILE")
    assign_to_active: BoolProperty(
        name="Assign to Active Splat",
        description="Make these the cameras of the active splat object (and use its Up Axis)",
        default=True,
    )

    def run(self, context) -> str:
        collection, count = scene_io.import_cameras(context, self.filepath, axes=self.axes, assign_to_active=self.assign_to_active)
        return f"Imported {count} cameras into '{collection.name}'"


class MASKSPLAT_OT_assign_cameras(Reported, bpy.types.Operator):
    """Use the active collection's cameras for the active splat object"""

    bl_idname = "masksplat.assign_cameras"
    bl_label = "Assign Camera Collection"
    bl_options = {"REGISTER", "UNDO"}

    collection: StringProperty(name="Collection", description="Camera collection name (default: the active one)")

    def run(self, context) -> str:
        name = scene_io.assign_cameras(context, self.collection or None)
        return f"Cameras of '{context.active_object.name}': '{name}'"


def menu_import(self, context):
    self.layout.operator(MASKSPLAT_OT_import_splats.bl_idname, text="Gaussian Splats (.ply, .spz, .sog, .splat)")
    self.layout.operator(MASKSPLAT_OT_import_cameras.bl_idname, text="Splat Cameras (.json, COLMAP)")


def menu_export(self, context):
    for fmt in WRITABLE:
        label = "Gaussian Splats" if fmt.key == "ply" else f"Gaussian Splats, {fmt.label}"
        op = self.layout.operator(MASKSPLAT_OT_export_splats.bl_idname, text=f"{label} ({fmt.suffixes[0]})")
        op.file_format = fmt.key.upper()


CLASSES = (
    MASKSPLAT_OT_import_splats,
    MASKSPLAT_OT_export_splats,
    MASKSPLAT_OT_import_cameras,
    MASKSPLAT_OT_assign_cameras,
)
MENUS = (
    (bpy.types.TOPBAR_MT_file_import, menu_import),
    (bpy.types.TOPBAR_MT_file_export, menu_export),
)
