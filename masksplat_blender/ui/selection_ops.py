"""Operators that turn masks into a selection and act on it. Thin: the work is in scene/."""

from __future__ import annotations

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty

from ..scene import masks as scene_masks
from ..scene import selection
from ..scene.properties import colour_property
from ..scene.splat_object import is_splat_object, keep_vertices
from .common import LoadCameraFiles, ObjectMode, Refused, SplatEdit
from .modal import PlanWork, interactive


def _require_selection(obj) -> np.ndarray:
    """The vertex selection [N] bool; refuses when nothing is selected."""
    chosen = selection.vertex_selection(obj)
    if not chosen.any():
        raise Refused("Nothing is selected")
    return chosen


class MASKSPLAT_OT_compute_selection(PlanWork, bpy.types.Operator):
    """Work out which Gaussians the masks show (votes over every camera with a mask) and select them"""

    bl_idname = "masksplat.compute_selection"
    bl_label = "Compute Selection"
    plan_type = selection.VotePlan


class MASKSPLAT_OT_select_by_votes(SplatEdit, bpy.types.Operator):
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

    def edit(self, context, obj) -> str | None:
        if self.action == "SELECT":
            if not selection.has_votes(obj):
                raise ValueError(f"'{obj.name}' has no votes yet: run Compute Selection first")
            return str(selection.apply_selection(obj, None if self.beta < 0 else self.beta))
        if self.action == "DESELECT":
            selection.set_vertex_selection(obj, np.zeros(len(obj.data.vertices), bool))
        else:
            selection.set_vertex_selection(obj, ~selection.vertex_selection(obj))


class MASKSPLAT_OT_delete_selected(SplatEdit, bpy.types.Operator):
    """Delete the selected Gaussians (Undo brings them back)"""

    bl_idname = "masksplat.delete_selected"
    bl_label = "Delete Selected"

    def edit(self, context, obj) -> str:
        chosen = _require_selection(obj)
        if chosen.all():
            raise ValueError("Every Gaussian is selected; delete the object instead")
        keep_vertices(obj, ~chosen)
        return f"Deleted {int(chosen.sum()):,} Gaussians"


class MASKSPLAT_OT_grow_selection(SplatEdit, bpy.types.Operator):
    """Grow the selection to the Gaussians next to it in 3D, or shrink it away from the unselected ones (repeat to go further)"""

    bl_idname = "masksplat.grow_selection"
    bl_label = "Grow Selection"

    shrink: BoolProperty(name="Shrink", default=False, description="Deselect the selected Gaussians next to unselected ones instead")
    by: EnumProperty(
        name="Neighbours",
        items=(
            ("RADIUS", "Radius", "Gaussians within a distance"),
            ("NEAREST", "Nearest", "Each selected Gaussian's k nearest Gaussians"),
        ),
        default="RADIUS",
    )
    radius: FloatProperty(
        name="Radius",
        default=0.5,
        min=0.0,
        soft_max=10.0,
        description="How far to reach: with In Splat Sizes, two Gaussians are neighbours when they overlap at this many "
        "standard deviations each (big splats reach further); else a distance in world units",
    )
    in_splat_sizes: BoolProperty(name="In Splat Sizes", default=True, description="Measure the radius in each splat's own size")
    k: IntProperty(name="k", default=8, min=1, max=64, description="How many nearest Gaussians count as neighbours")
    steps: IntProperty(name="Steps", default=1, min=1, max=50, description="Grow (or shrink) this many times")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "shrink")
        layout.row().prop(self, "by", expand=True)
        if self.by == "RADIUS":
            layout.prop(self, "radius")
            layout.prop(self, "in_splat_sizes")
        else:
            layout.prop(self, "k")
        layout.prop(self, "steps")

    def edit(self, context, obj) -> str:
        _require_selection(obj)
        before, after = selection.grow_selection(
            obj, self.radius if self.by == "RADIUS" else 0.0, self.k if self.by == "NEAREST" else 0,
            self.in_splat_sizes, self.steps, self.shrink,
        )  # fmt: skip
        return f"{'Shrank' if self.shrink else 'Grew'} the selection from {before:,} to {after:,} Gaussians"


VALUE_ITEMS = (
    ("OPACITY", "Opacity", "Each Gaussian's opacity (0..1)"),
    ("SCALE", "Largest Scale", "Each Gaussian's largest size, in multiples of the median Gaussian's"),
    ("COLOUR", "Colour", "How far each Gaussian's base colour is from a picked Gaussian's (or a colour)"),
)


class MASKSPLAT_OT_select_by_value(SplatEdit, bpy.types.Operator):
    """Select Gaussians by opacity, size or colour (click a splat to match its colour)"""

    bl_idname = "masksplat.select_by_value"
    bl_label = "Select by Value"

    value: EnumProperty(name="Value", items=VALUE_ITEMS, default="OPACITY")
    compare: EnumProperty(
        name="Compare",
        items=(("BELOW", "Below", "At most the threshold"), ("ABOVE", "Above", "More than the threshold")),
        default="BELOW",
    )
    opacity: FloatProperty(name="Opacity", default=0.1, min=0.0, max=1.0, description="Opacity threshold")
    scale: FloatProperty(name="Scale", default=5.0, min=0.0, soft_max=100.0, description="Size threshold, in multiples of the median Gaussian's largest size")
    distance: FloatProperty(name="Distance", default=0.15, min=0.0, max=1.75, description="Largest RGB distance (0..1 per channel) from the reference colour")
    colour: colour_property((1.0, 1.0, 1.0), "Reference colour (set from the picked Gaussian)")
    splat: IntProperty(name="Picked Gaussian", default=-1, min=-1, description="Gaussian whose colour to match (-1: the Colour above)")
    action: EnumProperty(
        name="Action",
        items=(("SET", "Set", "Replace the selection"), ("ADD", "Add", "Add to the selection"), ("REMOVE", "Remove", "Take out of the selection")),
        default="SET",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "value")
        if self.value == "COLOUR":
            layout.prop(self, "distance")
            layout.prop(self, "colour")
            layout.prop(self, "splat")
        else:
            layout.row().prop(self, "compare", expand=True)
            layout.prop(self, "opacity" if self.value == "OPACITY" else "scale")
        layout.row().prop(self, "action", expand=True)

    def invoke(self, context, event):
        if self.value != "COLOUR" or self.splat >= 0 or not interactive(context) or context.area is None or context.area.type != "VIEW_3D":
            return self.execute(context)
        context.window_manager.modal_handler_add(self)
        context.workspace.status_text_set("Click the splat whose colour to match  Esc/RMB cancel")
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type in {"ESC", "RIGHTMOUSE"} and event.value == "PRESS":
            context.workspace.status_text_set(None)
            return {"CANCELLED"}
        if event.type != "LEFTMOUSE" or event.value != "PRESS":
            return {"PASS_THROUGH"} if event.type in {"MIDDLEMOUSE", "WHEELUPMOUSE", "WHEELDOWNMOUSE", "MOUSEMOVE"} else {"RUNNING_MODAL"}
        region = context.region
        with ObjectMode(context.active_object):
            picked = selection.pick_gaussian(context.active_object, np.array(context.region_data.perspective_matrix),
                                             region.width, region.height, (event.mouse_region_x, event.mouse_region_y))  # fmt: skip
        if picked < 0:
            self.report({"WARNING"}, "No splat there: click on a splat")
            return {"RUNNING_MODAL"}
        context.workspace.status_text_set(None)
        self.splat = picked
        return self.execute(context)

    def edit(self, context, obj) -> str:
        if self.value == "COLOUR" and self.splat >= 0:
            try:
                self.colour = selection.splat_colour(obj, self.splat)
            except IndexError as err:  # a Picked Gaussian that the object does not have
                raise ValueError(str(err)) from err
        limit = {"OPACITY": self.opacity, "SCALE": self.scale, "COLOUR": self.distance}[self.value]
        above = self.compare == "ABOVE" and self.value != "COLOUR"
        count = selection.select_by_value(obj, self.value, limit, above, self.action, tuple(self.colour))
        return f"{count:,} Gaussians match; {selection.selected_count(obj):,} selected"


class MASKSPLAT_MT_select(bpy.types.Menu):
    """MaskSplat's selection tools, in the 3D view's Select menu (so F3 finds them)"""

    bl_idname = "MASKSPLAT_MT_select"
    bl_label = "MaskSplat"

    def draw(self, context):
        draw_selection_tools(self.layout)


def draw_selection_tools(layout) -> None:
    """Grow, Shrink and Select by Value, as the menu and the panel show them."""
    layout.operator("masksplat.grow_selection", text="Grow Selection", icon="ADD").shrink = False
    layout.operator("masksplat.grow_selection", text="Shrink Selection", icon="REMOVE").shrink = True
    for value, compare, text in (("OPACITY", "BELOW", "Select by Opacity"), ("SCALE", "ABOVE", "Select by Scale"), ("COLOUR", "BELOW", "Select by Colour")):
        op = layout.operator("masksplat.select_by_value", text=text)
        op.value, op.compare = value, compare
        if value == "COLOUR":
            op.splat = -1


def _select_menu(self, context):
    if is_splat_object(context.active_object):
        self.layout.separator()
        self.layout.menu(MASKSPLAT_MT_select.bl_idname)


MENUS = ((bpy.types.VIEW3D_MT_select_object, _select_menu), (bpy.types.VIEW3D_MT_select_edit_mesh, _select_menu))


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


class MASKSPLAT_OT_separate_selected(SplatEdit, bpy.types.Operator):
    """Move the selected Gaussians into a new splat object"""

    bl_idname = "masksplat.separate_selected"
    bl_label = "Separate Selected"

    def edit(self, context, obj) -> str:
        new = separate_selected(context, obj)
        return f"Separated {len(new.data.vertices):,} Gaussians into '{new.name}'"


class MASKSPLAT_OT_load_masks(LoadCameraFiles, bpy.types.Operator):
    """Load mask images named after the cameras (e.g. SAM output): white = object"""

    bl_idname = "masksplat.load_masks"
    bl_label = "Load Masks"

    def store_files(self, obj, loaded: dict) -> str:
        for cam, mask in loaded.items():
            scene_masks.set_camera_mask(cam, mask)
        return f"Loaded {len(loaded)} masks"


CLASSES = (
    MASKSPLAT_OT_compute_selection,
    MASKSPLAT_OT_select_by_votes,
    MASKSPLAT_OT_grow_selection,
    MASKSPLAT_OT_select_by_value,
    MASKSPLAT_MT_select,
    MASKSPLAT_OT_delete_selected,
    MASKSPLAT_OT_separate_selected,
    MASKSPLAT_OT_load_masks,
)
