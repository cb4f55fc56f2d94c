"""What the operator modules share: the splat-object poll and running in object mode."""

from __future__ import annotations

import bpy

from ..scene.splat_object import is_splat_object


def splat_poll(context) -> bool:
    """An operator on the active splat object can run."""
    return is_splat_object(context.active_object)


class ObjectMode:
    """Run in object mode (mesh data, not the edit-mode copy) and come back."""

    def __init__(self, obj):
        self.obj, self.mode = obj, obj.mode

    def __enter__(self):
        if self.mode != "OBJECT":
            bpy.ops.object.mode_set(mode="OBJECT")

    def __exit__(self, *exc):
        if self.mode != "OBJECT" and self.obj.name in bpy.context.view_layer.objects:
            bpy.ops.object.mode_set(mode=self.mode)
