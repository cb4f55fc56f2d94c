"""Several labels at once, and label transfer with DINOv2 features. Thin: the work is in scene/labels.py."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from ..core.labels import MAX_LABELS
from ..scene import labels as scene_labels
from .common import LoadCameraFiles, Reported, SplatEdit, SplatOperator
from .modal import PlanWork, interactive
from .preferences import get_preferences


class MASKSPLAT_OT_add_label(SplatOperator, Reported, bpy.types.Operator):
    """Add a label to the active splat object's label set"""

    bl_idname = "masksplat.add_label"
    bl_label = "Add Label"

    name: StringProperty(name="Name", default="")

    def run(self, context) -> None:
        obj = context.active_object
        count = max(len(obj.masksplat.labels), 1) + 1
        scene_labels.ensure_label_set(obj, count)
        if self.name:
            obj.masksplat.labels[count - 1].name = self.name
        obj.masksplat.active_label = count - 1


class MASKSPLAT_OT_remove_label(SplatOperator, bpy.types.Operator):
    """Remove the last label of the set (label ids are pixel values in label maps, so only the last can go)"""

    bl_idname = "masksplat.remove_label"
    bl_label = "Remove Label"

    @classmethod
    def poll(cls, context):
        return super().poll(context) and len(context.active_object.masksplat.labels) > 1

    def execute(self, context):
        props = context.active_object.masksplat
        props.labels.remove(len(props.labels) - 1)
        props.active_label = min(props.active_label, len(props.labels) - 1)
        return {"FINISHED"}


class MASKSPLAT_OT_load_label_maps(LoadCameraFiles, bpy.types.Operator):
    """Load label-id images named after the cameras (8-bit PNG: 0 background, 1..K labels; e.g. SAM instance ids)"""

    bl_idname = "masksplat.load_label_maps"
    bl_label = "Load Label Maps"
    what = "label map"

    read_file = staticmethod(scene_labels.read_label_file)

    def store_files(self, obj, loaded: dict) -> str:
        count = max(int(ids.max(initial=0)) for ids in loaded.values()) + 1
        scene_labels.ensure_label_set(obj, max(count, 2))
        for cam, ids in loaded.items():
            scene_labels.set_camera_label_map(cam, ids)
        return f"Loaded {len(loaded)} label maps ({count} label ids)"


class MASKSPLAT_OT_compute_labels(PlanWork, bpy.types.Operator):
    """Lift every camera's label map to the Gaussians: K-label votes in one pass, each Gaussian takes the majority label"""

    bl_idname = "masksplat.compute_labels"
    bl_label = "Compute Labels"
    plan_type = scene_labels.LabelPlan


class MASKSPLAT_OT_select_label(SplatEdit, bpy.types.Operator):
    """Select the Gaussians that carry a label (after Compute Labels)"""

    bl_idname = "masksplat.select_label"
    bl_label = "Select Label"

    label: IntProperty(name="Label", default=-1, min=-1, max=MAX_LABELS, description="Label id (-1: the active label)")
    action: EnumProperty(
        name="Action",
        items=(("SET", "Select", "Select only this label"), ("ADD", "Add", "Add this label to the selection"),
               ("REMOVE", "Remove", "Take this label out of the selection")),  # fmt: skip
        default="SET",
    )

    def edit(self, context, obj) -> str:
        label = obj.masksplat.active_label if self.label < 0 else self.label
        count = scene_labels.select_label(obj, label, self.action)
        return f"{count:,} Gaussians carry label {label}"


class MASKSPLAT_OT_transfer_labels(PlanWork, bpy.types.Operator):
    """Carry labels painted on one or a few views to every other camera with DINOv2 features, then lift them to the Gaussians"""

    bl_idname = "masksplat.transfer_labels"
    bl_label = "Transfer Labels"

    source_camera: StringProperty(
        name="Source Camera",
        description="The camera the source image was taken from; its label map is used as is "
        "(empty: every camera whose labels were painted or loaded)",
    )
    source_image: StringProperty(
        name="Source Image", subtype="FILE_PATH",
        description="An annotated photo or render (empty: render the splats from the source camera)",
    )  # fmt: skip
    source_labels: StringProperty(
        name="Source Labels", subtype="FILE_PATH",
        description="Label ids of the source image (8-bit PNG, 0 = background; empty: the source camera's label map)",
    )  # fmt: skip
    sources_json: StringProperty(
        name="Sources", options={"HIDDEN"},
        description='Several sources for scripts: a JSON list of {"image", "labels", "camera"} (overrides the three above)',
    )  # fmt: skip
    model: StringProperty(name="Model", description="DINOv2 model folder or id in the local cache (empty: the preferences)")
    cache_dir: StringProperty(name="Model Cache", subtype="DIR_PATH", description="Hugging Face cache folder (empty: the preferences)")
    k: IntProperty(name="Neighbours", default=5, min=1, max=64, description="Source patches each target patch asks for its label")
    feature_size: IntProperty(name="Feature Size", default=448, min=14, max=1792, step=14,
                              description="Images are resized to this square (a multiple of 14) for DINOv2; the paper uses 896")  # fmt: skip
    lift: BoolProperty(name="Lift to Gaussians", default=True, description="Compute the labels of the Gaussians after the transfer")

    def invoke(self, context, event):
        """A dialog first (model, source, neighbours); then it runs in the background."""
        return context.window_manager.invoke_props_dialog(self, width=420) if interactive(context) else self.execute(context)

    def draw(self, context):
        layout = self.layout
        obj = context.active_object
        if obj is not None and obj.masksplat.camera_collection is not None:
            layout.prop_search(self, "source_camera", obj.masksplat.camera_collection, "all_objects")
        else:
            layout.prop(self, "source_camera")
        for name in ("source_image", "source_labels", "model", "k", "feature_size", "lift"):
            layout.prop(self, name)
        if not (self.source_camera or self.source_image):
            layout.label(text="Sources: every camera with painted or loaded labels", icon="INFO")

    def _source_list(self) -> list[dict]:
        """The sources as {"camera", "image", "labels"} dicts: `sources_json`, else the three
        properties, else none (every camera with painted or loaded labels)."""
        if self.sources_json:
            return scene_labels.parse_sources(self.sources_json)
        if self.source_camera or self.source_image:
            return [{"camera": self.source_camera, "image": self.source_image, "labels": self.source_labels}]
        return []

    def make_plan(self, context, obj) -> scene_labels.TransferPlan:
        prefs = get_preferences(context)
        model = self.model or (prefs.feature_model if prefs else "")
        cache_dir = self.cache_dir or (prefs.feature_cache if prefs else "")
        return scene_labels.TransferPlan(obj, context.scene, self._source_list(), model, cache_dir, self.k, self.feature_size, self.lift)


CLASSES = (
    MASKSPLAT_OT_add_label,
    MASKSPLAT_OT_remove_label,
    MASKSPLAT_OT_load_label_maps,
    MASKSPLAT_OT_compute_labels,
    MASKSPLAT_OT_select_label,
    MASKSPLAT_OT_transfer_labels,
)
