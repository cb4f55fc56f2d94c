"""Blender UI: registration of properties, operators, menus and panels in one place."""

from __future__ import annotations

import bpy

from ..core import sog
from ..scene import images, properties
from . import (
    backend_ops,
    io_ops,
    label_ops,
    paint,
    panels,
    preferences,
    preview_ops,
    prune_ops,
    selection_ops,
    splat_display,
)

# Registered in this order, unregistered in reverse.
MODULES = (properties, preferences, backend_ops, io_ops, selection_ops, label_ops, preview_ops, paint, prune_ops, splat_display, panels)


def register() -> None:
    sog.set_webp_decoder(images.decode_webp)  # SOG's WebP images go through Blender's own decoder
    for module in MODULES:
        if hasattr(module, "register"):
            module.register()
            continue
        for cls in module.CLASSES:
            bpy.utils.register_class(cls)
        for menu, draw in getattr(module, "MENUS", ()):
            menu.append(draw)


def unregister() -> None:
    for module in reversed(MODULES):
        if hasattr(module, "unregister"):
            module.unregister()
            continue
        for menu, draw in getattr(module, "MENUS", ()):
            menu.remove(draw)
        for cls in reversed(module.CLASSES):
            bpy.utils.unregister_class(cls)
    sog.set_webp_decoder(None)
