"""Operators that turn masks into a selection and act on it. Thin: the work is in scene/."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from bpy.props import EnumProperty, FloatProperty, StringProperty

from ..core.masks import MaskError, check_mask_size, match_mask_files
from ..scene import masks as scene_masks
from ..scene import selection
from ..scene.cameras import camera_resolution, cameras_by_stem
from ..scene.splat_object import keep_vertices
from .backend_ops import DEVICE_ITEMS
from .common import ObjectMode, splat_poll
from .modal import PlanWork
from .reports import report_error


class MASKSPLAT_OT_compute_selection(PlanWork, bpy.types.Operator):
    """Work out which Gaussians the masks show (votes over every camera with a mask) and select them"""

    bl_idname = "masksplat.compute_selection"
    bl_label = "Compute Selection"
    bl_options = {"REGISTER", "UNDO"}

    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default="PREFERENCES")

    @classmethod
    def poll(cls, context):
        return splat_poll(context)

    def make_plan(self, context, obj) -> selection.VotePlan:
        return selection.VotePlan(obj, context.scene)


class MASKSPLAT_OT_select_by_votes(bpy.types.Operator):
    """Select Gaussians from the stored votes (no backend): Select, Deselect or Invert"""

    bl_idname = "masksplat.select_by_votes"
    bl_label = "Select by Votes"
    bl_options = {"REGISTER", "UNDO"}

    action: EnumProperty(
        name="Action",
        items=(
            ("SELECT", "Select", "Select the Gaussians the votes choose"),
            ("DESELECT", "Deselect", "Deselect every Gaussian"),
            ("INVERT", "Invert", "Invert the selection"),
        ),
        default="SELECT",
    )
    beta: FloatProperty(name="Beta", min=0.0, max=2.0, default=-1.0, description="Override the object's beta (-1: use it)")

    @classmethod
    def poll(cls, context):
        return splat_poll(context)

    def execute(self, context):
        obj = context.active_object
        with ObjectMode(obj):
            if self.action == "SELECT":
                if not selection.has_votes(obj):
                    self.report({"ERROR"}, f"'{obj.name}' has no votes yet: run Compute Selection first")
                    return {"CANCELLED"}
                summary = selection.apply_selection(obj, None if self.beta < 0 else self.beta)
                self.report({"INFO"}, str(summary))
            elif self.action == "DESELECT":
                selection.set_vertex_selection(obj, np.zeros(len(obj.data.vertices), bool))
            else:
                selection.set_vertex_selection(obj, ~selection.vertex_selection(obj))
        return {"FINISHED"}


class MASKSPLAT_OT_delete_selected(bpy.types.Operator):
    """Delete the selected Gaussians (Undo brings them back)"""

    bl_idname = "masksplat.delete_selected"
    bl_label = "Delete Selected"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return splat_poll(context)

    def execute(self, context):
        obj = context.active_object
        with ObjectMode(obj):
            chosen = selection.vertex_selection(obj)
            if not chosen.any():
                self.report({"WARNING"}, "Nothing is selected")
                return {"CANCELLED"}
            if chosen.all():
                self.report({"ERROR"}, "Every Gaussian is selected; delete the object instead")
                return {"CANCELLED"}
            keep_vertices(obj, ~chosen)
        self.report({"INFO"}, f"Deleted {int(chosen.sum()):,} Gaussians")
        return {"FINISHED"}


def separate_selected(context, obj) -> bpy.types.Object:
    """Move the selected Gaussians into a new splat object that exports on its own."""
    chosen = selection.vertex_selection(obj)
    if not chosen.any() or chosen.all():
        raise ValueError("select some, but not all, Gaussians to separate")
    new = obj.copy()
    new.data = obj.data.copy()
    new.name = f"{obj.name}.selected"
    for collection in obj.users_collection:
        collection.objects.link(new)
    keep_vertices(new, chosen)
    keep_vertices(obj, ~chosen)
    return new


class MASKSPLAT_OT_separate_selected(bpy.types.Operator):
    """Move the selected Gaussians into a new splat object"""

    bl_idname = "masksplat.separate_selected"
    bl_label = "Separate Selected"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return splat_poll(context)

    def execute(self, context):
        obj = context.active_object
        with ObjectMode(obj):
            try:
                new = separate_selected(context, obj)
            except ValueError as err:
                self.report({"ERROR"}, str(err))
                return {"CANCELLED"}
        self.report({"INFO"}, f"Separated {len(new.data.vertices):,} Gaussians into '{new.name}'")
        return {"FINISHED"}


class MASKSPLAT_OT_load_masks(bpy.types.Operator):
    """Load mask images named after the cameras (e.g. SAM output): white = object"""

    bl_idname = "masksplat.load_masks"
    bl_label = "Load Masks"
    bl_options = {"REGISTER", "UNDO"}

    directory: StringProperty(name="Folder", subtype="DIR_PATH")

    @classmethod
    def poll(cls, context):
        return splat_poll(context)

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        try:
            loaded, missing = read_camera_files(context, context.active_object, self.directory, scene_masks.load_mask_file)
        except ValueError as err:
            return report_error(self, err)
        for cam, mask in loaded.items():
            scene_masks.set_camera_mask(cam, mask)
        self.report({"INFO"}, f"Loaded {len(loaded)} masks" + missing_note(missing))
        return {"FINISHED"}


def read_camera_files(context, obj, directory, read, what: str = "mask") -> tuple[dict, list[str]]:
    """Read one file per camera from `directory`, named after the camera's image (e.g. SAM
    output). Every file is read and checked before the caller stores anything, so one bad
    file changes nothing. Returns ({camera object: read(file)}, names of cameras without one)."""
    cameras = selection.scene_cameras(obj, context.scene)
    if not cameras:
        raise MaskError(f"'{obj.name}' has no cameras: import or add cameras first")
    by_name = cameras_by_stem(cameras)
    files = match_mask_files(Path(bpy.path.abspath(directory)), by_name)
    loaded = {}
    for name, path in files.items():
        width, height, _, _ = camera_resolution(by_name[name], context.scene)
        data = read(path)
        check_mask_size(name, data, width, height, what)
        loaded[by_name[name]] = data
    return loaded, sorted(set(by_name) - set(files))


def missing_note(missing: list[str]) -> str:
    if not missing:
        return ""
    return f"; {len(missing)} cameras have no file ({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''})"


CLASSES = (
    MASKSPLAT_OT_compute_selection,
    MASKSPLAT_OT_select_by_votes,
    MASKSPLAT_OT_delete_selected,
    MASKSPLAT_OT_separate_selected,
    MASKSPLAT_OT_load_masks,
)
