"""Operators that turn masks into a selection and act on it. Thin: the work is in scene/."""

from __future__ import annotations

import bpy
import numpy as np
from bpy.props import EnumProperty, FloatProperty

from ..scene import masks as scene_masks
from ..scene import selection
from ..scene.splat_object import keep_vertices
from .common import LoadCameraFiles, ObjectMode, SplatOperator
from .modal import PlanWork


class MASKSPLAT_OT_compute_selection(PlanWork, bpy.types.Operator):
    """Work out which Gaussians the masks show (votes over every camera with a mask) and select them"""

    bl_idname = "masksplat.compute_selection"
    bl_label = "Compute Selection"

    def make_plan(self, context, obj) -> selection.VotePlan:
        return selection.VotePlan(obj, context.scene)


class MASKSPLAT_OT_select_by_votes(SplatOperator, bpy.types.Operator):
    """Select Gaussians from the stored votes (no backend): Select, Deselect or Invert"""

    bl_idname = "masksplat.select_by_votes"
    bl_label = "Select by Votes"

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


class MASKSPLAT_OT_delete_selected(SplatOperator, bpy.types.Operator):
    """Delete the selected Gaussians (Undo brings them back)"""

    bl_idname = "masksplat.delete_selected"
    bl_label = "Delete Selected"

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


class MASKSPLAT_OT_separate_selected(SplatOperator, bpy.types.Operator):
    """Move the selected Gaussians into a new splat object"""

    bl_idname = "masksplat.separate_selected"
    bl_label = "Separate Selected"

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


class MASKSPLAT_OT_load_masks(LoadCameraFiles, bpy.types.Operator):
    """Load mask images named after the cameras (e.g. SAM output): white = object"""

    bl_idname = "masksplat.load_masks"
    bl_label = "Load Masks"

    def read_file(self, path):
        return scene_masks.load_mask_file(path)

    def store_files(self, obj, loaded: dict) -> str:
        for cam, mask in loaded.items():
            scene_masks.set_camera_mask(cam, mask)
        return f"Loaded {len(loaded)} masks"


CLASSES = (
    MASKSPLAT_OT_compute_selection,
    MASKSPLAT_OT_select_by_votes,
    MASKSPLAT_OT_delete_selected,
    MASKSPLAT_OT_separate_selected,
    MASKSPLAT_OT_load_masks,
)
