"""MaskSplat's data on Blender objects and scenes, under one pointer each (`.masksplat`)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, PointerProperty, StringProperty


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
    # Camera objects: the OpenCV intrinsics they were made from (pixel units).
    is_camera: BoolProperty(name="MaskSplat Camera", default=False, options={"HIDDEN"})
    image_name: StringProperty(name="Image Name", description="Image file this camera saw, as named in the camera file")
    width: IntProperty(name="Width", min=1, default=1920)
    height: IntProperty(name="Height", min=1, default=1080)
    fx: FloatProperty(name="fx", min=0.0, default=1000.0)
    fy: FloatProperty(name="fy", min=0.0, default=1000.0)
    cx: FloatProperty(name="cx", default=960.0)
    cy: FloatProperty(name="cy", default=540.0)


CLASSES = (MaskSplatObjectProperties,)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Object.masksplat = PointerProperty(type=MaskSplatObjectProperties)


def unregister() -> None:
    del bpy.types.Object.masksplat
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
