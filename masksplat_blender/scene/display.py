"""Viewport display of splat objects: coloured points sized like the splats.

Geometry Nodes turn the vertices into points (radius from the largest scale), and store
the DC colour and sigmoid(opacity) as attributes that one shared material reads. All
per-point work runs in Blender's node evaluator, never in Python. Selected Gaussians are
tinted (core/tint) from the `ms_selected` attribute the selection functions keep.
"""

from __future__ import annotations

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


def _named_float(tree, name: str, location):
    node = tree.nodes.new("GeometryNodeInputNamedAttribute")
    node.data_type = "FLOAT"
    node.inputs["Name"].default_value = name
    node.location = location
    return node.outputs["Attribute"]


def _math(tree, operation: str, a, b=None, location=(0, 0)):
    node = tree.nodes.new("ShaderNodeMath")
    node.operation = operation
    node.location = location
    for index, value in enumerate((a, b)):
        if value is None:
            continue
        if isinstance(value, (int, float)):
            node.inputs[index].default_value = value
        else:
            tree.links.new(value, node.inputs[index])
    return node.outputs[0]


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
    s0, s1, s2 = (_named_float(tree, f"scale_{i}", (-900, -200 - 120 * i)) for i in range(3))
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
        links.new(_named_float(tree, f"f_dc_{i}", (-650, 450 - 120 * i)), dc.inputs[i])
    colour = nodes.new("ShaderNodeVectorMath")
    colour.operation = "MULTIPLY_ADD"
    colour.location = (-200, 300)
    links.new(dc.outputs[0], colour.inputs[0])
    colour.inputs[1].default_value = (SH_C0, SH_C0, SH_C0)
    colour.inputs[2].default_value = (0.5, 0.5, 0.5)

    label_colour = nodes.new("GeometryNodeInputNamedAttribute")
    label_colour.data_type = "FLOAT_VECTOR"
    label_colour.inputs["Name"].default_value = LABEL_COLOUR
    label_colour.location = (-200, 500)
    switch = nodes.new("GeometryNodeSwitch")
    switch.input_type = "VECTOR"
    switch.location = (-50, 350)
    links.new(group_in.outputs[SHOW_LABELS], switch.inputs["Switch"])
    links.new(colour.outputs[0], switch.inputs["False"])
    links.new(label_colour.outputs["Attribute"], switch.inputs["True"])

    store_colour = nodes.new("GeometryNodeStoreNamedAttribute")
    store_colour.data_type = "FLOAT_VECTOR"
    store_colour.domain = "POINT"
    store_colour.location = (100, 0)
    store_colour.inputs["Name"].default_value = "ms_color"
    links.new(to_points.outputs["Points"], store_colour.inputs["Geometry"])
    links.new(_selection_tint(tree, switch.outputs[0], group_in.outputs[SHOW_SELECTION]), store_colour.inputs["Value"])

    store_alpha = nodes.new("GeometryNodeStoreNamedAttribute")
    store_alpha.data_type = "FLOAT"
    store_alpha.domain = "POINT"
    store_alpha.location = (300, 0)
    store_alpha.inputs["Name"].default_value = "ms_alpha"
    links.new(store_colour.outputs["Geometry"], store_alpha.inputs["Geometry"])
    links.new(_alpha(tree), store_alpha.inputs["Value"])

    set_material = nodes.new("GeometryNodeSetMaterial")
    set_material.location = (500, 0)
    set_material.inputs["Material"].default_value = _material()
    links.new(store_alpha.outputs["Geometry"], set_material.inputs["Geometry"])
    links.new(set_material.outputs["Geometry"], group_out.inputs[0])
    return tree


def _alpha(tree):
    """Opacity: sigmoid(logit) = 1 / (1 + exp(-logit))."""
    logit = _named_float(tree, "opacity", (-650, -600))
    exp = _math(tree, "EXPONENT", _math(tree, "MULTIPLY", logit, -1.0, (-450, -600)), None, (-300, -600))
    return _math(tree, "DIVIDE", 1.0, _math(tree, "ADD", 1.0, exp, (-150, -600)), (0, -600))


def _selection_tint(tree, colour, show):
    """colour + (tint - colour) * strength * ms_selected * show: the selection tint of core/tint."""
    nodes, links = tree.nodes, tree.links
    share = _math(tree, "MULTIPLY", _math(tree, "MULTIPLY", _named_float(tree, SHOWN_SELECTION, (-400, 700)), TINT_STRENGTH, (-250, 700)),
                  show, (-100, 700))  # fmt: skip
    towards = nodes.new("ShaderNodeVectorMath")
    towards.operation = "SUBTRACT"
    towards.location = (-100, 550)
    towards.inputs[0].default_value = SELECTION_TINT
    links.new(colour, towards.inputs[1])
    scaled = nodes.new("ShaderNodeVectorMath")
    scaled.operation = "SCALE"
    scaled.location = (50, 550)
    links.new(towards.outputs[0], scaled.inputs[0])
    links.new(share, scaled.inputs["Scale"])
    tinted = nodes.new("ShaderNodeVectorMath")
    tinted.operation = "ADD"
    tinted.location = (200, 550)
    links.new(colour, tinted.inputs[0])
    links.new(scaled.outputs[0], tinted.inputs[1])
    return tinted.outputs[0]


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


def set_splat_display(obj: bpy.types.Object, on: bool) -> None:
    """The Gaussian display (ui/splat_display) draws the object, or the points do: under the
    Gaussians the points shrink so they do not show, but stay there for clicking."""
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


def _columns(mesh, names) -> np.ndarray:
    return np.stack([point_values(mesh, name) for name in names], axis=1)


def display_inputs(obj: bpy.types.Object) -> dict:
    """What the Gaussian display packs for `obj` (object space, float32): means [N, 3], quats
    [N, 4] wxyz, log_scales [N, 3], logits [N], f_dc [N, 3], f_rest [N, M, 3] (only with
    view-dependent colour), selected [N] bool (only where the selection is shown), label
    colours [N, 3] (only with Colour by Label), and the splat scale."""
    mesh, props = obj.data, obj.masksplat
    n = len(mesh.vertices)
    positions = np.empty(n * 3, dtype=np.float32)
    mesh.attributes["position"].data.foreach_get("vector", positions)
    out = {
        "means": positions.reshape(n, 3),
        "quats": _columns(mesh, [f"rot_{i}" for i in range(4)]),
        "log_scales": _columns(mesh, [f"scale_{i}" for i in range(3)]),
        "logits": point_values(mesh, "opacity"),
        "f_dc": _columns(mesh, [f"f_dc_{i}" for i in range(3)]),
        "f_rest": None, "selected": None, "label_colours": None,
        "scale": float(props.splat_scale),
    }  # fmt: skip
    m = (props.sh_degree + 1) ** 2 - 1
    if props.view_dependent and m:
        rest = _columns(mesh, [f"f_rest_{i}" for i in range(3 * m)])
        out["f_rest"] = np.ascontiguousarray(rest.reshape(n, 3, m).transpose(0, 2, 1))
    shown = point_values(mesh, SHOWN_SELECTION) if props.show_selection else None
    if shown is not None and (shown > 0.5).any():
        out["selected"] = shown > 0.5
    label_colour = mesh.attributes.get(LABEL_COLOUR)
    if props.show_labels and label_colour is not None:
        values = np.empty(n * 3, dtype=np.float32)
        label_colour.data.foreach_get("vector", values)
        out["label_colours"] = values.reshape(n, 3)
    return out
