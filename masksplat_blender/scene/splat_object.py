"""Splat objects: a vertices-only mesh whose point attributes carry every PLY property.

Positions live in Blender's own `position` (so Blender's tools move them); every other
PLY property is a point attribute of the same name. A name Blender cannot hold as a
point attribute of its own (longer than Blender allows, not UTF-8, one of Blender's
built-in attributes such as `position`, `sharp_face` or `.select_vert`, or one MaskSplat
writes itself, such as `ms_fg`) gets an attribute named `ply_<index>_<name>` instead;
the file layout (names, types, byte order, and that name map) is kept on the object so
export writes back exactly what was read.
All transfers go through `foreach_get`/`foreach_set` on whole arrays: no Python loop
over vertices.
"""

from __future__ import annotations

import json

import bpy
import numpy as np
from mathutils import Matrix

from ..core.splat_io import SplatData, iter_columns
from ..core.transform import apply_transform_to_vertices
from . import display

POSITION_FIELDS = ("x", "y", "z")
MAX_ATTRIBUTE_NAME = 63  # bytes; Blender 4.2 holds 63, later versions 67
# Blender's own mesh attributes: a PLY property of one of these names would be taken as (or refused for) it.
BLENDER_ATTRIBUTES = {
    "position", "material_index", "sharp_face", "sharp_edge", "crease_vert", "crease_edge",
    "bevel_weight_vert", "bevel_weight_edge", "custom_normal", "uv_seam", "normal",
}  # fmt: skip
OWN_PREFIX, OWN_KEPT = "ms_", ("ms_label",)  # MaskSplat writes ms_* (votes, labels); ms_label round-trips on purpose

# Import-time turns from a file's up axis to Blender's Z up (object rotations, not data
# changes): export undoes them, so only what the user did in Blender is baked.
AXES_MATRICES = {
    "FILE": np.eye(4),
    "NEG_Y_UP": np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=np.float64),
    "Y_UP": np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.float64),
}


class SplatObjectError(ValueError):
    """A splat object cannot be exported or used as asked."""


def _attribute_type(dtype: np.dtype) -> str:
    if dtype.kind == "f":
        return "FLOAT"
    if dtype.kind in "iu":
        return "INT"
    raise SplatObjectError(f"property type {dtype} cannot be stored as a Blender attribute")


def _to_attribute_values(column: np.ndarray) -> np.ndarray:
    """A native float32 or int32 array that Blender takes as a buffer, losslessly where possible."""
    if column.dtype.kind == "f":
        return np.ascontiguousarray(column, dtype=np.float32)
    if column.dtype.itemsize == 4 and column.dtype.kind == "u":
        # uint32 keeps its bits in an INT attribute; export views them back.
        return np.ascontiguousarray(column.astype(column.dtype.newbyteorder("="))).view(np.int32)
    return np.ascontiguousarray(column, dtype=np.int32)


def _from_attribute_values(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "u" and dtype.itemsize == 4:
        return values.view(np.uint32)
    return values


def _holds(name: str) -> bool:
    """Whether a PLY property can be a point attribute of the same name."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # bytes that are not UTF-8 (kept as surrogates)
        return False
    return (
        0 < size <= MAX_ATTRIBUTE_NAME and not name.startswith(".") and name not in BLENDER_ATTRIBUTES
        and (not name.startswith(OWN_PREFIX) or name in OWN_KEPT)
    )  # fmt: skip


def attribute_names(fields) -> dict[str, str]:
    """{PLY property: attribute name} for the properties that need another name (see the module
    docstring); every other property keeps its own. Names never collide."""
    taken = set(fields)
    mapped = {}
    for index, field in enumerate(fields):
        if field in POSITION_FIELDS or _holds(field):
            continue
        safe = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in field).strip("_")
        name, extra = f"ply_{index}_{safe}"[:MAX_ATTRIBUTE_NAME], 0
        while name in taken:
            extra += 1
            name = f"ply_{index}_{extra}"
        mapped[field] = name
        taken.add(name)
    return mapped


def attribute_name(layout: dict, field: str) -> str:
    """The point attribute that holds PLY property `field` of an object with this layout."""
    return layout.get("attributes", {}).get(field, field)


def layout_of(data: SplatData, axes: str = "FILE") -> dict:
    """What export needs to rebuild the file: field names and exact dtypes, byte order, comments,
    and the attribute of each property whose name Blender cannot hold."""
    names = data.vertices.dtype.names
    return {
        "fields": [[name, data.vertices.dtype.fields[name][0].str] for name in names],
        "byte_order": data.byte_order,
        "comments": list(data.comments),
        "axes": axes,
        "attributes": attribute_names(names),
    }


def create_splat_object(
    data: SplatData, name: str, collection: bpy.types.Collection, axes: str = "FILE"
) -> bpy.types.Object:
    """Make a splat object from file data and link it into `collection`.

    On any failure nothing is left behind (no mesh, object or node group).
    """
    vertices = data.vertices
    n = int(vertices.shape[0])
    layout = layout_of(data, axes)
    mesh = bpy.data.meshes.new(name)
    obj = None
    try:
        mesh.vertices.add(n)
        if ".select_vert" in mesh.attributes:  # new vertices come selected: a new splat starts with none
            mesh.attributes.remove(mesh.attributes[".select_vert"])
        positions = np.empty((n, 3), dtype=np.float32)
        others = [field for field in vertices.dtype.names if field not in POSITION_FIELDS]
        for field, column in iter_columns(vertices, [*POSITION_FIELDS, *others]):
            if field in POSITION_FIELDS:
                positions[:, POSITION_FIELDS.index(field)] = column
                if field == POSITION_FIELDS[-1]:
                    mesh.attributes["position"].data.foreach_set("vector", positions.ravel())
                continue
            attribute = _new_attribute(mesh, attribute_name(layout, field), field, _attribute_type(column.dtype))
            attribute.data.foreach_set("value", _to_attribute_values(column))
        del positions
        mesh.update()
        obj = bpy.data.objects.new(name, mesh)
        props = obj.masksplat
        props.is_splat = True
        props.source_path = data.source
        props.sh_degree = data.sh_degree
        props.layout_json = json.dumps(layout)
        obj.matrix_world = Matrix(AXES_MATRICES[axes].tolist())
        collection.objects.link(obj)
        display.setup_display(obj)
    except BaseException:
        if obj is not None:
            bpy.data.objects.remove(obj)
        bpy.data.meshes.remove(mesh)
        raise
    return obj


def _new_attribute(mesh, name: str, field: str, data_type: str):
    """A new point attribute called exactly `name`; refused with the property's name where
    this Blender will not hold it (a name it keeps for itself that MaskSplat does not know)."""
    attribute = mesh.attributes.new(name, data_type, "POINT")
    if attribute is None or attribute.name != name:
        if attribute is not None:
            mesh.attributes.remove(attribute)
        raise SplatObjectError(f"PLY property '{field}' cannot be stored as a Blender attribute named '{name}'")
    return attribute


def is_splat_object(obj: bpy.types.Object | None) -> bool:
    return obj is not None and obj.type == "MESH" and bool(obj.masksplat.is_splat) and bool(obj.masksplat.layout_json)


def splat_columns_from_object(obj: bpy.types.Object) -> tuple[np.dtype, dict[str, np.ndarray], dict]:
    """(file dtype, {property: values in that dtype}, layout) of the object's Gaussians:
    one raw `foreach_get` per property, no per-vertex Python."""
    if not is_splat_object(obj):
        raise SplatObjectError(f"'{obj.name}' is not a MaskSplat splat object (import one with File > Import)")
    layout = json.loads(obj.masksplat.layout_json)
    dtype = np.dtype([(name, np.dtype(code)) for name, code in layout["fields"]])
    mesh = obj.data
    n = len(mesh.vertices)
    if n == 0:
        raise SplatObjectError(f"'{obj.name}' has no Gaussians left to export")
    positions = np.empty(n * 3, dtype=np.float32)
    mesh.attributes["position"].data.foreach_get("vector", positions)
    positions = positions.reshape(n, 3)
    columns = {field: positions[:, axis] for axis, field in enumerate(POSITION_FIELDS)}
    for field in dtype.names:
        if field in POSITION_FIELDS:
            continue
        attribute = mesh.attributes.get(attribute_name(layout, field))
        if attribute is None:
            raise SplatObjectError(f"'{obj.name}' lost its '{field}' attribute; it cannot be written as a splat file")
        values = np.empty(n, dtype=np.float32 if attribute.data_type == "FLOAT" else np.int32)
        attribute.data.foreach_get("value", values)
        columns[field] = _from_attribute_values(values, dtype.fields[field][0])
    return dtype, columns, layout


def splat_data_from_object(obj: bpy.types.Object, apply_transform: bool = True) -> SplatData:
    """The object's current Gaussians as file data, in the layout they were read with.

    With `apply_transform`, the object's world transform is baked into positions,
    rotations, log-scales and SH (identity gives bit-identical values).
    """
    dtype, columns, layout = splat_columns_from_object(obj)
    vertices = np.empty(len(columns[dtype.names[0]]), dtype=dtype)
    for field in dtype.names:
        vertices[field] = columns[field]
    data = SplatData(
        vertices=vertices,
        sh_degree=int(obj.masksplat.sh_degree),
        source=obj.masksplat.source_path,
        byte_order=layout["byte_order"],
        comments=list(layout.get("comments", [])),
    )
    if apply_transform:
        matrix = file_frame_matrix(obj)
        if not np.array_equal(matrix, np.eye(4)):
            try:
                data.vertices = apply_transform_to_vertices(data.vertices, data.sh_degree, matrix)
            except ValueError as err:
                raise SplatObjectError(f"'{obj.name}': {err}") from err
    return data


def file_frame_matrix(obj: bpy.types.Object) -> np.ndarray:
    """The object's transform expressed in its file's frame (identity right after import)."""
    layout = json.loads(obj.masksplat.layout_json or "{}")
    axes = AXES_MATRICES[layout.get("axes", "FILE")]
    world = np.array(obj.matrix_world, dtype=np.float64)
    # Blender stores the turn as a float32 euler: equal up to rounding means untouched.
    if np.allclose(world, axes, rtol=0.0, atol=1e-6):
        return np.eye(4)
    return np.linalg.inv(axes) @ world


# Point attribute types and how foreach_get/set sees them: (property, numpy dtype, width).
_ATTRIBUTE_LAYOUT = {
    "FLOAT": ("value", np.float32, 1), "INT": ("value", np.int32, 1), "BOOLEAN": ("value", np.bool_, 1),
    "INT8": ("value", np.int32, 1), "FLOAT_VECTOR": ("vector", np.float32, 3), "FLOAT2": ("vector", np.float32, 2),
    "FLOAT_COLOR": ("color", np.float32, 4), "BYTE_COLOR": ("color", np.float32, 4), "QUATERNION": ("value", np.float32, 4),
    "INT32_2D": ("value", np.int32, 2),
}  # fmt: skip


def keep_vertices(obj: bpy.types.Object, keep: np.ndarray) -> None:
    """Keep only the Gaussians where `keep` is True, in order, with every point attribute.

    Whole-array copies instead of bmesh, so deleting from millions of Gaussians stays quick.
    """
    mesh = obj.data
    n = len(mesh.vertices)
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (n,):
        raise SplatObjectError(f"keep mask has {keep.shape} entries, '{obj.name}' has {n} Gaussians")
    if len(mesh.edges) or len(mesh.polygons):
        raise SplatObjectError(f"'{obj.name}' has edges or faces; a splat object holds vertices only")
    saved = []
    for attribute in list(mesh.attributes):
        if attribute.domain != "POINT":
            continue
        layout = _ATTRIBUTE_LAYOUT.get(attribute.data_type)
        if layout is None:
            raise SplatObjectError(f"attribute '{attribute.name}' has type {attribute.data_type}, which MaskSplat cannot carry over")
        prop, dtype, width = layout
        values = np.empty(n * width, dtype=dtype)
        attribute.data.foreach_get(prop, values)
        saved.append((attribute.name, attribute.data_type, prop, values.reshape(n, width)[keep].ravel()))
    mesh.clear_geometry()
    mesh.vertices.add(int(keep.sum()))
    for name, data_type, prop, values in saved:
        attribute = mesh.attributes.get(name) or mesh.attributes.new(name, data_type, "POINT")
        attribute.data.foreach_set(prop, np.ascontiguousarray(values))
    mesh.update()
