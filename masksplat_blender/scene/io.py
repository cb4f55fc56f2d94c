"""Plain functions behind the file operators, shared by the UI, batch jobs and tests."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from ..core.camera_files import load_cameras
from ..core.splat_io import (
    append_int_property,
    output_format,
    read_splats,
    splat_name,
    write_ply,
    write_ply_columns,
    write_splats,
)
from . import cameras as scene_cameras
from .splat_object import (
    AXES_MATRICES,
    create_splat_object,
    file_frame_matrix,
    is_splat_object,
    splat_columns_from_object,
    splat_data_from_object,
)


@dataclass
class FileReport:
    """What an import or export says: one summary line, and warnings (what was dropped, what
    a lossy format lost), each said once."""

    summary: str
    warnings: list[str] = field(default_factory=list)


def import_splats(
    context, filepath: str, drop_invalid: bool = False, axes: str = "FILE"
) -> tuple[bpy.types.Object, FileReport]:
    """Read a splat file and make it the active object. Bad files raise before anything is created."""
    if axes not in AXES_MATRICES:
        raise ValueError(f"unknown up axis '{axes}' (use one of {', '.join(AXES_MATRICES)})")
    start = time.perf_counter()
    data = read_splats(filepath, drop_invalid=drop_invalid)
    name = splat_name(filepath)
    obj = create_splat_object(data, name, context.collection or context.scene.collection, axes=axes)
    for other in context.view_layer.objects.selected:
        other.select_set(False)
    context.view_layer.objects.active = obj
    obj.select_set(True)
    seconds = time.perf_counter() - start
    summary = f"Imported {data.count:,} Gaussians (SH degree {data.sh_degree}) from {Path(filepath).name} in {seconds:.2f} s"
    warnings = list(getattr(data, "warnings", []))
    if getattr(data, "n_dropped", 0):
        summary += f"; dropped {data.n_dropped:,} Gaussians with NaN or Inf values"
    return obj, FileReport(summary, warnings)


def splat_object_for_export(context) -> bpy.types.Object | None:
    obj = context.active_object
    return obj if is_splat_object(obj) else None


def export_splats(
    obj: bpy.types.Object, filepath: str, apply_transform: bool = True, which: str = "ALL", label_property: bool = False
) -> FileReport:
    """Write the object's Gaussians (all, or only the selected or unselected ones) to `filepath`,
    in the format its extension names (.ply, .compressed.ply, .spz).

    With `label_property`, each Gaussian's label (`ms_label`, -1 unseen) is appended last
    as an int32 property (or refreshed, when the file already had one); only PLY has room for it.
    """
    if obj is None or not is_splat_object(obj):
        raise ValueError("select a splat object to export (import one with File > Import > Gaussian Splats)")
    fmt = output_format(filepath)
    if label_property and fmt.key != "ply":
        raise ValueError(f"{fmt.label} has no place for labels; export to .ply to write them")
    if obj.mode == "EDIT":
        obj.update_from_editmode()
    keep = None
    if which != "ALL":
        keep = np.zeros(len(obj.data.vertices), dtype=bool)
        obj.data.vertices.foreach_get("select", keep)
        if which == "UNSELECTED":
            keep = ~keep
        if not keep.any():
            raise ValueError(f"no {which.lower()} Gaussians to export")
    if fmt.key != "ply":
        data = splat_data_from_object(obj, apply_transform=apply_transform)
        warnings = write_splats(filepath, data, keep=keep)
        kept = data.count if keep is None else int(np.count_nonzero(keep))
        return FileReport(f"Exported {kept:,} Gaussians to {Path(filepath).name} ({fmt.label})", warnings)
    if label_property and "ms_label" not in obj.data.attributes:
        raise ValueError(f"'{obj.name}' has no labels to write: run Compute Labels or Transfer Labels first")
    labels = None
    if label_property:
        labels = np.empty(len(obj.data.vertices), dtype=np.int32)
        obj.data.attributes["ms_label"].data.foreach_get("value", labels)
    if apply_transform and not np.array_equal(file_frame_matrix(obj), np.eye(4)):
        data = splat_data_from_object(obj, apply_transform=True)  # baking needs the whole table
        if labels is not None and "ms_label" not in data.vertices.dtype.names:
            data.vertices = append_int_property(data.vertices, "ms_label", labels, data.byte_order)
        write_ply(filepath, data, keep=keep)
        count = data.count
    else:  # untouched placement: stream the properties straight to the file
        dtype, columns, layout = splat_columns_from_object(obj)
        if labels is not None:
            if "ms_label" in dtype.names:
                columns["ms_label"] = labels.astype(dtype.fields["ms_label"][0])
            else:
                dtype = np.dtype(dtype.descr + [("ms_label", f"{layout['byte_order']}i4")])
                columns["ms_label"] = labels
        write_ply_columns(filepath, dtype, columns, layout["byte_order"], layout.get("comments", []), keep=keep)
        count = len(labels) if labels is not None else len(obj.data.vertices)
    kept = count if keep is None else int(np.count_nonzero(keep))
    return FileReport(f"Exported {kept:,} Gaussians to {Path(filepath).name}")


def import_cameras(
    context, filepath: str, axes: str = "FILE", assign_to_active: bool = True
) -> tuple[bpy.types.Collection, int]:
    """Make Blender cameras for a camera file in their own collection.

    With `assign_to_active` and a splat object active, the cameras become that object's
    camera collection and take its up axis, so splat and cameras turn together.
    """
    cameras = load_cameras(filepath)
    target = context.active_object if assign_to_active and is_splat_object(context.active_object) else None
    if target is not None:
        axes = json.loads(target.masksplat.layout_json).get("axes", axes)
    if axes not in AXES_MATRICES:
        raise ValueError(f"unknown up axis '{axes}'")
    base = Path(filepath.rstrip("/\\"))
    label = base.stem if base.suffix else base.name
    collection = scene_cameras.named_collection(context.scene, (target.name if target else label) + scene_cameras.CAMERA_COLLECTION_SUFFIX)
    turn = Matrix(AXES_MATRICES[axes].tolist())
    for cam in cameras:
        cam_obj = scene_cameras.camera_object_from_camera(cam, collection)
        cam_obj.matrix_world = turn @ cam_obj.matrix_world
    if target is not None:
        target.masksplat.camera_collection = collection
    if cameras and context.scene.camera is None:
        context.scene.camera = collection.objects[0]
    return collection, len(cameras)


def assign_cameras(context, collection_name: str | None = None) -> str:
    obj = context.active_object
    if not is_splat_object(obj):
        raise ValueError("make a splat object active first")
    collection = bpy.data.collections.get(collection_name) if collection_name else context.collection
    if collection is None:
        raise ValueError(f"there is no collection named '{collection_name}'")
    if not any(o.type == "CAMERA" for o in collection.all_objects):
        raise ValueError(f"collection '{collection.name}' holds no cameras")
    obj.masksplat.camera_collection = collection
    return collection.name
