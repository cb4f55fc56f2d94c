"""MaskSplat's data on Blender objects and scenes, under one pointer each (`.masksplat`).

No `from __future__ import annotations` here: Blender reads these annotations as real
property definitions, and their update callbacks must resolve in this module.
"""

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    FloatProperty,
    FloatVectorProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)


def colour_property(default: tuple, description: str, **options):
    """An RGB colour property (0..1 each) that Blender edits with its colour picker."""
    return FloatVectorProperty(
        name="Colour", subtype="COLOR", size=3, min=0.0, max=1.0, default=default, description=description, **options
    )


def _vote_threshold(name: str, default: float, maximum: float, description: str):
    """A number (0 to `maximum`) the selection is decided by: changing it re-selects from the
    stored votes at once."""
    return FloatProperty(name=name, description=description, default=default, min=0.0, max=maximum,
                         update=lambda self, context: _reselect(self, context))  # fmt: skip


class MaskSplatLabel(bpy.types.PropertyGroup):
    """One entry of a splat object's label set (its `name` is the label's name)."""

    color: colour_property(
        (0.5, 0.5, 0.5),
        "How this label shows in the viewport and in painted label maps",
        update=lambda self, context: _recolour(self, context),
    )


class MaskSplatObjectProperties(bpy.types.PropertyGroup):
    """Per-object state: what export needs to write the file back, and camera intrinsics."""

    is_splat: BoolProperty(name="Splat Object", default=False, options={"HIDDEN"})
    source_path: StringProperty(name="Source File", subtype="FILE_PATH", description="The file this splat was read from")
    layout_json: StringProperty(
        name="PLY Layout",
        options={"HIDDEN"},
        description="Property names, types and byte order of the source file, so export writes the same layout",
    )
    sh_degree: IntProperty(name="SH Degree", min=0, max=3, default=0)
    camera_collection: PointerProperty(
        name="Cameras",
        type=bpy.types.Collection,
        description="The cameras this splat was trained with or that paint masks for it",
    )
    beta: _vote_threshold(
        "Beta", 1.0, 2.0,
        "Select a Gaussian when its object votes exceed beta times its background votes "
        "(1 = simple majority; lower selects more, higher selects less)",
    )  # fmt: skip
    background_bias: _vote_threshold(
        "Background Bias", 0.0, 0.95, "Extra share of a Gaussian's votes the object side must win by (FlashSplat's background prior)"
    )
    edge_band: IntProperty(
        name="Uncertain Edges",
        description="Pixels this close (in pixels) to a mask's edge cast no vote: for masks that are off by a few "
        "pixels at object borders, e.g. from SAM (0 = every pixel votes, the paper's rule)",
        default=0,
        min=0,
        max=16,
    )
    fill_unseen: BoolProperty(
        name="Fill Unseen",
        description="Gaussians no masked view sees take the choice of their nearest seen neighbours "
        "(so the back of an object painted from 2-3 views is not left behind)",
        default=True,
        update=lambda self, context: _reselect(self, context),
    )
    labels: CollectionProperty(
        type=MaskSplatLabel,
        name="Labels",
        description="The label set: label 0 is background, then up to 32 named labels (parts, affordances)",
    )
    active_label: IntProperty(name="Active Label", default=0, min=0, description="The label painting and selecting use")
    show_labels: BoolProperty(
        name="Colour by Label",
        description="Show each Gaussian in its label's colour instead of its own (after Compute Labels)",
        default=False,
        update=lambda self, context: _recolour(self, context),
    )
    show_selection: BoolProperty(
        name="Show Selection",
        description="Tint the selected Gaussians in the viewport and in the camera preview",
        default=True,
        update=lambda self, context: _show_selection(self, context),
    )
    show_splats: BoolProperty(
        name="Splat Display",
        description="Draw the Gaussians as they render (off: coloured points sized like the splats, as before)",
        default=True,
        update=lambda self, context: _splat_display(self, context),
    )
    splat_scale: FloatProperty(
        name="Splat Scale",
        description="Size of every Gaussian in the splat display, as a factor of its own (1 = as trained; "
        "smaller shows the structure, larger fills gaps)",
        default=1.0,
        min=0.01,
        soft_max=2.0,
        max=10.0,
        update=lambda self, context: _redraw_views(context),
    )
    view_dependent: BoolProperty(
        name="View-Dependent Colour",
        description="Colour the splat display with every spherical-harmonics band the file has, as seen from the view "
        "(off: the base colour only, faster and lighter)",
        default=False,
        update=lambda self, context: _redraw_views(context),
    )
    prune_report: StringProperty(name="Prune Report", options={"HIDDEN"}, description="The last Prune Splats quality report (JSON)")
    # Camera objects: the mask painted or loaded for them, and the OpenCV intrinsics they were made from.
    mask: PointerProperty(name="Mask", type=bpy.types.Image, description="This camera's mask (red: object, blue: ignore)")
    label_map: PointerProperty(
        name="Label Map",
        type=bpy.types.Image,
        description="This camera's label ids per pixel (0 = background), painted, loaded or transferred",
    )
    is_camera: BoolProperty(name="MaskSplat Camera", default=False, options={"HIDDEN"})
    image_name: StringProperty(name="Image Name", description="Image file this camera saw, as named in the camera file")
    width: IntProperty(name="Width", min=1, default=1920)
    height: IntProperty(name="Height", min=1, default=1080)
    fx: FloatProperty(name="fx", min=0.0, default=1000.0)
    fy: FloatProperty(name="fy", min=0.0, default=1000.0)
    cx: FloatProperty(name="cx", default=960.0)
    cy: FloatProperty(name="cy", default=540.0)


def _reselect(props, context) -> None:
    """Changing beta re-selects from the stored votes at once, without the backend."""
    from .selection import apply_selection, has_votes

    obj = props.id_data
    if has_votes(obj):
        apply_selection(obj)


def _show_selection(props, context) -> None:
    from .display import set_show_selection

    if _on_mesh(props):
        set_show_selection(props.id_data, props.show_selection)


def _redraw_views(context) -> None:
    """A display setting changed: the 3D views draw again (the splat display re-packs then)."""
    from .display import redraw_3d_views

    redraw_3d_views(getattr(context, "window_manager", None))


def _splat_display(props, context) -> None:
    from .display import set_splat_display

    if _on_mesh(props) and props.is_splat:
        set_splat_display(props.id_data, props.show_splats)


def _recolour(props, context) -> None:
    """Label colours or the display switch changed: refresh the viewport colours."""
    from .labels import refresh_label_display

    if _on_mesh(props):
        refresh_label_display(props.id_data)


def _on_mesh(props) -> bool:
    """Whether these properties belong to a mesh object, the only kind that shows splats."""
    return props.id_data is not None and props.id_data.type == "MESH"


CLASSES = (MaskSplatLabel, MaskSplatObjectProperties)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Object.masksplat = PointerProperty(type=MaskSplatObjectProperties)


def unregister() -> None:
    del bpy.types.Object.masksplat
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
