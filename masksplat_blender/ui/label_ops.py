"""Several labels at once, and label transfer with DINOv2 features. Thin: the work is in scene/."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from ..client import BackendError, compute_votes, render_views
from ..core.labels import MAX_LABELS, LabelError
from ..scene import labels as scene_labels
from ..scene.cameras import camera_from_object
from ..scene.selection import scene_cameras, with_occluders, world_gaussians, world_sh
from .backend_ops import DEVICE_ITEMS, backend_client
from .modal import BackgroundWork, interactive
from .preferences import get_preferences
from .reports import report_error
from .selection_ops import _ObjectMode, _splat_poll, missing_note, read_camera_files


class MASKSPLAT_OT_add_label(bpy.types.Operator):
    """Add a label to the active splat object's label set"""

    bl_idname = "masksplat.add_label"
    bl_label = "Add Label"
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty(name="Name", default="")

    @classmethod
    def poll(cls, context):
        return _splat_poll(context)

    def execute(self, context):
        obj = context.active_object
        count = max(len(obj.masksplat.labels), 1) + 1
        try:
            scene_labels.ensure_label_set(obj, count)
        except LabelError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        if self.name:
            obj.masksplat.labels[count - 1].name = self.name
        obj.masksplat.active_label = count - 1
        return {"FINISHED"}


class MASKSPLAT_OT_remove_label(bpy.types.Operator):
    """Remove the last label of the set (label ids are pixel values in label maps, so only the last can go)"""

    bl_idname = "masksplat.remove_label"
    bl_label = "Remove Label"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _splat_poll(context) and len(context.active_object.masksplat.labels) > 1

    def execute(self, context):
        props = context.active_object.masksplat
        props.labels.remove(len(props.labels) - 1)
        props.active_label = min(props.active_label, len(props.labels) - 1)
        return {"FINISHED"}


class MASKSPLAT_OT_load_label_maps(bpy.types.Operator):
    """Load label-id images named after the cameras (8-bit PNG: 0 background, 1..K labels; e.g. SAM instance ids)"""

    bl_idname = "masksplat.load_label_maps"
    bl_label = "Load Label Maps"
    bl_options = {"REGISTER", "UNDO"}

    directory: StringProperty(name="Folder", subtype="DIR_PATH")

    @classmethod
    def poll(cls, context):
        return _splat_poll(context)

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        obj = context.active_object
        try:
            loaded, missing = read_camera_files(context, obj, self.directory, scene_labels.read_label_file, "label map")
            count = max(int(ids.max(initial=0)) for ids in loaded.values()) + 1
            scene_labels.ensure_label_set(obj, max(count, 2))
        except ValueError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        for cam, ids in loaded.items():
            scene_labels.set_camera_label_map(cam, ids)
        self.report({"INFO"}, f"Loaded {len(loaded)} label maps ({count} label ids)" + missing_note(missing))
        return {"FINISHED"}


class MASKSPLAT_OT_compute_labels(BackgroundWork, bpy.types.Operator):
    """Lift every camera's label map to the Gaussians: K-label votes in one pass, each Gaussian takes the majority label"""

    bl_idname = "masksplat.compute_labels"
    bl_label = "Compute Labels"
    bl_options = {"REGISTER", "UNDO"}

    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default="PREFERENCES")

    @classmethod
    def poll(cls, context):
        return _splat_poll(context)

    def prepare(self, context) -> bool:
        obj = context.active_object
        try:
            with _ObjectMode(obj):
                self._plan = scene_labels.LabelPlan(obj, context.scene)
            backend = backend_client(context, self.device)
        except (ValueError, BackendError) as err:
            report_error(self, err)
            return False
        self._compute = lambda arrays, cams, masks, progress, cancel: compute_votes(
            backend, arrays, cams, masks, mode="labels", progress=progress, cancel_check=cancel
        )[0]
        return True

    def work(self, progress, cancelled):
        return self._plan.run(self._compute, _progress(progress), cancelled)

    def finish(self, context, votes) -> set:
        obj = context.active_object
        with _ObjectMode(obj):
            labels = scene_labels.store_label_votes(obj, votes)
        self.report({"INFO"}, _label_summary(obj, labels, len(self._plan.cameras)))
        return {"FINISHED"}


def _progress(callback):
    """Backend progress (done, total, message) to the operators' (done, total)."""
    return lambda done, total, *_: callback(done, total) if total else None


def _label_summary(obj, labels: np.ndarray, views: int) -> str:
    names = scene_labels.label_names(obj)
    counts = np.bincount(labels[labels >= 0], minlength=len(names))
    parts = ", ".join(f"{names[k] if k < len(names) else k}: {int(c):,}" for k, c in enumerate(counts) if c)
    return f"Labelled {int((labels >= 0).sum()):,} of {labels.size:,} Gaussians from {views} views ({parts}); {int((labels < 0).sum()):,} unseen"


class MASKSPLAT_OT_select_label(bpy.types.Operator):
    """Select the Gaussians that carry a label (after Compute Labels)"""

    bl_idname = "masksplat.select_label"
    bl_label = "Select Label"
    bl_options = {"REGISTER", "UNDO"}

    label: IntProperty(name="Label", default=-1, min=-1, max=MAX_LABELS, description="Label id (-1: the active label)")
    action: EnumProperty(
        name="Action",
        items=(("SET", "Select", "Select only this label"), ("ADD", "Add", "Add this label to the selection"),
               ("REMOVE", "Remove", "Take this label out of the selection")),  # fmt: skip
        default="SET",
    )

    @classmethod
    def poll(cls, context):
        return _splat_poll(context)

    def execute(self, context):
        obj = context.active_object
        label = obj.masksplat.active_label if self.label < 0 else self.label
        with _ObjectMode(obj):
            try:
                count = scene_labels.select_label(obj, label, self.action)
            except LabelError as err:
                self.report({"ERROR"}, str(err))
                return {"CANCELLED"}
        self.report({"INFO"}, f"{count:,} Gaussians carry label {label}")
        return {"FINISHED"}


class MASKSPLAT_OT_transfer_labels(BackgroundWork, bpy.types.Operator):
    """Carry labels painted on one or a few views to every other camera with DINOv2 features, then lift them to the Gaussians"""

    bl_idname = "masksplat.transfer_labels"
    bl_label = "Transfer Labels"
    bl_options = {"REGISTER", "UNDO"}

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
    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default="PREFERENCES")

    @classmethod
    def poll(cls, context):
        return _splat_poll(context)

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

    def _sources(self, context, obj) -> list[tuple]:
        """[(camera object or None, image [H, W, 3] uint8 or None (render it), label ids [H, W])].

        A given source camera or source image makes one source; otherwise every camera whose
        labels were painted or loaded (not transferred) is a source: paint a second view
        where the first transfer went wrong and run again.
        """
        cams = scene_cameras(obj, context.scene)
        if self.sources_json:
            return [self._one_source(context, obj, cams, item.get("camera", ""), item.get("image", ""), item.get("labels", ""))
                    for item in _source_list(self.sources_json)]  # fmt: skip
        if self.source_camera or self.source_image:
            return [self._one_source(context, obj, cams, self.source_camera, self.source_image, self.source_labels)]
        painted = [c for c in cams if scene_labels.has_own_labels(c)]
        if not painted:
            raise LabelError("paint or load labels on a camera first, or give a source image and its labels")
        return [(c, None, scene_labels.load_source(None, None, c, context.scene)[1]) for c in painted]

    def _one_source(self, context, obj, cams, camera: str, image_path: str, labels_path: str) -> tuple:
        cam_obj = None
        if camera:
            cam_obj = next((c for c in cams if c.name == camera), None)
            if cam_obj is None:
                raise LabelError(f"'{obj.name}' has no camera named '{camera}'")
        image, ids = scene_labels.load_source(
            bpy.path.abspath(image_path) if image_path else None,
            bpy.path.abspath(labels_path) if labels_path else None, cam_obj, context.scene,
        )  # fmt: skip
        return cam_obj, image, ids

    def prepare(self, context) -> bool:
        obj = context.active_object
        prefs = get_preferences(context)
        model = self.model or (prefs.feature_model if prefs else "")
        cache_dir = self.cache_dir or (prefs.feature_cache if prefs else "")
        try:
            if not model:
                raise LabelError("no feature model: set Preferences > Add-ons > MaskSplat > Feature Model (a DINOv2 folder or id)")
            with _ObjectMode(obj):
                sources = self._sources(context, obj)
                source_objs = [cam for cam, _, _ in sources if cam is not None]
                targets = [c for c in scene_cameras(obj, context.scene) if c not in source_objs]
                if not targets:
                    raise LabelError(f"'{obj.name}' has no other camera to transfer the labels to")
                self._num_labels = max(len(obj.masksplat.labels), *(int(ids.max()) + 1 for _, _, ids in sources), 2)
                if self._num_labels > MAX_LABELS + 1:
                    raise LabelError(f"at most {MAX_LABELS} labels (plus background) are supported")
                self._arrays, self._sh = world_gaussians(obj), world_sh(obj)  # renders: the object alone
                self._count, self._lift_arrays = with_occluders(obj, context.scene)  # votes: other splats occlude
                self._sources_data = [(camera_from_object(cam, context.scene) if cam is not None else None, image, ids)
                                      for cam, image, ids in sources]  # fmt: skip
                self._targets = [camera_from_object(c, context.scene) for c in targets]
            self._target_names = [c.name for c in targets]
            self._source_names = [cam.name for cam in source_objs]
            self._backend = backend_client(context, self.device)
        except (ValueError, BackendError, OSError) as err:
            report_error(self, err)
            return False
        self._model, self._cache_dir = bpy.path.abspath(model) if Path(bpy.path.abspath(model)).exists() else model, cache_dir
        return True

    def work(self, progress, cancelled):
        from ..client import transfer_labels
        from ..core.labels import one_hot

        to_render = [cam for cam, image, _ in self._sources_data if image is None]
        renders = iter(render_views(self._backend, self._arrays, self._sh, to_render, cancel_check=cancelled) if to_render else [])
        sources = [(image if image is not None else next(renders)[0], ids) for _, image, ids in self._sources_data]
        total = len(self._targets) * (2 if self.lift else 1)
        maps, _, _ = transfer_labels(
            self._backend, self._arrays, self._sh, self._targets, sources, self._model,
            num_labels=self._num_labels, cache_dir=self._cache_dir or None, k=self.k, feature_size=self.feature_size,
            progress=lambda done, n, *_: progress(done, total) if n else None, cancel_check=cancelled,
        )  # fmt: skip
        votes = None
        if self.lift:  # the sources' own labels are lifted as given
            known = [(cam, ids) for cam, _, ids in self._sources_data if cam is not None]
            cams = list(self._targets) + [cam for cam, _ in known]
            masks = [one_hot(m, self._num_labels) for m in maps] + [one_hot(ids, self._num_labels) for _, ids in known]
            votes = compute_votes(self._backend, self._lift_arrays, cams, masks, mode="labels", cancel_check=cancelled,
                                  progress=lambda done, n, *_: progress(len(self._targets) + done, total) if n else None)[0][: self._count]  # fmt: skip
        return maps, votes

    def finish(self, context, result) -> set:
        maps, votes = result
        obj = context.active_object
        by_name = {c.name: c for c in scene_cameras(obj, context.scene)}
        with _ObjectMode(obj):
            scene_labels.ensure_label_set(obj, self._num_labels)
            for name, ids in zip(self._target_names, maps, strict=True):
                scene_labels.set_camera_label_map(by_name[name], ids, transferred=True)
            for (_, _, ids), name in zip([s for s in self._sources_data if s[0] is not None], self._source_names, strict=True):
                scene_labels.set_camera_label_map(by_name[name], ids)  # the labels that were lifted for it
            message = f"Transferred labels from {len(self._sources_data)} source(s) to {len(maps)} cameras"
            if votes is not None:
                labels = scene_labels.store_label_votes(obj, votes)
                message += "; " + _label_summary(obj, labels, len(maps) + len(self._source_names))
        self.report({"INFO"}, message)
        return {"FINISHED"}


def _source_list(text: str) -> list[dict]:
    """The `sources_json` property: a list of {"image", "labels", "camera"} objects."""
    import json

    try:
        items = json.loads(text)
    except json.JSONDecodeError as err:
        raise LabelError(f"sources are not valid JSON ({err})") from None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise LabelError('sources must be a non-empty list of {"image", "labels", "camera"} objects')
    return items


class MASKSPLAT_OT_download_model(bpy.types.Operator):
    """Download DINOv2 weights (safetensors only) into a folder, for Transfer Labels (needs the network)"""

    bl_idname = "masksplat.download_model"
    bl_label = "Download Model"

    model_id: StringProperty(name="Model", default="facebook/dinov2-small")
    folder: StringProperty(name="Folder", subtype="DIR_PATH")

    def execute(self, context):
        from ..client import download_model
        from .backend_ops import backend_python, network_allowed

        if not network_allowed(self, "download the model"):
            return {"CANCELLED"}
        if not self.folder:
            self.report({"ERROR"}, "choose a folder for the model")
            return {"CANCELLED"}
        try:
            python, _ = backend_python(context)
            download_model(python, self.model_id, bpy.path.abspath(self.folder), allow_network=bpy.app.online_access)
        except (BackendError, OSError, ValueError) as err:
            return report_error(self, err)
        prefs = get_preferences(context)
        if prefs is not None:
            prefs.feature_model = bpy.path.abspath(self.folder)
        self.report({"INFO"}, f"Downloaded {self.model_id} to {self.folder}")
        return {"FINISHED"}


CLASSES = (
    MASKSPLAT_OT_add_label,
    MASKSPLAT_OT_remove_label,
    MASKSPLAT_OT_load_label_maps,
    MASKSPLAT_OT_compute_labels,
    MASKSPLAT_OT_select_label,
    MASKSPLAT_OT_transfer_labels,
    MASKSPLAT_OT_download_model,
)
