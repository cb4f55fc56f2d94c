"""Viewport display of splat objects: coloured points sized like the splats.

Geometry Nodes turn the vertices into points (radius from the largest scale), and store
the DC colour and sigmoid(opacity) as attributes that one shared material reads. All
per-point work runs in Blender's node evaluator, never in Python. Selected Gaussians are
tinted (core/tint) from the `ms_selected` attribute the selection functions keep.
"""

from __future__ import annotations

import bpy

from ..core.splat_io import SH_C0
from ..core.tint import SELECTION_TINT, TINT_STRENGTH

NODE_GROUP_NAME = "MaskSplat Display"
MATERIAL_NAME = "MaskSplat Splat"
MODIFIER_NAME = "MaskSplat Display"
SHOW_LABELS = "Show Labels"
SHOW_SELECTION = "Show Selection"
LABEL_COLOUR = "ms_label_color"
SHOWN_SELECTION = "ms_selected"  # float point attribute, 1 = selected (Geometry Nodes cannot read ".select_vert")


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
    size = tree.interface.new_socket("Point Size", in_out="INPUT", socket_type="NodeSocketFloat")
    size.default_value = 1.5
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


def _set_switch(obj: bpy.types.Object, name: str, value: bool) -> None:
    modifier = obj.modifiers.get(MODIFIER_NAME)
    if modifier is None:
        return
    if not _current(modifier.node_group):
        setup_display(obj)
    socket = modifier.node_group.interface.items_tree[name]
    interface = getattr(modifier, "properties", None)  # Blender 5.2: inputs are structs, not ID properties
    if interface is not None and hasattr(interface.inputs, socket.identifier):
        getattr(interface.inputs, socket.identifier).value = bool(value)
    else:
        modifier[socket.identifier] = bool(value)
    obj.update_tag()


def set_show_labels(obj: bpy.types.Object, show: bool) -> None:
    """Switch the display between the splats' own colours and their label colours."""
    _set_switch(obj, SHOW_LABELS, show)


def set_show_selection(obj: bpy.types.Object, show: bool) -> None:
    """Tint the selected points, or not."""
    _set_switch(obj, SHOW_SELECTION, show)
