"""Label sets, per-camera label maps and K-label votes on splat objects.

The label set lives on the object (`obj.masksplat.labels`: label 0 is background, then
up to 32 named labels). A camera's label map is a Blender image
(`camera_object.masksplat.label_map`, packed so it is saved with the .blend) whose red
channel holds label id / 255, so it survives saving as an 8-bit PNG. Votes are point
attributes `ms_vote_<k>` (float) and the label `ms_label` (int, -1 where no view saw the
Gaussian), so they are saved with the .blend and survive Undo.
"""

from __future__ import annotations

import json
from pathlib import Path

import bpy
import numpy as np

from ..core.labels import (
    MAX_LABELS,
    LabelError,
    check_label_map,
    default_colours,
    label_ids_from_pixels,
    one_hot,
)
from ..core.selection import combine
from ..core.votes import argmax_labels
from .cameras import camera_from_object, camera_resolution
from .display import LABEL_COLOUR, set_show_labels
from .masks import camera_image, read_image_file, store_camera_image
from .selection import scene_cameras, set_vertex_selection, with_occluders, world_gaussians, world_sh

LABEL_ATTRIBUTE = "ms_label"
VOTE_PREFIX = "ms_vote_"
UNSEEN_COLOUR = (0.05, 0.05, 0.05)


def ensure_label_set(obj: bpy.types.Object, count: int, names: list[str] | None = None) -> None:
    """Grow the label set to `count` ids (background first); existing labels are kept."""
    if count > MAX_LABELS + 1:
        raise LabelError(f"at most {MAX_LABELS} labels (plus background) are supported, {count - 1} were asked for")
    labels = obj.masksplat.labels
    colours = default_colours(max(count, len(labels)))
    while len(labels) < count:
        index = len(labels)
        item = labels.add()
        item.name = names[index] if names and index < len(names) else ("Background" if index == 0 else f"Label {index}")
        item.color = colours[index]


def label_names(obj: bpy.types.Object) -> list[str]:
    return [item.name for item in obj.masksplat.labels]


def splat_for_camera(context, cam_obj) -> bpy.types.Object | None:
    """The splat object whose label set painting on `cam_obj` uses: the active splat, else
    the splat whose camera collection holds the camera."""
    from .splat_object import is_splat_object

    active = context.active_object
    if is_splat_object(active):
        return active
    for obj in context.scene.objects:
        collection = obj.masksplat.camera_collection if is_splat_object(obj) else None
        if collection is not None and cam_obj.name in collection.all_objects:
            return obj
    return None


TRANSFERRED_KEY = "masksplat_transferred"  # image property: the map came from Transfer Labels


def set_camera_label_map(cam_obj: bpy.types.Object, ids: np.ndarray, transferred: bool = False) -> bpy.types.Image:
    """Store label ids [H, W] (top row first) on the camera as a packed image; `transferred`
    marks maps made by Transfer Labels (painted and loaded ones are its sources)."""
    width, height, _, _ = camera_resolution(cam_obj, bpy.context.scene)
    ids = np.asarray(ids)
    check_label_map(cam_obj.name, ids, MAX_LABELS + 1, width, height)
    image = store_camera_image(cam_obj, "label_map", "MaskSplat Labels", ids.astype(np.float32) / 255.0)
    image[TRANSFERRED_KEY] = bool(transferred)
    return image


def has_own_labels(cam_obj: bpy.types.Object) -> bool:
    """True when the camera's label map was painted or loaded, not transferred."""
    image = cam_obj.masksplat.label_map
    return image is not None and not image.get(TRANSFERRED_KEY, False)


def camera_label_map(cam_obj: bpy.types.Object) -> np.ndarray | None:
    """int32 [H, W] label ids of a camera (top row first), or None without a label map."""
    pixels = camera_image(cam_obj, "label_map")
    return None if pixels is None else label_ids_from_pixels(pixels, f"label map of camera '{cam_obj.name}'")


def read_label_file(path) -> np.ndarray:
    """int32 [H, W] label ids from an image file of ids (8-bit PNG: 0 background, 1..K)."""
    return label_ids_from_pixels(read_image_file(path), Path(path).name)


def load_source(image_path, labels_path, cam_obj, scene) -> tuple[np.ndarray | None, np.ndarray]:
    """The annotated source of a label transfer: (image [H, W, 3] uint8, or None to render it
    from `cam_obj`; label ids [H, W]), checked against each other and the camera."""
    image = None
    if image_path:
        pixels = read_image_file(image_path)
        pixels = pixels[:, :, :3] if pixels.ndim == 3 and pixels.shape[2] >= 3 else np.repeat(pixels.reshape(*pixels.shape[:2], -1)[:, :, :1], 3, axis=2)
        image = np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if labels_path:
        ids = read_label_file(labels_path)
    elif cam_obj is not None and cam_obj.masksplat.label_map is not None:
        ids = camera_label_map(cam_obj)
    else:
        raise LabelError("the source has no labels: give a label file or paint labels on the source camera")
    if image is not None and image.shape[:2] != ids.shape:
        raise LabelError(f"the source labels are {ids.shape[1]}x{ids.shape[0]}, the source image {image.shape[1]}x{image.shape[0]}")
    if cam_obj is not None:
        width, height, _, _ = camera_resolution(cam_obj, scene)
        if ids.shape != (height, width):
            raise LabelError(f"the source labels are {ids.shape[1]}x{ids.shape[0]}, camera '{cam_obj.name}' is {width}x{height}")
    if not ids.any():
        raise LabelError("the source labels are all background (0): paint at least one label")
    if int(ids.max()) > MAX_LABELS:
        raise LabelError(f"the source labels use label {int(ids.max())}; at most {MAX_LABELS} labels (plus background) are supported")
    return image, ids


def labelled_cameras(obj, scene) -> list[bpy.types.Object]:
    return [cam for cam in scene_cameras(obj, scene) if cam.masksplat.label_map is not None]


class LabelPlan:
    """A K-label vote computation gathered from Blender on the main thread (a plan as
    scene.selection.VotePlan describes: run, then apply)."""

    def __init__(self, obj, scene, num_labels: int | None = None):
        cams = labelled_cameras(obj, scene)
        if not cams:
            raise LabelError(f"no camera of '{obj.name}' has a label map yet: load, paint or transfer labels first")
        maps = [camera_label_map(cam) for cam in cams]
        largest = max(int(m.max(initial=0)) for m in maps)
        self.num_labels = max(num_labels or len(obj.masksplat.labels), largest + 1, 2)
        if self.num_labels > MAX_LABELS + 1:
            raise LabelError(f"label maps use label {largest}, but at most {MAX_LABELS} labels (plus background) are supported")
        self.cameras = [camera_from_object(cam, scene) for cam in cams]
        for cam, ids in zip(self.cameras, maps, strict=True):
            check_label_map(cam.name, ids, self.num_labels, cam.width, cam.height)
        self.maps = maps
        self.count, self.arrays = with_occluders(obj, scene)

    def run(self, backend, progress=None, cancelled=None) -> np.ndarray:
        """Votes [N, K] over every labelled view in one backend request."""
        masks = [one_hot(ids, self.num_labels) for ids in self.maps]
        return backend.votes(self.arrays, self.cameras, masks, mode="labels", progress=progress, cancelled=cancelled)[: self.count]

    def apply(self, obj, scene, votes: np.ndarray) -> str:
        return label_summary(obj, store_label_votes(obj, votes), len(self.cameras))


def label_summary(obj, labels: np.ndarray, views: int) -> str:
    """One line: how many Gaussians got labels from how many views, per label name."""
    names = label_names(obj)
    counts = np.bincount(labels[labels >= 0], minlength=len(names))
    parts = ", ".join(f"{names[k] if k < len(names) else k}: {int(c):,}" for k, c in enumerate(counts) if c)
    return f"Labelled {int((labels >= 0).sum()):,} of {labels.size:,} Gaussians from {views} views ({parts}); {int((labels < 0).sum()):,} unseen"


def parse_sources(text: str) -> list[dict]:
    """Transfer Labels' `sources_json`: a non-empty list of {"image", "labels", "camera"} objects."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as err:
        raise LabelError(f"sources are not valid JSON ({err})") from None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise LabelError('sources must be a non-empty list of {"image", "labels", "camera"} objects')
    return items


def _abspath(path: str) -> str | None:
    return bpy.path.abspath(path) if path else None


class TransferPlan:
    """Transfer Labels gathered from Blender on the main thread (a plan as
    scene.selection.VotePlan describes): the annotated sources, the cameras to carry their
    labels to, the Gaussians. `run` renders the sources that have no image, carries the
    labels to the targets by patch features and (with `lift`) lifts every map to the
    Gaussians; `apply` stores the maps on the cameras and the votes on the object.

    `sources`: {"camera", "image", "labels"} dicts (file paths; a camera name), or none:
    then every camera whose labels were painted or loaded (not transferred) is a source,
    so painting a second view where the first transfer went wrong and running again helps.
    """

    def __init__(self, obj, scene, sources: list[dict], model: str, cache_dir: str = "", k: int = 5,
                 feature_size: int = 448, lift: bool = True):  # fmt: skip
        if not model:
            raise LabelError("no feature model: set Preferences > Add-ons > MaskSplat > Feature Model (a DINOv2 folder or id)")
        cams = scene_cameras(obj, scene)
        found = self._sources(obj, scene, cams, sources)
        source_objs = [cam for cam, _, _ in found if cam is not None]
        targets = [c for c in cams if c not in source_objs]
        if not targets:
            raise LabelError(f"'{obj.name}' has no other camera to transfer the labels to")
        self.num_labels = max(len(obj.masksplat.labels), *(int(ids.max()) + 1 for _, _, ids in found), 2)
        if self.num_labels > MAX_LABELS + 1:
            raise LabelError(f"at most {MAX_LABELS} labels (plus background) are supported")
        self.arrays, self.sh = world_gaussians(obj), world_sh(obj)  # renders: the object alone
        self.count, self.lift_arrays = with_occluders(obj, scene)  # votes: other splats occlude
        self.sources = [(camera_from_object(cam, scene) if cam is not None else None, image, ids) for cam, image, ids in found]
        self.targets = [camera_from_object(c, scene) for c in targets]
        self.target_names, self.source_names = [c.name for c in targets], [c.name for c in source_objs]
        absolute = bpy.path.abspath(model)
        self.model = absolute if Path(absolute).exists() else model
        self.options = {"num_labels": self.num_labels, "cache_dir": cache_dir or None, "k": k, "feature_size": feature_size}
        self.lift = lift

    @staticmethod
    def _sources(obj, scene, cams, sources: list[dict]) -> list[tuple]:
        """[(camera object or None, image [H, W, 3] uint8 or None (render it), label ids [H, W])]."""
        if not sources:
            painted = [c for c in cams if has_own_labels(c)]
            if not painted:
                raise LabelError("paint or load labels on a camera first, or give a source image and its labels")
            return [(c, None, load_source(None, None, c, scene)[1]) for c in painted]
        found = []
        for item in sources:
            cam_obj = None
            if item.get("camera"):
                cam_obj = next((c for c in cams if c.name == item["camera"]), None)
                if cam_obj is None:
                    raise LabelError(f"'{obj.name}' has no camera named '{item['camera']}'")
            found.append((cam_obj, *load_source(_abspath(item.get("image", "")), _abspath(item.get("labels", "")), cam_obj, scene)))
        return found

    def run(self, backend, progress=None, cancelled=None) -> tuple[list[np.ndarray], np.ndarray | None]:
        """(a label map per target camera, votes [N, K] of the object or None without `lift`)."""
        to_render = [cam for cam, image, _ in self.sources if image is None]
        renders = iter(backend.renders(self.arrays, self.sh, to_render, cancelled=cancelled) if to_render else [])
        sources = [(image if image is not None else next(renders), ids) for _, image, ids in self.sources]
        total = len(self.targets) * (2 if self.lift else 1)

        def from_step(first: int):  # the transfer is the first half of the steps, the lift the second
            return None if progress is None else (lambda done, _: progress(first + done, total))

        maps = backend.transfer(self.arrays, self.sh, self.targets, sources, self.model, progress=from_step(0),
                                cancelled=cancelled, **self.options)  # fmt: skip
        if not self.lift:
            return maps, None
        known = [(cam, ids) for cam, _, ids in self.sources if cam is not None]  # the sources' own labels, as given
        cams = list(self.targets) + [cam for cam, _ in known]
        masks = [one_hot(m, self.num_labels) for m in maps] + [one_hot(ids, self.num_labels) for _, ids in known]
        votes = backend.votes(self.lift_arrays, cams, masks, mode="labels", progress=from_step(len(self.targets)), cancelled=cancelled)
        return maps, votes[: self.count]

    def apply(self, obj, scene, result) -> str:
        maps, votes = result
        by_name = {c.name: c for c in scene_cameras(obj, scene)}
        ensure_label_set(obj, self.num_labels)
        for name, ids in zip(self.target_names, maps, strict=True):
            set_camera_label_map(by_name[name], ids, transferred=True)
        for (_, _, ids), name in zip([s for s in self.sources if s[0] is not None], self.source_names, strict=True):
            set_camera_label_map(by_name[name], ids)  # the labels that were lifted for it
        message = f"Transferred labels from {len(self.sources)} source(s) to {len(maps)} cameras"
        if votes is not None:
            labels = store_label_votes(obj, votes)
            message += "; " + label_summary(obj, labels, len(maps) + len(self.source_names))
        return message


def store_label_votes(obj: bpy.types.Object, votes: np.ndarray) -> np.ndarray:
    """Write `ms_vote_<k>` and `ms_label`; grow the label set to cover every column."""
    mesh = obj.data
    votes = np.asarray(votes, dtype=np.float32)
    ensure_label_set(obj, votes.shape[1])
    for name in [a.name for a in mesh.attributes if a.name.startswith(VOTE_PREFIX)]:
        if int(name[len(VOTE_PREFIX) :]) >= votes.shape[1]:
            mesh.attributes.remove(mesh.attributes[name])
    for k in range(votes.shape[1]):
        attribute = mesh.attributes.get(f"{VOTE_PREFIX}{k}") or mesh.attributes.new(f"{VOTE_PREFIX}{k}", "FLOAT", "POINT")
        attribute.data.foreach_set("value", np.ascontiguousarray(votes[:, k]))
    labels = argmax_labels(votes)
    attribute = mesh.attributes.get(LABEL_ATTRIBUTE) or mesh.attributes.new(LABEL_ATTRIBUTE, "INT", "POINT")
    attribute.data.foreach_set("value", labels)
    refresh_label_display(obj)
    return labels


def has_labels(obj) -> bool:
    return obj is not None and obj.type == "MESH" and LABEL_ATTRIBUTE in obj.data.attributes


def stored_labels(obj) -> np.ndarray:
    values = np.empty(len(obj.data.vertices), dtype=np.int32)
    obj.data.attributes[LABEL_ATTRIBUTE].data.foreach_get("value", values)
    return values


def stored_label_votes(obj) -> np.ndarray:
    """float32 [N, K] votes from the `ms_vote_<k>` attributes."""
    names = sorted((a.name for a in obj.data.attributes if a.name.startswith(VOTE_PREFIX)), key=lambda n: int(n[len(VOTE_PREFIX) :]))
    votes = np.empty((len(obj.data.vertices), len(names)), dtype=np.float32)
    for k, name in enumerate(names):
        column = np.empty(len(obj.data.vertices), dtype=np.float32)
        obj.data.attributes[name].data.foreach_get("value", column)
        votes[:, k] = column
    return votes


def select_label(obj: bpy.types.Object, label: int, action: str = "SET") -> int:
    """Select the Gaussians of one label: SET replaces the selection, ADD extends it,
    REMOVE takes them out. Returns how many Gaussians carry the label."""
    from .selection import vertex_selection

    if not has_labels(obj):
        raise LabelError(f"'{obj.name}' has no labels yet: run Compute Labels first")
    chosen = stored_labels(obj) == label
    set_vertex_selection(obj, combine(vertex_selection(obj), chosen, action))
    return int(chosen.sum())


def refresh_label_display(obj: bpy.types.Object) -> None:
    """Write each Gaussian's label colour (`ms_label_color`) and switch the display to it
    when "Colour by Label" is on (one array write, no per-vertex Python)."""
    show = obj.masksplat.show_labels and has_labels(obj)
    if show:
        colours = np.array([tuple(item.color) for item in obj.masksplat.labels] or [(0.5, 0.5, 0.5)], dtype=np.float32)
        labels = stored_labels(obj)
        table = np.vstack([colours, np.array(UNSEEN_COLOUR, dtype=np.float32)])  # -1 indexes the last row
        per_point = table[np.where(labels < len(colours), labels, -1)]
        mesh = obj.data
        attribute = mesh.attributes.get(LABEL_COLOUR) or mesh.attributes.new(LABEL_COLOUR, "FLOAT_VECTOR", "POINT")
        attribute.data.foreach_set("vector", np.ascontiguousarray(per_point).ravel())
        mesh.update()
    set_show_labels(obj, show)
