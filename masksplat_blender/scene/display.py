"""Viewport display of splat objects: coloured points sized like the splats.

Geometry Nodes turn the vertices into points (radius from the largest scale), and store
the DC colour and sigmoid(opacity) as attributes that one shared material reads. All
per-point work runs in Blender's node evaluator, never in Python. Selected Gaussians are
tinted (core/tint) from the `ms_selected` attribute the selection functions keep.
"""

from __future__ import annotations

import time

import bpy
import numpy as np

from ..core.splat_io import SH_C0
from ..core.tint import SELECTION_TINT, TINT_STRENGTH

NODE_GROUP_NAME = "MaskSplat Display"
MATERIAL_NAME = "MaskSplat Splat"
MODIFIER_NAME = "MaskSplat Display"
SHOW_LABELS = "Show Labels"
SHOW_SELECTION = "Show Selection"
LABEL_COLOUR = "ms_label_color"
SHOWN_SELECTION = "ms_selected"  # float point attribute, 1 = selected (Geometry Nodes cannot read ".select_vert")
POINT_SIZE = "Point Size"
POINTS_ALONE = 1.5  # point radius in standard deviations when the points are the display
POINTS_UNDER_SPLATS = 0.02  # under the Gaussian display: too small to see, still there to click


def _named_attribute(tree, name: str, location, data_type: str = "FLOAT"):
    node = tree.nodes.new("GeometryNodeInputNamedAttribute")
    node.data_type = data_type
    node.inputs["Name"].default_value = name
    node.location = location
    return node.outputs["Attribute"]


def _operation(tree, node_type: str, operation: str, inputs: dict, location):
    """A math node's result: each of `inputs` ({index or name: value}) is linked when it is a
    socket, set when it is a number or a vector, left alone when None."""
    node = tree.nodes.new(node_type)
    node.operation = operation
    node.location = location
    for key, value in inputs.items():
        if value is None:
            continue
        if isinstance(value, (int, float, tuple)):
            node.inputs[key].default_value = value
        else:
            tree.links.new(value, node.inputs[key])
    return node.outputs[0]


def _math(tree, operation: str, a, b=None, location=(0, 0)):
    return _operation(tree, "ShaderNodeMath", operation, {0: a, 1: b}, location)


def _vector_math(tree, operation: str, inputs: dict, location):
    return _operation(tree, "ShaderNodeVectorMath", operation, inputs, location)


def _store(tree, geometry, name: str, data_type: str, value, location):
    """Store `value` as the point attribute `name` of `geometry`; the geometry out."""
    node = tree.nodes.new("GeometryNodeStoreNamedAttribute")
    node.data_type = data_type
    node.domain = "POINT"
    node.location = location
    node.inputs["Name"].default_value = name
    tree.links.new(geometry, node.inputs["Geometry"])
    tree.links.new(value, node.inputs["Value"])
    return node.outputs["Geometry"]


def _build_node_group() -> bpy.types.NodeTree:
    tree = bpy.data.node_groups.new(NODE_GROUP_NAME, "GeometryNodeTree")
    tree.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    size = tree.interface.new_socket(POINT_SIZE, in_out="INPUT", socket_type="NodeSocketFloat")
    size.default_value = POINTS_ALONE
    size.min_value = 0.0
    size.description = "Point radius in standard deviations of each splat"
    show_labels = tree.interface.new_socket(SHOW_LABELS, in_out="INPUT", socket_type="NodeSocketBool")
    show_labels.description = "Colour each point by its label (the ms_label_color attribute) instead of its own colour"
    show_selection = tree.interface.new_socket(SHOW_SELECTION, in_out="INPUT", socket_type="NodeSocketBool")
    show_selection.default_value = True
    show_selection.description = "Tint the selected points"
    tree.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = tree.nodes, tree.links
    group_in = nodes.new("NodeGroupInput")
    group_in.location = (-900, 0)
    group_out = nodes.new("NodeGroupOutput")
    group_out.location = (700, 0)

    # Radius: exp(max(log-scale)) * Point Size.
    s0, s1, s2 = (_named_attribute(tree, f"scale_{i}", (-900, -200 - 120 * i)) for i in range(3))
    largest = _math(tree, "MAXIMUM", _math(tree, "MAXIMUM", s0, s1, (-700, -250)), s2, (-550, -300))
    radius = _math(tree, "MULTIPLY", _math(tree, "EXPONENT", largest, None, (-400, -300)), group_in.outputs[1], (-250, -300))

    to_points = nodes.new("GeometryNodeMeshToPoints")
    to_points.location = (-100, 0)
    links.new(group_in.outputs[0], to_points.inputs["Mesh"])
    links.new(radius, to_points.inputs["Radius"])

    # Colour: 0.5 + C0 * f_dc, the view-independent part of the SH.
    dc = nodes.new("ShaderNodeCombineXYZ")
    dc.location = (-400, 300)
    for i in range(3):
        links.new(_named_attribute(tree, f"f_dc_{i}", (-650, 450 - 120 * i)), dc.inputs[i])
    colour = _vector_math(tree, "MULTIPLY_ADD", {0: dc.outputs[0], 1: (SH_C0, SH_C0, SH_C0), 2: (0.5, 0.5, 0.5)}, (-200, 300))

    label_colour = _named_attribute(tree, LABEL_COLOUR, (-200, 500), "FLOAT_VECTOR")
    switch = nodes.new("GeometryNodeSwitch")
    switch.input_type = "VECTOR"
    switch.location = (-50, 350)
    links.new(group_in.outputs[SHOW_LABELS], switch.inputs["Switch"])
    links.new(colour, switch.inputs["False"])
    links.new(label_colour, switch.inputs["True"])

    tinted = _selection_tint(tree, switch.outputs[0], group_in.outputs[SHOW_SELECTION])
    with_colour = _store(tree, to_points.outputs["Points"], "ms_color", "FLOAT_VECTOR", tinted, (100, 0))
    with_alpha = _store(tree, with_colour, "ms_alpha", "FLOAT", _alpha(tree), (300, 0))

    set_material = nodes.new("GeometryNodeSetMaterial")
    set_material.location = (500, 0)
    set_material.inputs["Material"].default_value = _material()
    links.new(with_alpha, set_material.inputs["Geometry"])
    links.new(set_material.outputs["Geometry"], group_out.inputs[0])
    return tree


def _alpha(tree):
    """Opacity: sigmoid(logit) = 1 / (1 + exp(-logit))."""
    logit = _named_attribute(tree, "opacity", (-650, -600))
    exp = _math(tree, "EXPONENT", _math(tree, "MULTIPLY", logit, -1.0, (-450, -600)), None, (-300, -600))
    return _math(tree, "DIVIDE", 1.0, _math(tree, "ADD", 1.0, exp, (-150, -600)), (0, -600))


def _selection_tint(tree, colour, show):
    """colour + (tint - colour) * strength * ms_selected * show: the selection tint of core/tint."""
    share = _math(tree, "MULTIPLY", _math(tree, "MULTIPLY", _named_attribute(tree, SHOWN_SELECTION, (-400, 700)), TINT_STRENGTH, (-250, 700)),
                  show, (-100, 700))  # fmt: skip
    towards = _vector_math(tree, "SUBTRACT", {0: SELECTION_TINT, 1: colour}, (-100, 550))
    scaled = _vector_math(tree, "SCALE", {0: towards, "Scale": share}, (50, 550))
    return _vector_math(tree, "ADD", {0: colour, 1: scaled}, (200, 550))


def _material() -> bpy.types.Material:
    material = bpy.data.materials.get(MATERIAL_NAME)
    if material is not None:
        return material
    material = bpy.data.materials.new(MATERIAL_NAME)
    if bpy.app.version < (5, 0, 0):  # always on from 5.0
        material.use_nodes = True
    if hasattr(material, "surface_render_method"):
        material.surface_render_method = "BLENDED"
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()
    output = nodes.new("ShaderNodeOutputMaterial")
    output.location = (400, 0)
    colour = nodes.new("ShaderNodeAttribute")
    colour.attribute_type = "GEOMETRY"
    colour.attribute_name = "ms_color"
    colour.location = (-400, 100)
    alpha = nodes.new("ShaderNodeAttribute")
    alpha.attribute_type = "GEOMETRY"
    alpha.attribute_name = "ms_alpha"
    alpha.location = (-400, -150)
    emission = nodes.new("ShaderNodeEmission")
    emission.location = (-150, 50)
    links.new(colour.outputs["Vector"], emission.inputs["Color"])
    transparent = nodes.new("ShaderNodeBsdfTransparent")
    transparent.location = (-150, -100)
    mix = nodes.new("ShaderNodeMixShader")
    mix.location = (150, 0)
    links.new(alpha.outputs["Fac"], mix.inputs["Fac"])
    links.new(transparent.outputs[0], mix.inputs[1])
    links.new(emission.outputs[0], mix.inputs[2])
    links.new(mix.outputs[0], output.inputs["Surface"])
    return material


def _current(tree) -> bool:
    return tree is not None and all(name in tree.interface.items_tree for name in (SHOW_LABELS, SHOW_SELECTION))


def display_node_group() -> bpy.types.NodeTree:
    """The shared display node group, built once per file (rebuilt if an older version lacks a socket)."""
    tree = bpy.data.node_groups.get(NODE_GROUP_NAME)
    if tree is not None and not _current(tree):
        tree.name = f"{NODE_GROUP_NAME} (old)"
        tree = None
    return tree if tree is not None else _build_node_group()


def setup_display(obj: bpy.types.Object) -> None:
    """Add (or refresh) the display modifier on a splat object."""
    modifier = obj.modifiers.get(MODIFIER_NAME)
    if modifier is None:
        modifier = obj.modifiers.new(MODIFIER_NAME, "NODES")
    modifier.node_group = display_node_group()
    set_splat_display(obj, obj.masksplat.show_splats)


def _set_input(obj: bpy.types.Object, name: str, value) -> None:
    modifier = obj.modifiers.get(MODIFIER_NAME)
    if modifier is None:
        return
    if not _current(modifier.node_group):
        setup_display(obj)
    socket = modifier.node_group.interface.items_tree[name]
    interface = getattr(modifier, "properties", None)  # Blender 5.2: inputs are structs, not ID properties
    if interface is not None and hasattr(interface.inputs, socket.identifier):
        getattr(interface.inputs, socket.identifier).value = value
    else:
        modifier[socket.identifier] = value
    obj.update_tag()


def _set_switch(obj: bpy.types.Object, name: str, value: bool) -> None:
    _set_input(obj, name, bool(value))


def share_again(obj: bpy.types.Object) -> None:
    """After reading the mesh's attributes: reading an attribute through RNA copies its array
    when the evaluated points share it (copy-on-write), so both copies stay until the next
    evaluation (~55 bytes a Gaussian). Evaluate the object now (the points share the mesh's
    arrays again, the old ones are freed); the update changes no Gaussian (SETTINGS_ONLY)."""
    if not obj.data.is_editmode:
        SETTINGS_ONLY[obj.name] = time.monotonic()
        obj.update_tag()


def set_splat_display(obj: bpy.types.Object, on: bool) -> None:
    """The Gaussian display (ui/splat_display) draws the object, or the points do: under the
    Gaussians the points shrink so they do not show, but stay there for clicking."""
    SETTINGS_ONLY[obj.name] = time.monotonic()  # the Gaussians did not change: the display need not pack
    _set_input(obj, POINT_SIZE, POINTS_UNDER_SPLATS if on else POINTS_ALONE)


def set_show_labels(obj: bpy.types.Object, show: bool) -> None:
    """Switch the display between the splats' own colours and their label colours."""
    _set_switch(obj, SHOW_LABELS, show)


def set_show_selection(obj: bpy.types.Object, show: bool) -> None:
    """Tint the selected points, or not."""
    _set_switch(obj, SHOW_SELECTION, show)


def point_values(mesh, name: str) -> np.ndarray | None:
    """[N] float32 values of a FLOAT point attribute (None when the mesh has none of that name)."""
    attribute = mesh.attributes.get(name)
    if attribute is None:
        return None
    values = np.empty(len(mesh.vertices), dtype=np.float32)
    attribute.data.foreach_get("value", values)
    return values


READ_COLUMNS = 4  # float attributes a read step takes (a timer spreads the steps over its ticks)
SETTINGS_ONLY: dict[str, float] = {}  # object name -> when set_splat_display changed only the points' size


class _EditedPoints:
    """The evaluated points of an object in Edit Mode, with the geometry set that owns them
    (the points are gone once it is)."""

    def __init__(self, geometry, cloud):
        self.geometry, self.attributes, self.points = geometry, cloud.attributes, cloud.points


def display_source(obj: bpy.types.Object):
    """What the Gaussian display reads for `obj`: its mesh, or in Edit Mode (the mesh's attributes
    live in the edit mesh then, where RNA reads none) the evaluated points, which follow the
    editing at no copy. None when there is nothing readable: Blender 4.3 has no
    evaluated_geometry, so there the display keeps what it drew until Edit Mode ends."""
    if not obj.data.is_editmode:
        return obj.data
    get = getattr(obj.evaluated_get(bpy.context.evaluated_depsgraph_get()), "evaluated_geometry", None)
    if get is None:
        return None
    geometry = get()
    cloud = geometry.pointcloud if geometry is not None else None
    if cloud is None or cloud.attributes.get("position") is None:
        return None
    return _EditedPoints(geometry, cloud)


def point_count(source) -> int:
    """Points of a display source (a mesh or a point cloud)."""
    return len(source.vertices) if isinstance(source, bpy.types.Mesh) else len(source.points)


def display_reads(obj: bpy.types.Object) -> list[tuple[str, tuple[str, ...]]]:
    """The Gaussian display's reads for `obj` as steps of a few attributes: (key, names)."""
    props = obj.masksplat
    steps = [("means", ("position",)), ("quats", tuple(f"rot_{i}" for i in range(4))),
             ("log_scales", tuple(f"scale_{i}" for i in range(3))), ("logits", ("opacity",)),
             ("f_dc", tuple(f"f_dc_{i}" for i in range(3)))]  # fmt: skip
    m = (props.sh_degree + 1) ** 2 - 1
    if props.view_dependent and m:
        names = [f"f_rest_{i}" for i in range(3 * m)]
        steps += [("f_rest", tuple(names[i : i + READ_COLUMNS])) for i in range(0, len(names), READ_COLUMNS)]
    if props.show_selection:
        steps.append(("selected", (SHOWN_SELECTION,)))
    if props.show_labels:
        steps.append(("label_colours", (LABEL_COLOUR,)))
    return steps


def read_step(source, names) -> np.ndarray | None:
    """One read step: a vector attribute as [N, 3], float ones as rows [len(names), N] float32;
    None when one is missing."""
    n = point_count(source)
    attributes = [source.attributes.get(name) for name in names]
    if any(a is None for a in attributes):
        return None
    if attributes[0].data_type == "FLOAT_VECTOR":
        values = np.empty(n * 3, dtype=np.float32)
        attributes[0].data.foreach_get("vector", values)
        return values.reshape(n, 3)
    out = np.empty((len(names), n), dtype=np.float32)
    for row, attribute in zip(out, attributes, strict=True):
        attribute.data.foreach_get("value", row)
    return out


def assemble_inputs(parts: dict, scale: float) -> dict:
    """display_inputs' dict from the read steps' results ({key: [arrays]}, missing optional
    keys absent or None)."""
    rows = {k: (v[0] if len(v) == 1 else np.concatenate(v)) for k, v in parts.items() if v and all(a is not None for a in v)}
    out = {"means": rows["means"], "quats": rows["quats"].T, "log_scales": rows["log_scales"].T,
           "logits": rows["logits"][0], "f_dc": rows["f_dc"].T, "f_rest": None, "selected": None,
           "label_colours": rows.get("label_colours"), "scale": float(scale)}  # fmt: skip
    if "f_rest" in rows:
        rest = rows["f_rest"]
        out["f_rest"] = np.ascontiguousarray(rest.reshape(3, len(rest) // 3, -1).transpose(2, 1, 0))
    shown = rows.get("selected")
    if shown is not None and (shown[0] > 0.5).any():
        out["selected"] = shown[0] > 0.5
    return out


def display_inputs(obj: bpy.types.Object) -> dict | None:
    """What the Gaussian display packs for `obj` (object space, float32): means [N, 3], quats
    [N, 4] wxyz, log_scales [N, 3], logits [N], f_dc [N, 3], f_rest [N, M, 3] (only with
    view-dependent colour), selected [N] bool (only where the selection is shown), label
    colours [N, 3] (only with Colour by Label), and the splat scale. None when there is
    nothing to read (display_source)."""
    source = display_source(obj)
    if source is None:
        return None
    parts: dict = {}
    for key, names in display_reads(obj):
        parts.setdefault(key, []).append(read_step(source, names))
    return assemble_inputs(parts, obj.masksplat.splat_scale)


def redraw_3d_views(window_manager) -> None:
    """Ask every 3D view to draw again (a display setting or the splat display's data changed)."""
    for window in window_manager.windows if window_manager is not None else ():
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()
